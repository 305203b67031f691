/**
 * The gRPC side of one running plugin: `proto.Plugin/Call` and the optional
 * `grpc.health.v1.Health/Check`, as unary gRPC calls over Mosaic's own HTTP/2 client
 * connection ({@link ./h2.ts}, on `Deno.connect`).
 *
 * This is the whole of gRPC a plugin host needs, so it is written here rather than taken
 * from `@grpc/grpc-js` (which topped out near 2,500 calls/s on a 2-core machine) or put on
 * `node:http2` (about 200 µs of CPU per call under Deno); `bench/plugin_bench.ts` measures
 * it against grpc-js in the same run. The wire is gRPC's, unchanged: a `POST` of
 * `/proto.Plugin/Call` with `content-type: application/grpc`, `te: trailers`, the
 * deadline as `grpc-timeout`, one length-prefixed message (a 0 flag byte, a 4-byte
 * big-endian length, the protobuf bytes), and the answer's `grpc-status`/`grpc-message`
 * in the trailers (or in the headers of a trailers-only answer). Plugins on
 * hashicorp/go-plugin, grpcio, grpc-java and grpc-js answer it as they answer any gRPC
 * client.
 *
 * Calls are spread over up to `maxConnections` HTTP/2 connections: a call goes on the
 * connection with the fewest calls in flight, and a new connection is opened when every
 * open one has `streamsPerConnection` or more (or the plugin's `MAX_CONCURRENT_STREAMS`).
 * HTTP/2 multiplexes calls, so a slow call holds up no other.
 *
 * @module
 */

import type { PluginRequest, PluginResponse } from "../filter/api.ts";
import { PluginCallError } from "./errors.ts";
import { H2Connection, H2Error, type H2Target, type StreamHandler } from "./h2.ts";
import { encodeHeaders, type HeaderField } from "./hpack.ts";
import {
  CALL_PATH,
  decodeHealthResponse,
  decodeResponse,
  encodeHealthRequest,
  encodeRequest,
  HEALTH_CHECK_PATH,
  HEALTH_SERVICE,
  type ServingStatus,
} from "./proto.ts";

/** Largest message either side may send: bodies travel in one message. */
export const MAX_MESSAGE_BYTES = 64 * 1024 * 1024;

/** What a health check found. */
export type HealthResult = ServingStatus | "UNIMPLEMENTED";

/** The gRPC status codes this client raises or reads. */
export const GrpcStatus = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  UNAUTHENTICATED: 16,
} as const;

const STATUS_NAMES = [
  "OK",
  "CANCELLED",
  "UNKNOWN",
  "INVALID_ARGUMENT",
  "DEADLINE_EXCEEDED",
  "NOT_FOUND",
  "ALREADY_EXISTS",
  "PERMISSION_DENIED",
  "RESOURCE_EXHAUSTED",
  "FAILED_PRECONDITION",
  "ABORTED",
  "OUT_OF_RANGE",
  "UNIMPLEMENTED",
  "INTERNAL",
  "UNAVAILABLE",
  "DATA_LOSS",
  "UNAUTHENTICATED",
];

/** The name of a gRPC status code (`UNAVAILABLE`), or the number. */
export function statusName(code: number): string {
  return STATUS_NAMES[code] ?? String(code);
}

/** Options of {@linkcode PluginClient}. */
export interface PluginClientOptions {
  /**
   * The most HTTP/2 connections opened to the plugin.
   *
   * @default {4}
   */
  maxConnections?: number;
  /**
   * Calls in flight on each open connection before another connection is opened.
   *
   * @default {32}
   */
  streamsPerConnection?: number;
}

/** How long `ready` waits between attempts to connect. */
const READY_RETRY_MS = 25;

/** gRPC's mapping of an HTTP status, for an answer without `grpc-status`. */
function statusFromHttp(status: number): number {
  switch (status) {
    case 400:
      return GrpcStatus.INTERNAL;
    case 401:
      return GrpcStatus.UNAUTHENTICATED;
    case 403:
      return GrpcStatus.PERMISSION_DENIED;
    case 404:
      return GrpcStatus.UNIMPLEMENTED;
    case 429:
    case 502:
    case 503:
    case 504:
      return GrpcStatus.UNAVAILABLE;
    default:
      return GrpcStatus.UNKNOWN;
  }
}

