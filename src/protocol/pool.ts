/**
 * The upstream pool of a cluster that speaks a codec's protocol: many downstream requests
 * multiplexed on one connection per host (as MOSN does for Bolt), each sent under a
 * request id of the connection's own and answered under the client's id again.
 *
 * It implements the lifecycle's `ConnectionPool`, so load balancing, retries on connect
 * failures, the route timeout (the proxy answers 504, the codec's timeout status) and
 * access logs work as for HTTP. When the connection dies every outstanding request fails
 * at once (the proxy answers 502, the codec's connection-closed status); a request whose
 * client went away is forgotten, and its late answer dropped.
 *
 * @module
 */

import type { ProtocolCodec, ProtocolFrame } from "./api.ts";
import { FrameWriter, readFrames } from "./frame_io.ts";
import { frameHeaders, frameOf, headersOfFrame } from "./headers.ts";
import {
  type ConnectionPool,
  UpstreamConnectError,
  UpstreamProtocolError,
  type UpstreamRequest,
  UpstreamResetError,
  type UpstreamResponse,
} from "../upstream/types.ts";

/** Options of a {@linkcode MultiplexPool}. */
export interface MultiplexPoolOptions {
  connectTimeoutMs: number;
  /** Frames from the upstream longer than this close the connection. */
  maxFrameBytes: number;
  /**
   * How long a request waits for its answer when neither the route nor the frame gives
   * a timeout.
   *
   * @default {60000}
   */
  defaultTimeoutMs?: number;
}

/** The upstream host a pool connects to. */
export interface PoolHost {
  hostname: string;
  port: number;
  address: string;
}

const EMPTY = new Uint8Array(0);
const NO_TRAILERS = Promise.resolve(new Headers());
/** Extra time past a frame's own timeout before the proxy gives up on its answer. */
const TIMEOUT_GRACE_MS = 1000;
const SWEEP_MS = 500;

/** One connection per host, multiplexed. */
export class MultiplexPool implements ConnectionPool {
  #host: PoolHost;
  #codec: ProtocolCodec;
  #options: MultiplexPoolOptions;
  #connection: Promise<UpstreamConnection> | undefined;
  #closed = false;

  /** Makes the pool; it connects on the first request. */
  constructor(host: PoolHost, codec: ProtocolCodec, options: MultiplexPoolOptions) {
    this.#host = host;
    this.#codec = codec;
    this.#options = options;
  }

  /** Connections open: 0 or 1. */
  get size(): number {
    return this.#connection === undefined ? 0 : 1;
  }

  /**
   * Sends the request frame the lifecycle carried here (its headers as routes and
   * filters left them) under a fresh id, and resolves with the answer.
   *
   * @throws {UpstreamConnectError} when no connection could be made
   * @throws {UpstreamResetError} when the connection closed before the answer
   * @throws {UpstreamProtocolError} when the request is not a frame of this protocol
   */
  async request(request: UpstreamRequest): Promise<UpstreamResponse> {
    if (this.#closed) {
      throw new UpstreamConnectError(`The pool for ${this.#host.address} is closed`);
    }
    const origin = frameOf(request.headers);
    if (origin === undefined) {
      throw new UpstreamProtocolError(
        `cluster host ${this.#host.address} speaks ${this.#codec.name}; the request came in another protocol`,
      );
    }
    const template = origin.frame;
    const body = request.body === origin.body
      ? template.body
      : request.body === null
      ? EMPTY
      : request.body instanceof Uint8Array
      ? request.body
      : await new Response(request.body).bytes();
    const frame: ProtocolFrame = {
      ...template,
      headers: frameHeaders(request.headers, origin),
      body,
    };
    const connection = await this.#connect();
    const answer = await connection.send(frame, request.signal);
    if (answer === undefined) {
      // A oneway request: nothing comes back; the listener writes nothing either.
      return {
        status: 200,
        statusText: "",
        headers: new Headers(),
        body: null,
        bufferedBody: EMPTY,
        trailers: NO_TRAILERS,
      };
    }
    return {
      status: this.#codec.httpStatus(answer),
      statusText: "",
      headers: headersOfFrame(answer),
      body: null,
      bufferedBody: answer.body,
      trailers: NO_TRAILERS,
    };
  }

  #connect(): Promise<UpstreamConnection> {
    const current = this.#connection;
    if (current !== undefined) return current;
    const opening = UpstreamConnection.open(this.#host, this.#codec, this.#options, () => {
      if (this.#connection === opening) this.#connection = undefined;
    });
    this.#connection = opening;
    opening.catch(() => {
      if (this.#connection === opening) this.#connection = undefined;
    });
    return opening;
  }

  /** Closes the connection; outstanding requests fail. */
  close(): void {
    this.#closed = true;
    this.#connection?.then((c) => c.close(), () => {});
    this.#connection = undefined;
  }
}

interface Pending {
  resolve(frame: ProtocolFrame): void;
  reject(error: unknown): void;
  deadline: number;
}

