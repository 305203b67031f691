/**
 * A `node:tls` socket seen as a `Deno.TlsConn`. Deno's own TLS client cannot skip
 * certificate verification per connection, and its `connectTls` (the only Deno call that
 * sends a client certificate) returns a connection without `setNoDelay`, so each
 * two-write request waits ~40 ms for Nagle; `node:tls` does both, and this adapter lets
 * the rest of Mosaic keep one connection type.
 *
 * @module
 */

import type { TLSSocket } from "node:tls";

const READ_HIGH_WATER = 256 * 1024;

/** A `Deno.TlsConn` over a connected `node:tls` socket. */
export class NodeTlsConn implements Deno.TlsConn {
  #socket: TLSSocket;
  #chunks: Uint8Array[] = [];
  #buffered = 0;
  #ended = false;
  #closed = false;
  #error: Error | undefined;
  #wake: (() => void) | undefined;
  #readable: ReadableStream<Uint8Array<ArrayBuffer>> | undefined;
  #writable: WritableStream<Uint8Array<ArrayBufferLike>> | undefined;
  #localAddr: Deno.NetAddr;
  #remoteAddr: Deno.NetAddr;

  /**
   * Wraps a socket whose handshake has completed (after `secureConnect`).
   *
   * @param socket The connected socket.
   */
  constructor(socket: TLSSocket) {
    this.#socket = socket;
    this.#localAddr = netAddr(socket.localAddress, socket.localPort);
    this.#remoteAddr = netAddr(socket.remoteAddress, socket.remotePort);
    socket.on("data", (chunk: Uint8Array) => {
      this.#chunks.push(chunk);
      this.#buffered += chunk.byteLength;
      // Backpressure: stop reading the socket while the reader lags behind.
      if (this.#buffered >= READ_HIGH_WATER) socket.pause();
      this.#notify();
    });
    socket.on("end", () => {
      this.#ended = true;
      this.#notify();
    });
    socket.on("error", (error: Error) => {
      this.#error ??= error;
      this.#notify();
    });
    socket.on("close", () => {
      this.#ended = true;
      this.#notify();
    });
  }

  /** The local address of the connection. */
  get localAddr(): Deno.NetAddr {
    return this.#localAddr;
  }

  /** The remote address of the connection. */
  get remoteAddr(): Deno.NetAddr {
    return this.#remoteAddr;
  }

  /** The handshake is done before the adapter exists: answers the negotiated ALPN. */
  handshake(): Promise<Deno.TlsHandshakeInfo> {
    const alpn = this.#socket.alpnProtocol;
    return Promise.resolve({ alpnProtocol: typeof alpn === "string" ? alpn : null });
  }

  /** Reads into `p`; null at the end of the stream. */
  async read(p: Uint8Array): Promise<number | null> {
    while (this.#chunks.length === 0) {
      if (this.#error !== undefined) throw this.#error;
      if (this.#ended || this.#closed) return null;
      await new Promise<void>((resolve) => {
        this.#wake = resolve;
      });
    }
    const head = this.#chunks[0];
    const n = Math.min(p.byteLength, head.byteLength);
    p.set(head.subarray(0, n));
    if (n === head.byteLength) this.#chunks.shift();
    else this.#chunks[0] = head.subarray(n);
    this.#buffered -= n;
    if (this.#buffered < READ_HIGH_WATER && this.#socket.isPaused()) this.#socket.resume();
    return n;
  }

  /** Writes all of `p`; resolves once the socket took it. */
  write(p: Uint8Array): Promise<number> {
    if (this.#closed) return Promise.reject(new Deno.errors.BadResource("Connection is closed"));
    return new Promise((resolve, reject) => {
      this.#socket.write(p, (error?: Error | null) => {
        if (error) reject(error);
        else resolve(p.byteLength);
      });
    });
  }

  /** Shuts down the write side (sends close_notify and FIN). */
  closeWrite(): Promise<void> {
    return new Promise((resolve) => this.#socket.end(resolve));
  }

  /** Closes the connection; closing twice does nothing. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#socket.destroy();
    this.#notify();
  }

  /** Disables (or enables) Nagle's algorithm. */
  setNoDelay(noDelay = true): void {
    this.#socket.setNoDelay(noDelay);
  }

  /** Turns TCP keep-alive on or off. */
  setKeepAlive(keepAlive = true): void {
    this.#socket.setKeepAlive(keepAlive);
  }

  /** Lets the connection keep the process alive. */
  ref(): void {
    this.#socket.ref();
  }

  /** Stops the connection from keeping the process alive. */
  unref(): void {
    this.#socket.unref();
  }

  /** The received bytes, as a stream. */
  get readable(): ReadableStream<Uint8Array<ArrayBuffer>> {
    this.#readable ??= new ReadableStream<Uint8Array<ArrayBuffer>>({
      pull: async (controller) => {
        const buffer = new Uint8Array(16 * 1024);
        const n = await this.read(buffer);
        if (n === null) controller.close();
        else controller.enqueue(buffer.subarray(0, n));
      },
      cancel: () => this.close(),
    });
    return this.#readable;
  }

  /** A stream to send bytes; closing it shuts down the write side. */
  get writable(): WritableStream<Uint8Array<ArrayBufferLike>> {
    this.#writable ??= new WritableStream<Uint8Array<ArrayBufferLike>>({
      write: async (chunk) => {
        await this.write(chunk);
      },
      close: () => this.closeWrite(),
      abort: () => this.close(),
    });
    return this.#writable;
  }

  /** Closes the connection. */
  [Symbol.dispose](): void {
    this.close();
  }

  #notify(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }
}

function netAddr(hostname: string | undefined, port: number | undefined): Deno.NetAddr {
  return { transport: "tcp", hostname: hostname ?? "", port: port ?? 0 };
}