/** gRPC's mapping of an RST_STREAM code, for a call reset without a status. */
function statusFromReset(code: number): number {
  switch (code) {
    case H2Error.REFUSED_STREAM:
      return GrpcStatus.UNAVAILABLE;
    case H2Error.CANCEL:
      return GrpcStatus.CANCELLED;
    case H2Error.ENHANCE_YOUR_CALM:
      return GrpcStatus.RESOURCE_EXHAUSTED;
    case H2Error.INADEQUATE_SECURITY:
      return GrpcStatus.PERMISSION_DENIED;
    default:
      return GrpcStatus.INTERNAL;
  }
}

/** `grpc-message` is percent-encoded. */
function decodeGrpcMessage(value: unknown): string {
  if (typeof value !== "string" || value === "") return "";
  try {
    return decodeURIComponent(value);
  } catch {
    return value;
  }
}

/** A failed call before it became a {@linkcode PluginCallError}. */
class CallFailure extends Error {
  constructor(readonly code: number, message: string, options?: ErrorOptions) {
    super(message, options);
  }
}

/** A header block per method path and deadline, encoded once. */
class HeaderBlocks {
  readonly #authority: string;
  #cache = new Map<string, Uint8Array>();

  constructor(authority: string) {
    this.#authority = authority;
  }

  get(path: string, timeoutMs: number): Uint8Array {
    const key = timeoutMs > 0 ? `${path} ${timeoutMs}` : path;
    let block = this.#cache.get(key);
    if (block === undefined) {
      const fields: HeaderField[] = [
        [":method", "POST"],
        [":scheme", "http"],
        [":path", path],
        [":authority", this.#authority],
        ["content-type", "application/grpc"],
        ["te", "trailers"],
        ["user-agent", "mosaic-plugin-client"],
      ];
      // gRPC allows at most 8 digits: milliseconds up to about 27 hours, then seconds.
      if (timeoutMs > 0) {
        const ms = Math.ceil(timeoutMs);
        fields.push(["grpc-timeout", ms < 1e8 ? `${ms}m` : `${Math.ceil(ms / 1000)}S`]);
      }
      block = encodeHeaders(fields);
      if (this.#cache.size >= 256) this.#cache.clear();
      this.#cache.set(key, block);
    }
    return block;
  }
}

/** The 5-byte gRPC prefix (uncompressed, the length), then the message. */
function grpcFrame(message: Uint8Array): Uint8Array {
  const frame = new Uint8Array(5 + message.length);
  const n = message.length;
  frame[1] = n >>> 24;
  frame[2] = (n >>> 16) & 0xff;
  frame[3] = (n >>> 8) & 0xff;
  frame[4] = n & 0xff;
  frame.set(message, 5);
  return frame;
}

/** Calls with one timeout, in the order they started: so in the order of their deadlines. */
interface DeadlineQueue {
  calls: UnaryCall[];
  head: number;
  timer: ReturnType<typeof setTimeout> | undefined;
}

/**
 * The deadlines of calls in flight, without a timer per call: calls go into a queue per
 * timeout value (in deadline order, since they start in time order), and one timer per
 * queue waits for its oldest unsettled call. Calls that settle meanwhile are dropped when
 * the timer fires; a plugin filter with one `timeout` fires about one timer per timeout
 * period, whatever the rate of calls.
 */
class Deadlines {
  readonly #queues = new Map<number, DeadlineQueue>();

  add(call: UnaryCall, timeoutMs: number): void {
    call.deadline = Date.now() + timeoutMs;
    let q = this.#queues.get(timeoutMs);
    if (q === undefined) {
      q = { calls: [], head: 0, timer: undefined };
      this.#queues.set(timeoutMs, q);
    }
    q.calls.push(call);
    if (q.timer === undefined) this.#arm(q, timeoutMs);
  }

  /** Drops settled calls; stops the timers of queues left empty (on close). */
  prune(): void {
    for (const [timeoutMs, q] of this.#queues) {
      q.calls = q.calls.slice(q.head).filter((c) => !c.settled);
      q.head = 0;
      if (q.calls.length === 0) {
        clearTimeout(q.timer);
        this.#queues.delete(timeoutMs);
      }
    }
  }

  #arm(q: DeadlineQueue, timeoutMs: number): void {
    const first = q.calls[q.head];
    const wait = Math.max(0, first.deadline - Date.now());
    q.timer = setTimeout(() => this.#fire(q, timeoutMs), wait);
  }

  #fire(q: DeadlineQueue, timeoutMs: number): void {
    q.timer = undefined;
    const now = Date.now();
    const calls = q.calls;
    let head = q.head;
    while (head < calls.length) {
      const call = calls[head];
      if (!call.settled && call.deadline > now) break;
      call.expire(); // a no-op for a settled call
      head++;
    }
    if (head === calls.length) {
      q.calls = [];
      q.head = 0;
      this.#queues.delete(timeoutMs);
      return;
    }
    if (head > 1024 && head * 2 > calls.length) {
      q.calls = calls.slice(head);
      head = 0;
    }
    q.head = head;
    this.#arm(q, timeoutMs);
  }
}

/** One unary call in flight: gathers the answer and settles its promise. */
class UnaryCall implements StreamHandler {
  #resolve: (bytes: Uint8Array) => void;
  #reject: (err: CallFailure) => void;
  #settled = false;
  #httpStatus = 0;
  #grpcStatus = -1;
  #grpcMessage = "";
  #chunks: Uint8Array[] = [];
  #received = 0;
  handle: { id: number; cancelled: boolean } | undefined;
  /** When the call times out (ms since the epoch), set by {@linkcode Deadlines}. */
  deadline = 0;

