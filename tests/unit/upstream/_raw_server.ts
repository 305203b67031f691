/**
 * A tiny raw HTTP/1.1 server on 127.0.0.1 for the upstream client's tests: each
 * connection runs a handler that reads requests and writes exact response bytes.
 *
 * @module
 */

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** A request as the raw server read it. */
export interface RawRequest {
  /** The head text, request line and blank line included. */
  head: string;
  method: string;
  path: string;
  /** Header names lowercased; repeated fields joined with ", ". */
  headers: Map<string, string>;
}

/** One accepted connection, with a read buffer. */
export class RawConn {
  readonly conn: Deno.Conn;
  #buf = new Uint8Array(0);

  constructor(conn: Deno.Conn) {
    this.conn = conn;
  }

  /** Reads more bytes; false at end of stream or on a reset. */
  async #more(): Promise<boolean> {
    const chunk = new Uint8Array(64 * 1024);
    let n: number | null;
    try {
      n = await this.conn.read(chunk);
    } catch {
      return false;
    }
    if (n === null) return false;
    const joined = new Uint8Array(this.#buf.length + n);
    joined.set(this.#buf);
    joined.set(chunk.subarray(0, n), this.#buf.length);
    this.#buf = joined;
    return true;
  }

  /** Reads a request head; null when the client closed the connection. */
  async readRequest(): Promise<RawRequest | null> {
    while (true) {
      const text = decoder.decode(this.#buf);
      const end = text.indexOf("\r\n\r\n");
      if (end !== -1) {
        const head = text.slice(0, end + 4);
        this.#buf = this.#buf.subarray(encoder.encode(head).length);
        const lines = head.split("\r\n");
        const [method, path] = lines[0].split(" ");
        const headers = new Map<string, string>();
        for (const line of lines.slice(1)) {
          if (line === "") continue;
          const colon = line.indexOf(":");
          const name = line.slice(0, colon).toLowerCase();
          const value = line.slice(colon + 1).trim();
          headers.set(name, headers.has(name) ? `${headers.get(name)}, ${value}` : value);
        }
        return { head, method, path, headers };
      }
      if (!await this.#more()) return null;
    }
  }

  /**
   * Reads a request's body by its framing, handing each piece to `onData`.
   *
   * @returns the body's length
   */
  async readBody(request: RawRequest, onData?: (piece: Uint8Array) => void): Promise<number> {
    const length = request.headers.get("content-length");
    if (request.headers.get("transfer-encoding") === "chunked") {
      let total = 0;
      while (true) {
        const line = await this.#line();
        const size = parseInt(line, 16);
        if (size === 0) {
          while ((await this.#line()) !== "") {
            // trailer fields are not needed here
          }
          return total;
        }
        await this.#take(size, onData);
        total += size;
        await this.#line();
      }
    }
    const n = length === undefined ? 0 : Number(length);
    await this.#take(n, onData);
    return n;
  }

  /** Reads a body into one buffer. */
  async readBodyBytes(request: RawRequest): Promise<Uint8Array> {
    const pieces: Uint8Array[] = [];
    await this.readBody(request, (piece) => pieces.push(piece.slice()));
    return concat(pieces);
  }

  async #line(): Promise<string> {
    while (true) {
      const i = this.#buf.indexOf(10);
      if (i !== -1) {
        const line = decoder.decode(this.#buf.subarray(0, i)).replace(/\r$/, "");
        this.#buf = this.#buf.subarray(i + 1);
        return line;
      }
      if (!await this.#more()) throw new Error("Connection ended inside a chunked body");
    }
  }

  async #take(n: number, onData?: (piece: Uint8Array) => void): Promise<void> {
    while (n > 0) {
      if (this.#buf.length === 0 && !await this.#more()) {
        throw new Error(`Connection ended with ${n} body bytes missing`);
      }
      const piece = this.#buf.subarray(0, Math.min(n, this.#buf.length));
      onData?.(piece);
      this.#buf = this.#buf.subarray(piece.length);
      n -= piece.length;
    }
  }

  /** Writes a string (as Latin-1 bytes) or bytes. */
  async write(data: string | Uint8Array): Promise<void> {
    const bytes = typeof data === "string" ? latin1(data) : data;
    let offset = 0;
    while (offset < bytes.length) offset += await this.conn.write(bytes.subarray(offset));
  }

  /** Waits until the client closes the connection (or resets it). */
  async waitForClose(): Promise<void> {
    while (await this.#more()) {
      // discard whatever else arrives
    }
  }

  /** Closes the connection; safe to call twice. */
  close(): void {
    try {
      this.conn.close();
    } catch {
      // already closed
    }
  }
}

/** A raw server; `accepted` counts connections. */
export class RawServer {
  readonly port: number;
  accepted = 0;
  #listener: Deno.Listener;
  #conns = new Set<RawConn>();
  #tasks: Promise<void>[] = [];
  #loop: Promise<void>;

  /** Listens on 127.0.0.1, an OS-chosen port, and runs `handler` per connection. */
  constructor(handler: (conn: RawConn, index: number) => Promise<void>) {
    this.#listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    this.port = (this.#listener.addr as Deno.NetAddr).port;
    this.#loop = this.#accept(handler);
  }

  async #accept(handler: (conn: RawConn, index: number) => Promise<void>): Promise<void> {
    try {
      for await (const socket of this.#listener) {
        const conn = new RawConn(socket);
        const index = this.accepted++;
        this.#conns.add(conn);
        this.#tasks.push(
          handler(conn, index).catch(() => {}).finally(() => {
            conn.close();
            this.#conns.delete(conn);
          }),
        );
      }
    } catch {
      // the listener was closed
    }
  }

  /** Stops listening, closes every connection and waits for the handlers. */
  async close(): Promise<void> {
    this.#listener.close();
    for (const conn of this.#conns) conn.close();
    await this.#loop;
    await Promise.all(this.#tasks);
  }
}

/** Serves every request on a connection with `respond` until the client closes. */
export function keepAlive(
  respond: (conn: RawConn, request: RawRequest) => Promise<void>,
): (conn: RawConn) => Promise<void> {
  return async (conn) => {
    for (let i = 0; i < 10_000; i++) {
      const request = await conn.readRequest();
      if (request === null) return;
      await respond(conn, request);
    }
  };
}

/** Encodes a string byte per character (Latin-1). */
export function latin1(text: string): Uint8Array {
  const bytes = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i);
  return bytes;
}

/** Joins byte arrays. */
export function concat(pieces: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(pieces.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const piece of pieces) {
    out.set(piece, offset);
    offset += piece.length;
  }
  return out;
}

/** Reads a stream into one buffer. */
export async function readAll(stream: ReadableStream<Uint8Array> | null): Promise<Uint8Array> {
  if (stream === null) return new Uint8Array(0);
  const pieces: Uint8Array[] = [];
  for await (const piece of stream) pieces.push(piece);
  return concat(pieces);
}

/** Reads a stream as text. */
export async function readText(stream: ReadableStream<Uint8Array> | null): Promise<string> {
  return decoder.decode(await readAll(stream));
}

/** Resolves after `ms`. */
export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls `check` every 10 ms until it holds or `ms` pass. */
export async function waitFor(check: () => boolean, ms = 5000): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) return false;
    await delay(10);
  }
  return true;
}
