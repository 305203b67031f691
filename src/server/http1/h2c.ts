/**
 * h2c with prior knowledge on a plain listener: a connection that opens with the HTTP/2
 * preface is piped to an inner `Deno.serve` on a loopback port, which speaks HTTP/2. The
 * inner server finds the real client by the local port of the piped connection, and
 * answers 403 to any other connection. The inner server starts with the first such
 * connection, so a listener that never sees h2c binds nothing more.
 *
 * The tunnel is watched by the listener's sweep like any connection: no byte in either
 * direction for the idle timeout closes it. It reads the frame headers going by
 * ({@linkcode H2Guard}): a client that floods control frames, or sends a frame above the
 * max frame size, gets a GOAWAY and is closed, with one warning.
 *
 * A stream the client cancels (RST_STREAM, or the connection closed mid-request) fails
 * its handler with the request's signal aborted: that is the client's choice, logged at
 * debug, not an error.
 *
 * @module
 */

import { fromFetchRequest, toFetchResponse } from "../../proxy/downstream.ts";
import { handleStream, type ListenerContext } from "../../proxy/stream.ts";
import type { ByteConn, Watched } from "./connection.ts";
import {
  goawayFrame,
  H2Guard,
  type H2Limits,
  type H2Violation,
  isClientCancel,
} from "../h2_guard.ts";

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

  #limits: Partial<H2Limits>;

  /**
   * @param holder Gives the context requests are handled with.
   * @param limits The HTTP/2 flood limits; defaults: those of {@linkcode H2Guard}.
   */
  constructor(holder: { readonly context: ListenerContext }, limits: Partial<H2Limits> = {}) {
    this.#holder = holder;
    this.#limits = limits;
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
    const tunnel = new H2cTunnel(conn, server, new H2Guard(this.#limits), (violation) => {
      const ctx = this.#holder.context;
      ctx.logger.warn(
        "Closed the HTTP/2 connection of {client} on listener {listener}: {reason}",
        {
          client: `${remoteAddr.hostname}:${remoteAddr.port}`,
          listener: ctx.name,
          frameType: violation.frameType,
          reason: violation.reason,
        },
      );
    });
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
      onError: (error) => {
        const ctx = this.#holder.context;
        if (isClientCancel(error)) {
          ctx.logger.debug("An h2c stream was cancelled by its client: {error}", { error });
          return new Response(null, { status: 499 });
        }
        ctx.logger.error("Listener {listener} failed an h2c request: {error}", {
          listener: ctx.name,
          error,
        });
        return new Response("internal error\n", { status: 500 });
      },
    }, (request, info) => {
      const client = this.#clients.get(info.remoteAddr.port);
      if (client === undefined) {
        return new Response("connect through the listener\n", { status: 403 });
      }
      return handleStream(this.#holder.context, fromFetchRequest(request, "HTTP/2"), {
        remoteAddr: client,
        protocol: "HTTP/2",
        completed: info.completed,
      }).then(toFetchResponse, (error) => {
        if (!request.signal.aborted) throw error;
        // The client reset the stream or closed the connection: nobody reads the answer.
        const ctx = this.#holder.context;
        ctx.logger.debug("An h2c request from {client} was cancelled: {error}", {
          client: client.hostname,
          error,
        });
        return new Response(null, { status: 499 });
      });
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
  #guard: H2Guard;
  #onViolation: (violation: H2Violation) => void;
  /** A limit was broken: nothing more is forwarded either way. */
  #stopped = false;
  /** A write to the client is under way (a GOAWAY must not cut into it). */
  #writingToClient = false;

  constructor(
    client: ByteConn,
    server: TunnelServer,
    guard: H2Guard,
    onViolation: (violation: H2Violation) => void,
  ) {
    this.#client = client;
    this.#server = server;
    this.#guard = guard;
    this.#onViolation = onViolation;
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
      const violation = this.#guard.inbound(first);
      if (violation !== null) return await this.#refuse(violation);
      await writeAll(inner, first);
      await Promise.all([this.#fromClient(this.#client, inner), this.#toClient(inner)]);
    } catch {
      // either side failed: the tunnel ends
    } finally {
      if (!this.#stopped) this.close();
    }
  }

  async #fromClient(from: ByteConn, to: ByteConn): Promise<void> {
    const buffer = new Uint8Array(16 * 1024);
    const guard = this.#guard;
    for (;;) {
      const n = await from.read(buffer);
      if (n === null || this.#stopped) break;
      this.#touch();
      const chunk = buffer.subarray(0, n);
      const violation = guard.inbound(chunk);
      if (violation !== null) return await this.#refuse(violation);
      await writeAll(to, chunk);
    }
    // One side ended: HTTP/2 has no half-close of its own, so the tunnel ends.
    if (!this.#stopped) this.close();
  }

  async #toClient(from: ByteConn): Promise<void> {
    const buffer = new Uint8Array(16 * 1024);
    const guard = this.#guard;
    for (;;) {
      const n = await from.read(buffer);
      if (n === null || this.#stopped) break;
      this.#touch();
      const chunk = buffer.subarray(0, n);
      guard.outbound(chunk);
      this.#writingToClient = true;
      await writeAll(this.#client, chunk);
      this.#writingToClient = false;
    }
    if (!this.#stopped) this.close();
  }

  /**
   * A limit was broken: stop forwarding, send a GOAWAY when the server's bytes stand at a
   * frame boundary (and no write is stuck on a client that does not read), close, and
   * log once.
   */
  async #refuse(violation: H2Violation): Promise<void> {
    if (this.#stopped || this.#closed) return;
    this.#stopped = true;
    this.#onViolation(violation);
    if (this.#inner !== undefined) closeQuietly(this.#inner);
    if (!this.#writingToClient && this.#guard.outboundAtBoundary) {
      const goaway = goawayFrame(this.#guard.lastStreamId, violation.errorCode);
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([
        writeAll(this.#client, goaway).catch(() => {}),
        new Promise((resolve) => timer = setTimeout(resolve, 1000)),
      ]);
      clearTimeout(timer);
    }
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