  constructor(
    resolve: (bytes: Uint8Array) => void,
    reject: (err: CallFailure) => void,
    readonly conn: H2Connection,
  ) {
    this.#resolve = resolve;
    this.#reject = reject;
  }

  get settled(): boolean {
    return this.#settled;
  }

  /** The deadline passed: reset the stream and fail. */
  expire(): void {
    if (this.#settled) return;
    if (this.handle) this.conn.cancel(this.handle);
    this.#fail(new CallFailure(GrpcStatus.DEADLINE_EXCEEDED, "deadline exceeded"));
  }

  #fail(failure: CallFailure): void {
    if (this.#settled) return;
    this.#settled = true;
    this.#chunks = [];
    this.#reject(failure);
  }

  onHeaders(fields: HeaderField[], endStream: boolean): void {
    for (let i = 0; i < fields.length; i++) {
      const [name, value] = fields[i];
      if (name === ":status") this.#httpStatus = Number(value) || 0;
      else if (name === "grpc-status") {
        const n = Number(value);
        this.#grpcStatus = Number.isInteger(n) && n >= 0 ? n : GrpcStatus.UNKNOWN;
      } else if (name === "grpc-message") this.#grpcMessage = decodeGrpcMessage(value);
    }
    if (endStream) this.#finish();
  }

  onData(data: Uint8Array, endStream: boolean): void {
    if (this.#settled) return;
    this.#received += data.length;
    if (this.#received > MAX_MESSAGE_BYTES + 5) {
      if (this.handle) this.conn.cancel(this.handle);
      this.#fail(
        new CallFailure(
          GrpcStatus.RESOURCE_EXHAUSTED,
          `the plugin's answer is larger than ${MAX_MESSAGE_BYTES} bytes`,
        ),
      );
      return;
    }
    this.#chunks.push(data);
    if (endStream) this.#finish();
  }

  onReset(code: number): void {
    if (this.#grpcStatus >= 0) {
      this.#finish();
      return;
    }
    this.#fail(new CallFailure(statusFromReset(code), `the plugin reset the call (code ${code})`));
  }

  onLost(error: Error, refused: boolean): void {
    this.#fail(
      new CallFailure(
        GrpcStatus.UNAVAILABLE,
        refused
          ? `the plugin did not take the call: ${error.message}`
          : `the connection to the plugin was lost during the call: ${error.message}`,
        { cause: error },
      ),
    );
  }