/** One upstream connection and the requests outstanding on it. */
class UpstreamConnection {
  #conn: Deno.Conn;
  #codec: ProtocolCodec;
  #writer: FrameWriter;
  #pending = new Map<number, Pending>();
  #nextId = 1;
  #closed = false;
  #onClose: () => void;
  #sweep: ReturnType<typeof setInterval>;
  #defaultTimeoutMs: number;
  #address: string;

  private constructor(
    conn: Deno.Conn,
    host: PoolHost,
    codec: ProtocolCodec,
    options: MultiplexPoolOptions,
    onClose: () => void,
  ) {
    this.#conn = conn;
    this.#codec = codec;
    this.#address = host.address;
    this.#onClose = onClose;
    this.#defaultTimeoutMs = options.defaultTimeoutMs ?? 60_000;
    this.#writer = new FrameWriter(conn, (error) => this.#fail(error));
    this.#sweep = setInterval(() => this.#expire(), SWEEP_MS);
    Deno.unrefTimer(this.#sweep);
    readFrames(conn, codec, options.maxFrameBytes, (bytes) => this.#onFrame(bytes)).then(
      () => this.#fail(new Error("upstream closed the connection")),
      (error) => this.#fail(error),
    );
  }

  /** Connects to `host`. */
  static async open(
    host: PoolHost,
    codec: ProtocolCodec,
    options: MultiplexPoolOptions,
    onClose: () => void,
  ): Promise<UpstreamConnection> {
    let conn: Deno.TcpConn;
    try {
      conn = await Deno.connect({
        hostname: host.hostname,
        port: host.port,
        signal: options.connectTimeoutMs > 0
          ? AbortSignal.timeout(options.connectTimeoutMs)
          : undefined,
      });
      conn.setNoDelay(true);
    } catch (cause) {
      throw new UpstreamConnectError(`cannot connect to ${host.address}`, { cause });
    }
    return new UpstreamConnection(conn, host, codec, options, onClose);
  }

  /**
   * Writes `frame` under a new id; resolves with the answer, or with undefined for a
   * oneway request once written.
   */
  send(frame: ProtocolFrame, signal: AbortSignal | undefined): Promise<ProtocolFrame | undefined> {
    if (this.#closed) {
      return Promise.reject(new UpstreamResetError(`connection to ${this.#address} closed`));
    }
    if (signal?.aborted) return Promise.reject(signal.reason);
    const id = this.#nextId;
    this.#nextId = id >= 0x7fffffff ? 1 : id + 1;
    const bytes = this.#codec.encode({ ...frame, requestId: id });
    if (frame.type === "oneway") {
      this.#writer.write(bytes);
      return Promise.resolve(undefined);
    }
    return new Promise((resolve, reject) => {
      const timeout = frame.timeoutMs > 0
        ? frame.timeoutMs + TIMEOUT_GRACE_MS
        : this.#defaultTimeoutMs;
      const pending: Pending = { resolve, reject, deadline: Date.now() + timeout };
      if (signal !== undefined) {
        const onAbort = () => {
          if (this.#pending.get(id) === pending) this.#pending.delete(id);
          reject(signal.reason);
        };
        signal.addEventListener("abort", onAbort, { once: true });
        pending.resolve = (answer) => {
          signal.removeEventListener("abort", onAbort);
          resolve(answer);
        };
        pending.reject = (error) => {
          signal.removeEventListener("abort", onAbort);
          reject(error);
        };
      }
      this.#pending.set(id, pending);
      this.#writer.write(bytes);
    });
  }

  #onFrame(bytes: Uint8Array): void {
    const frame = this.#codec.decode(bytes);
    if (frame.type === "heartbeat") {
      this.#writer.write(this.#codec.encode(this.#codec.heartbeatAck(frame)));
      return;
    }
    if (frame.type !== "response") return;
    const pending = this.#pending.get(frame.requestId);
    if (pending === undefined) return; // its client left, or it timed out: dropped
    this.#pending.delete(frame.requestId);
    pending.resolve(frame);
  }

  #expire(): void {
    const now = Date.now();
    for (const [id, pending] of this.#pending) {
      if (pending.deadline > now) continue;
      this.#pending.delete(id);
      pending.reject(new UpstreamResetError(`no answer from ${this.#address} in time`));
    }
  }

  #fail(cause: unknown): void {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#sweep);
    this.#writer.close();
    try {
      this.#conn.close();
    } catch { /* closed already */ }
    this.#onClose();
    const error = cause instanceof UpstreamResetError
      ? cause
      : new UpstreamResetError(`connection to ${this.#address} closed`, { cause });
    const pending = [...this.#pending.values()];
    this.#pending.clear();
    for (const p of pending) p.reject(error);
  }

  /** Closes the connection; outstanding requests fail. */
  close(): void {
    this.#fail(new UpstreamResetError(`pool for ${this.#address} closed`));
  }
}
