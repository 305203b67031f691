/**
 * A listener for a request/response protocol spoken by a codec (Bolt, or one loaded by
 * URL): it cuts each connection's bytes into frames, answers heartbeats itself, and runs
 * every request frame through the same stream lifecycle as HTTP (`handleStream`), so
 * routes, stream filters, load balancing, timeouts and access logs work unchanged.
 *
 * A request frame becomes a `DownstreamRequest`: its header map as `Headers`, the
 * codec's request line as method and path, the protocol's name as authority (so virtual
 * hosts match `*` or the protocol name), the payload as body. The `StreamResponse` goes
 * back as the upstream's own response frame (id rewritten, headers as filters left them)
 * or, for a local response, the codec's response for that status.
 *
 * @module
 */

import type { ProtocolCodec, ProtocolFrame } from "./api.ts";
import { ProtocolError } from "./api.ts";
import { FrameWriter, readFrames } from "./frame_io.ts";
import { frameHeaders, frameOf, headersOfFrame } from "./headers.ts";
import { handleStream, type ListenerContext, type StreamResponse } from "../proxy/stream.ts";

/** A listener context with the codec its connections speak. */
export interface RpcListenerContext extends ListenerContext {
  /** The codec of `downstream_protocol`. */
  readonly codec: ProtocolCodec;
  /** Frames longer than this close the connection without being buffered. */
  readonly maxFrameBytes: number;
}

/** Where an {@linkcode RpcListener} binds. */
export interface RpcListenerOptions {
  hostname: string;
  port: number;
  /** Bind with `SO_REUSEPORT` (needs `--unstable-net`). */
  reusePort?: boolean;
}

const DRAIN_POLL_MS = 20;
const DRAINING = new TextEncoder().encode("draining: the proxy is shutting down");

/** Accepts connections of one codec's protocol and serves their requests. */
export class RpcListener {
  /** The context new requests use; a reload swaps it. */
  context: RpcListenerContext;
  /** The bound address. */
  readonly addr: Deno.NetAddr;
  #listener: Deno.TcpListener;
  #connections = new Set<RpcConnection>();
  #accepting: Promise<void>;
  #draining = false;