  /** The stream ended: settle from what arrived, the status, then the one message. */
  #finish(): void {
    if (this.#settled) return;
    const status = this.#grpcStatus;
    if (status < 0) {
      const http = this.#httpStatus;
      this.#fail(
        http !== 200 && http !== 0
          ? new CallFailure(statusFromHttp(http), `HTTP status ${http}`)
          : new CallFailure(GrpcStatus.INTERNAL, "the plugin's answer has no grpc-status"),
      );
      return;
    }
    if (status !== GrpcStatus.OK) {
      this.#fail(new CallFailure(status, this.#grpcMessage || statusName(status)));
      return;
    }
    const chunks = this.#chunks;
    let body: Uint8Array;
    if (chunks.length === 1) body = chunks[0];
    else {
      body = new Uint8Array(this.#received);
      let off = 0;
      for (const c of chunks) {
        body.set(c, off);
        off += c.length;
      }
    }
    if (body.length < 5) {
      this.#fail(new CallFailure(GrpcStatus.INTERNAL, "the plugin answered OK without a message"));
      return;
    }
    if (body[0] !== 0) {
      this.#fail(new CallFailure(GrpcStatus.INTERNAL, "the plugin sent a compressed message"));
      return;
    }
    const length = ((body[1] << 24) | (body[2] << 16) | (body[3] << 8) | body[4]) >>> 0;
    if (body.length !== 5 + length) {
      this.#fail(
        new CallFailure(
          GrpcStatus.INTERNAL,
          `the plugin's message frame says ${length} bytes, ${body.length - 5} arrived`,
        ),
      );
      return;
    }
    this.#settled = true;
    this.#resolve(body.subarray(5));
  }
}

