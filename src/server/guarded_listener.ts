/**
 * An HTTP listener with a header read timeout (`header_read_timeout`), for which
 * `Deno.serve` (hyper) on Deno 2.9.6 has no option: a client that sends half a header
 * block would otherwise hold its socket forever (slowloris).
 *
 * A TCP front accepts each connection, follows its request framing byte by byte
 * ({@linkcode RequestFraming}) while piping it unchanged to an inner `Deno.serve` on a
 * loopback port, and answers 408 and closes when a request head takes too long. The inner
 * server finds the real client by the local port of the piped connection, and answers 403
 * to any other connection. The extra hop costs throughput, so the guard is opt-in.
 *
 * @module
 */

import { fromFetchRequest, toFetchResponse } from "../proxy/downstream.ts";
import { handleStream, type ListenerContext } from "../proxy/stream.ts";
import { RequestFraming } from "./request_framing.ts";

const TIMEOUT_RESPONSE = new TextEncoder().encode(
  "HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain\r\ncontent-length: 29\r\n" +
    "connection: close\r\n\r\nrequest header read timed out",
);

/** Options of a guarded listener. */
export interface GuardedListenerOptions {
  hostname: string;
  port: number;
  /** How long a request head may take, from its first byte (or from accept). */
  headerReadTimeoutMs: number;
  /** Share the public port with other workers (needs `--unstable-net`). */
  reusePort?: boolean;
}

/** A running HTTP listener behind a header-read-timeout front. */
export class GuardedHttpListener {
  /** What new requests are handled with. */
  context: ListenerContext;
  #outer: Deno.TcpListener;
  #inner: Deno.HttpServer<Deno.NetAddr>;
  /** Inner connection's local port → the real client. */
  #clients = new Map<number, Deno.NetAddr>();
  #open = new Set<Deno.Conn>();
  #accepting: Promise<void>;
  #timeoutMs: number;

  /** Binds the public port and the inner loopback server. */
  constructor(options: GuardedListenerOptions, context: ListenerContext) {
    this.context = context;
    this.#timeoutMs = options.headerReadTimeoutMs;
    this.#inner = Deno.serve({
      hostname: "127.0.0.1",
      port: 0,
      automaticCompression: false,
      onListen() {},
    }, (request, info) => {
      const client = this.#clients.get(info.remoteAddr.port);
      if (client === undefined) {
        return new Response("connect through the listener\n", { status: 403 });
      }
      const protocol = request.headers.has("host") ? "HTTP/1.1" : "HTTP/2";
      return handleStream(this.context, fromFetchRequest(request, protocol), {
        remoteAddr: client,
        protocol,
        completed: info.completed,
      }).then(toFetchResponse);
    });
    try {
      this.#outer = Deno.listen({
        hostname: options.hostname,
        port: options.port,
        reusePort: options.reusePort,
      });
    } catch (error) {
      this.#inner.shutdown();
      throw error;
    }
    this.#accepting = this.#acceptLoop();
  }

  /** The public address. */
  get addr(): Deno.NetAddr {
    return this.#outer.addr;
  }

  async #acceptLoop(): Promise<void> {
    for (;;) {
      let client: Deno.TcpConn;
      try {
        client = await this.#outer.accept();
      } catch {
        return; // closed
      }
      this.#serve(client).catch(() => {});
    }
  }

  async #serve(client: Deno.TcpConn): Promise<void> {
    client.setNoDelay(true);
    this.#open.add(client);
    let inner: Deno.TcpConn | undefined;
    try {
      inner = await Deno.connect({ hostname: "127.0.0.1", port: this.#inner.addr.port });
      inner.setNoDelay(true);
      this.#open.add(inner);
      const innerPort = (inner.localAddr as Deno.NetAddr).port;
      this.#clients.set(innerPort, client.remoteAddr as Deno.NetAddr);
      try {
        await Promise.all([this.#fromClient(client, inner), pipe(inner, client)]);
      } finally {
        this.#clients.delete(innerPort);
      }
    } finally {
      this.#open.delete(client);
      close(client);
      if (inner !== undefined) {
        this.#open.delete(inner);
        close(inner);
      }
    }
  }

  /** Pipes client bytes inward while timing each request head. */
  async #fromClient(client: Deno.Conn, inner: Deno.Conn): Promise<void> {
    const framing = new RequestFraming();
    const buffer = new Uint8Array(64 * 1024);
    let headsSeen = 0;
    let timedOut = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const arm = () => {
      timer ??= setTimeout(() => {
        timedOut = true;
        this.context.logger.warn(
          `Listener ${this.context.name}: request head from ${
            (client.remoteAddr as Deno.NetAddr).hostname
          } not complete after ${this.#timeoutMs} ms; answered 408 and closed`,
        );
        client.write(TIMEOUT_RESPONSE).catch(() => 0).finally(() => {
          close(client);
          close(inner);
        });
      }, this.#timeoutMs);
    };
    const disarm = () => {
      clearTimeout(timer);
      timer = undefined;
    };
    arm(); // the first request must arrive in time, as nginx's client_header_timeout
    try {
      for (;;) {
        const n = await client.read(buffer);
        if (n === null || timedOut) break;
        const bytes = buffer.subarray(0, n);
        if (framing.state !== "opaque") {
          framing.push(bytes);
          if (framing.state === "head") {
            arm();
          } else if (framing.heads > headsSeen) {
            // A head completed: no timer while a body streams or the connection idles.
            headsSeen = framing.heads;
            disarm();
          }
        }
        await writeAll(inner, bytes);
      }
      await inner.closeWrite().catch(() => {});
    } catch {
      close(inner);
    } finally {
      disarm();
    }
  }

  /** Stops accepting; requests in flight get `drainTimeoutMs` to finish. */
  async shutdown(drainTimeoutMs: number): Promise<void> {
    this.#outer.close();
    await this.#accepting;
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      this.#inner.shutdown(),
      new Promise<void>((resolve) => timer = setTimeout(resolve, drainTimeoutMs)),
    ]);
    clearTimeout(timer);
    for (const conn of this.#open) close(conn);
  }
}

async function pipe(from: Deno.Conn, to: Deno.Conn): Promise<void> {
  const buffer = new Uint8Array(64 * 1024);
  try {
    for (;;) {
      const n = await from.read(buffer);
      if (n === null) break;
      await writeAll(to, buffer.subarray(0, n));
    }
    await to.closeWrite().catch(() => {});
  } catch {
    close(to);
  }
}

async function writeAll(to: Deno.Conn, bytes: Uint8Array): Promise<void> {
  let offset = 0;
  while (offset < bytes.length) offset += await to.write(bytes.subarray(offset));
}

function close(conn: Deno.Conn): void {
  try {
    conn.close();
  } catch {
    // already closed
  }
}
