/**
 * h2c with prior knowledge on a plain listener: a connection that opens with the HTTP/2
 * preface is piped to an inner `Deno.serve` on a loopback port, which speaks HTTP/2. The
 * inner server finds the real client by the local port of the piped connection, and
 * answers 403 to any other connection. The inner server starts with the first such
 * connection, so a listener that never sees h2c binds nothing more.
 *
 * The tunnel is watched by the listener's sweep like any connection: no byte in either
 * direction for the idle timeout closes it.
 *
 * @module
 */

import { fromFetchRequest, toFetchResponse } from "../../proxy/downstream.ts";
import { handleStream, type ListenerContext } from "../../proxy/stream.ts";
import type { ByteConn, Watched } from "./connection.ts";

/** What a tunnel needs from its server. */
export interface TunnelServer {
  readonly idleTimeoutMs: number;
  watch(item: Watched): void;
  ended(item: Watched): void;
}

/** The inner HTTP/2 server of one listener. */
export class H2cServer {
  #holder: { readonly context: ListenerContext };
  #inner: Deno.HttpServer<Deno.NetAddr> | undefined;
  /** Inner connection's local port → the real client. */
  #clients = new Map<number, Deno.NetAddr>();

  /** @param holder Gives the context requests are handled with. */
  constructor(holder: { readonly context: ListenerContext }) {
    this.#holder = holder;
  }

  /**
   * Pipes `conn` to the inner server.
   *
   * @param conn The client connection, which sent the preface.
   * @param remoteAddr The client's address.
   * @param first The bytes read so far, preface included.
   * @param server The listener's server, whose sweep watches the tunnel.
   */
  open(conn: ByteConn, remoteAddr: Deno.NetAddr, first: Uint8Array, server: TunnelServer): void {
    let port: number;
    try {
      port = this.#start().addr.port;
    } catch (error) {
      // No --allow-net for 127.0.0.1, most likely: h2c cannot be served.
      const ctx = this.#holder.context;
      ctx.logger.error("Listener {listener} cannot serve h2c: {error}", {
        listener: ctx.name,
        error: error instanceof Error ? error.message : String(error),
      });
      closeQuietly(conn);
      return;
    }
    const tunnel = new H2cTunnel(conn, server);
    server.watch(tunnel);
    tunnel.run(port, first, (innerPort) => this.#clients.set(innerPort, remoteAddr))
      .finally(() => {
        if (tunnel.innerPort !== 0) this.#clients.delete(tunnel.innerPort);
        server.ended(tunnel);
      });
  }

  /** Sends GOAWAY to the h2c clients and waits for their streams (or until cut). */
  async shutdown(): Promise<void> {
    await this.#inner?.shutdown();
  }

  #start(): Deno.HttpServer<Deno.NetAddr> {
    this.#inner ??= Deno.serve({
      hostname: "127.0.0.1",
      port: 0,
      automaticCompression: false,
      onListen() {},
    }, (request, info) => {
      const client = this.#clients.get(info.remoteAddr.port);
      if (client === undefined) {
        return new Response("connect through the listener\n", { status: 403 });
      }
      return handleStream(this.#holder.context, fromFetchRequest(request, "HTTP/2"), {
        remoteAddr: client,
        protocol: "HTTP/2",
        completed: info.completed,
      }).then(toFetchResponse);
    });
    return this.#inner;
  }
}

/** One client connection piped to the inner server. */
class H2cTunnel implements Watched {
  deadline = Infinity;
  innerPort = 0;
  #client: ByteConn;
  #inner: Deno.TcpConn | undefined;
  #server: TunnelServer;
  #closed = false;

  constructor(client: ByteConn, server: TunnelServer) {
    this.#client = client;
    this.#server = server;
  }

  /** HTTP/2 streams are not counted one by one; a drain lets the inner server end them. */
  get busy(): boolean {
    return true;
  }

  async run(port: number, first: Uint8Array, register: (innerPort: number) => void): Promise<void> {
    try {
      this.#touch();
      const inner = await Deno.connect({ hostname: "127.0.0.1", port });
      inner.setNoDelay(true);
      this.#inner = inner;
      if (this.#closed) return;
      this.innerPort = (inner.localAddr as Deno.NetAddr).port;
      register(this.innerPort);
      await writeAll(inner, first);
      await Promise.all([this.#pipe(this.#client, inner), this.#pipe(inner, this.#client)]);
    } catch {
      // either side failed: the tunnel ends
    } finally {
      this.close();
    }
  }

  async #pipe(from: ByteConn, to: ByteConn): Promise<void> {
    const buffer = new Uint8Array(16 * 1024);
    for (;;) {
      const n = await from.read(buffer);
      if (n === null) break;
      this.#touch();
      await writeAll(to, buffer.subarray(0, n));
    }
    // One side ended: HTTP/2 has no half-close of its own, so the tunnel ends.
    this.close();
  }

  #touch(): void {
    const ms = this.#server.idleTimeoutMs;
    this.deadline = ms > 0 ? Date.now() + ms : Infinity;
  }

  expire(): void {
    this.close();
  }

  drainIdle(): boolean {
    return false;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.deadline = Infinity;
    closeQuietly(this.#client);
    if (this.#inner !== undefined) closeQuietly(this.#inner);
  }
}

async function writeAll(to: ByteConn, bytes: Uint8Array): Promise<void> {
  let offset = 0;
  while (offset < bytes.length) offset += await to.write(bytes.subarray(offset));
}

function closeQuietly(conn: ByteConn): void {
  try {
    conn.close();
  } catch {
    // already closed
  }
}