/** A gRPC client of one plugin process, over one or more HTTP/2 connections. */
export class PluginClient {
  readonly #plugin: string;
  readonly #target: H2Target;
  readonly #blocks: HeaderBlocks;
  readonly #maxConnections: number;
  readonly #streamsPerConnection: number;
  #connections: H2Connection[] = [];
  readonly #deadlines = new Deadlines();
  #closed = false;
  readonly #onGone = (c: H2Connection) => {
    const i = this.#connections.indexOf(c);
    if (i !== -1) this.#connections.splice(i, 1);
  };

  /**
   * Creates the client; it connects on the first call or on
   * {@linkcode PluginClient.ready}.
   *
   * @param plugin The plugin's name, for errors.
   * @param target `host:port` or `unix:///path` (the handshake's target).
   * @param options How many connections.
   */
  constructor(plugin: string, target: string, options: PluginClientOptions = {}) {
    this.#plugin = plugin;
    this.#maxConnections = Math.max(1, options.maxConnections ?? 4);
    this.#streamsPerConnection = Math.max(1, options.streamsPerConnection ?? 32);
    if (target.startsWith("unix:")) {
      this.#target = { transport: "unix", path: target.replace(/^unix:(\/\/)?/, "") };
      this.#blocks = new HeaderBlocks("localhost");
    } else {
      const colon = target.lastIndexOf(":");
      const hostname = target.slice(0, colon).replace(/^\[(.*)\]$/, "$1");
      this.#target = { transport: "tcp", hostname, port: Number(target.slice(colon + 1)) };
      this.#blocks = new HeaderBlocks(target);
    }
  }

  /** Open HTTP/2 connections (for tests and the benchmark). */
  get connections(): number {
    return this.#connections.length;
  }

  /**
   * Connects, so the first call does not pay for it; retries until the plugin answers
   * with its HTTP/2 settings.
   *
   * @param timeoutMs How long to try.
   * @throws {Error} when no connection is made in time.
   */
  async ready(timeoutMs: number): Promise<void> {
    const end = Date.now() + timeoutMs;
    let last: Error | undefined;
    while (!this.#closed) {
      const c = this.#connections.find((c) => c.usable) ?? this.#open();
      let timer: ReturnType<typeof setTimeout> | undefined;
      const result = await Promise.race([
        c.ready.then(() => true, (err: Error) => err),
        new Promise<false>((r) =>
          timer = setTimeout(() => r(false), Math.max(1, end - Date.now()))
        ),
      ]);
      clearTimeout(timer);
      if (result === true) return;
      if (result instanceof Error) last = result;
      c.destroy();
      if (Date.now() + READY_RETRY_MS >= end) break;
      await new Promise((r) => setTimeout(r, READY_RETRY_MS));
    }
    throw new Error(
      this.#closed
        ? "the client was closed"
        : `no connection within ${timeoutMs} ms${last ? `: ${last.message}` : ""}`,
    );
  }

  /**
   * Calls `proto.Plugin/Call`.
   *
   * @param request The request.
   * @param timeoutMs The call's deadline; 0 means none.
   * @returns The plugin's response.
   * @throws {PluginCallError} on any gRPC error, `timedOut` set when the deadline passed.
   */
  async call(request: PluginRequest, timeoutMs: number): Promise<PluginResponse> {
    let bytes: Uint8Array;
    try {
      bytes = await this.#unary(CALL_PATH, encodeRequest(request, true), timeoutMs);
    } catch (err) {
      throw this.#error("call", err, timeoutMs);
    }
    try {
      return decodeResponse(bytes);
    } catch (err) {
      throw this.#error(
        "call",
        new CallFailure(GrpcStatus.INTERNAL, `bad response: ${(err as Error).message}`),
        timeoutMs,
      );
    }
  }

  /**
   * Asks `grpc.health.v1.Health/Check` about service `plugin` (go-plugin's name).
   *
   * @param timeoutMs The check's deadline.
   * @returns The serving status, or `UNIMPLEMENTED` when the plugin has no health service.
   * @throws {PluginCallError} on any other gRPC error.
   */
  async health(timeoutMs: number): Promise<HealthResult> {
    try {
      const bytes = await this.#unary(
        HEALTH_CHECK_PATH,
        grpcFrame(encodeHealthRequest(HEALTH_SERVICE)),
        timeoutMs,
      );
      return decodeHealthResponse(bytes);
    } catch (err) {
      const code = err instanceof CallFailure ? err.code : GrpcStatus.UNKNOWN;
      if (code === GrpcStatus.UNIMPLEMENTED) return "UNIMPLEMENTED";
      // A health service that does not know "plugin" still answers for the server.
      if (code === GrpcStatus.NOT_FOUND) return "SERVICE_UNKNOWN";
      throw this.#error("health check", err, timeoutMs);
    }
  }

  /** Closes the connections; calls in flight finish first. */
  close(): void {
    this.#closed = true;
    for (const c of [...this.#connections]) c.close();
    // Calls still in flight keep their deadlines; no timer outlives the rest.
    this.#deadlines.prune();
  }

  #open(): H2Connection {
    const c = new H2Connection(this.#target);
    c.onClose = this.#onGone;
    this.#connections.push(c);
    return c;
  }

  /** The connection with the fewest calls in flight, or a new one when all are busy. */
  #pick(): H2Connection {
    let best: H2Connection | undefined;
    const all = this.#connections;
    for (let i = 0; i < all.length; i++) {
      const c = all[i];
      if (c.usable && (best === undefined || c.active < best.active)) best = c;
    }
    if (
      best === undefined ||
      ((best.active >= this.#streamsPerConnection || best.active >= best.streamLimit) &&
        all.length < this.#maxConnections)
    ) {
      best = this.#open();
    }
    return best;
  }

  /**
   * One unary call: a framed message out (the 5-byte prefix, then the message), a framed
   * message back.
   */
  #unary(path: string, frame: Uint8Array, timeoutMs: number): Promise<Uint8Array> {
    if (this.#closed) {
      return Promise.reject(new CallFailure(GrpcStatus.UNAVAILABLE, "the client was closed"));
    }
    if (frame.length - 5 > MAX_MESSAGE_BYTES) {
      return Promise.reject(
        new CallFailure(
          GrpcStatus.RESOURCE_EXHAUSTED,
          `the request is ${frame.length - 5} bytes, more than ${MAX_MESSAGE_BYTES}`,
        ),
      );
    }
    const conn = this.#pick();
    const block = this.#blocks.get(path, timeoutMs);
    return new Promise<Uint8Array>((resolve, reject) => {
      const call = new UnaryCall(resolve, reject, conn);
      call.handle = conn.request(block, frame, call);
      if (timeoutMs > 0) this.#deadlines.add(call, timeoutMs);
    });
  }

  #error(what: string, err: unknown, timeoutMs: number): PluginCallError {
    const failure = err instanceof CallFailure
      ? err
      : new CallFailure(GrpcStatus.UNKNOWN, err instanceof Error ? err.message : String(err), {
        cause: err,
      });
    const code = failure.code;
    const text = code === GrpcStatus.DEADLINE_EXCEEDED
      ? `timed out after ${timeoutMs} ms`
      : `failed with ${statusName(code)}: ${failure.message}`;
    return new PluginCallError(this.#plugin, code, `Plugin "${this.#plugin}" ${what} ${text}`, {
      cause: failure.cause ?? failure,
    });
  }
}