  /** Binds and starts accepting. */
  constructor(options: RpcListenerOptions, context: RpcListenerContext) {
    this.context = context;
    this.#listener = Deno.listen({
      hostname: options.hostname,
      port: options.port,
      transport: "tcp",
      ...(options.reusePort ? { reusePort: true } : {}),
    });
    this.addr = this.#listener.addr;
    this.#accepting = this.#accept();
  }

  /** Connections open now. */
  get connections(): number {
    return this.#connections.size;
  }

  async #accept(): Promise<void> {
    try {
      for await (const conn of this.#listener) {
        try {
          conn.setNoDelay(true);
        } catch { /* closed already */ }
        const connection = new RpcConnection(this, conn);
        connection.draining = this.#draining;
        this.#connections.add(connection);
        connection.closed.then(() => this.#connections.delete(connection));
      }
    } catch (error) {
      if (!(error instanceof Deno.errors.BadResource)) {
        this.context.logger.error("Listener {listener} stopped accepting: {error}", {
          listener: this.context.name,
          error,
        });
      }
    }
  }

  /**
   * Stops accepting, lets requests in flight finish for up to `drainTimeoutMs`, then
   * closes every connection.
   */
  async shutdown(drainTimeoutMs: number): Promise<void> {
    const deadline = Date.now() + drainTimeoutMs;
    // Draining from now on: a request that comes while the accept loop winds down is
    // turned away too, and so is one on a connection accepted in that window.
    this.#draining = true;
    for (const connection of this.#connections) connection.draining = true;
    try {
      this.#listener.close();
    } catch { /* closed already */ }
    await this.#accepting;
    while (Date.now() < deadline && [...this.#connections].some((c) => c.inflight > 0)) {
      await new Promise((resolve) => setTimeout(resolve, DRAIN_POLL_MS));
    }
    const cut = [...this.#connections].reduce((n, c) => n + c.inflight, 0);
    if (cut > 0) {
      this.context.logger.warn(
        `Listener ${this.context.name}: drain timeout; ${cut} request(s) cut`,
      );
    }
    const connections = [...this.#connections];
    for (const connection of connections) connection.close();
    await Promise.all(connections.map((c) => c.closed));
  }
}

/** One downstream connection. */
class RpcConnection {
  /** Resolves when the connection is closed and its requests cancelled. */
  readonly closed: Promise<void>;
  /** Set by a draining listener: new requests are answered as the proxy's 503. */
  draining = false;
  #listener: RpcListener;
  #conn: Deno.Conn;
  #writer: FrameWriter;
  #remote: { hostname: string; port: number };
  /** In-flight requests by downstream request id, to cancel when the client leaves. */
  #inflight = new Map<number, AbortController>();
  #closed = false;

  constructor(listener: RpcListener, conn: Deno.Conn) {
    this.#listener = listener;
    this.#conn = conn;
    const addr = conn.remoteAddr as Deno.NetAddr;
    this.#remote = { hostname: addr.hostname, port: addr.port };
    this.#writer = new FrameWriter(conn, () => this.close());
    this.closed = this.#serve();
  }

  get inflight(): number {
    return this.#inflight.size;
  }

  async #serve(): Promise<void> {
    const ctx = this.#listener.context;
    try {
      await readFrames(this.#conn, ctx.codec, ctx.maxFrameBytes, (bytes) => this.#onFrame(bytes));
    } catch (error) {
      if (!this.#closed) {
        const reason = error instanceof ProtocolError
          ? error.message
          : error instanceof Error
          ? error.message
          : String(error);
        const level = error instanceof ProtocolError ? "warn" : "debug";
        this.#listener.context.logger[level](
          `Listener ${this.#listener.context.name}: closing connection from ${this.#remote.hostname}:${this.#remote.port}: ${reason}`,
        );
      }
    }
    this.close();
  }

  #onFrame(bytes: Uint8Array): void {
    const ctx = this.#listener.context;
    const frame = ctx.codec.decode(bytes);
    switch (frame.type) {
      case "heartbeat":
        this.#writer.write(ctx.codec.encode(ctx.codec.heartbeatAck(frame)));
        return;
      case "request":
      case "oneway":
        if (this.#inflight.has(frame.requestId)) {
          throw new ProtocolError(
            `request id ${frame.requestId} is already in flight on this connection`,
          );
        }
        this.#onRequest(ctx, frame);
        return;
      default:
        // A client has no business sending responses; MOSN drops them too.
        ctx.logger.debug(
          `Listener ${ctx.name}: dropped a ${frame.type} frame from ${this.#remote.hostname}:${this.#remote.port}`,
        );
    }
  }

  async #onRequest(ctx: RpcListenerContext, frame: ProtocolFrame): Promise<void> {
    const codec = ctx.codec;
    const id = frame.requestId;
    const controller = new AbortController();
    this.#inflight.set(id, controller);
    const headers = headersOfFrame(frame);
    const origin = frameOf(headers)!;
    const body = frame.body.length === 0 ? null : bytesStream(frame.body);
    origin.body = body;
    const line = codec.requestLine(frame);
    let delivered!: () => void;
    let failed!: (error: unknown) => void;
    const completed = new Promise<void>((resolve, reject) => {
      delivered = resolve;
      failed = reject;
    });
    completed.catch(() => {});
    try {
      let response: StreamResponse;
      if (this.draining) {
        // Overflow (the codec's busy status), naming why: the client may go elsewhere.
        response = { status: 503, headers: new Headers(), body: DRAINING };
      } else {
        response = await handleStream(ctx, {
          method: line.method,
          target: line.path,
          authority: codec.name,
          headers,
          body,
          signal: controller.signal,
        }, { remoteAddr: this.#remote, protocol: codec.name, completed });
      }
      if (frame.type === "oneway" || this.#closed || controller.signal.aborted) {
        if (response.body instanceof ReadableStream) response.body.cancel().catch(() => {});
        if (frame.type === "oneway") delivered();
        else failed(new Error("client went away"));
        return;
      }
      const reply = await responseFrame(codec, frame, response);
      this.#writer.write(codec.encode(reply));
      delivered();
    } catch (error) {
      failed(error);
      ctx.logger.error("Stream failed on listener {listener}: {error}", {
        listener: ctx.name,
        error,
      });
      if (frame.type !== "oneway" && !this.#closed) {
        this.#writer.write(codec.encode(codec.respond(frame, 500, "internal error")));
      }
    } finally {
      this.#inflight.delete(id);
    }
  }

  /** Closes the connection; requests in flight are cancelled upstream. */
  close(): void {
    if (!this.#closed) {
      this.#closed = true;
      this.#writer.close();
      try {
        this.#conn.close();
      } catch { /* closed already */ }
      for (const controller of this.#inflight.values()) {
        controller.abort(new Error("client went away"));
      }
    }
  }
}

/** The frame that answers `request` with the lifecycle's response. */
async function responseFrame(
  codec: ProtocolCodec,
  request: ProtocolFrame,
  response: StreamResponse,
): Promise<ProtocolFrame> {
  const body = await bytesOf(response.body);
  const origin = frameOf(response.headers);
  const upstream = origin?.frame;
  if (
    upstream !== undefined && upstream.type === "response" &&
    codec.httpStatus(upstream) === response.status
  ) {
    return {
      ...upstream,
      requestId: request.requestId,
      headers: frameHeaders(response.headers, origin),
      body,
    };
  }
  // A local response (or a status a filter changed): the codec's answer for the status,
  // with the headers routes and filters set on it.
  response.headers.delete("content-type");
  response.headers.delete("content-length");
  const reply = codec.respond(request, response.status, new TextDecoder().decode(body).trim());
  const extra = frameHeaders(response.headers, undefined);
  if (extra.length > 0) reply.headers = [...reply.headers, ...extra];
  return reply;
}

const EMPTY = new Uint8Array(0);

async function bytesOf(
  body: Uint8Array | ReadableStream<Uint8Array> | null,
): Promise<Uint8Array> {
  if (body === null) return EMPTY;
  if (body instanceof Uint8Array) return body;
  return await new Response(body).bytes();
}

/** A stream of one chunk; never read when no filter asks for the body. */
function bytesStream(bytes: Uint8Array): ReadableStream<Uint8Array> {
  return new ReadableStream({
    start(controller) {
      controller.enqueue(bytes);
      controller.close();
    },
  });
}
