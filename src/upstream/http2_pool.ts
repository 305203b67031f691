/**
 * HTTP/2 upstreams: h2c with prior knowledge, or h2 over TLS, multiplexed on one
 * connection at a time.
 *
 * Built on `node:http2`, not on `fetch` + `Deno.createHttpClient({ http2: true })`, the
 * obvious choice, because on Deno 2.9.6 `fetch` is not transparent enough for a proxy:
 * - it decompresses gzip and br bodies whenever the request's Accept-Encoding is
 *   anything but `identity` (Deno's client wraps hyper in tower-http's `Decompression`
 *   with gzip and br on, and `CreateHttpClientOptions` has no switch for it), yet keeps
 *   the upstream's `content-encoding` and `content-length`, so the body no longer
 *   matches its headers;
 * - it adds `accept`, `accept-language` and `user-agent` when the request has none.
 * `node:http2` hands over the bytes and headers the upstream sent, puts a custom Host
 * into `:authority`, and reads trailers.
 *
 * @module
 */

import {
  type ClientHttp2Session,
  type ClientHttp2Stream,
  connect,
  constants,
  type IncomingHttpHeaders,
  type OutgoingHttpHeaders,
} from "node:http2";
import {
  type ConnectionPool,
  type PoolOptions,
  UpstreamConnectError,
  UpstreamOverflowError,
  type UpstreamRequest,
  UpstreamResetError,
  type UpstreamResponse,
} from "./types.ts";

/** Streams one connection is counted for; h2 servers commonly allow 100 at once. */
const STREAMS_PER_CONNECTION = 100;

/** Request headers HTTP/2 forbids (RFC 9113 section 8.2.2), and Host, which becomes :authority. */
const NOT_FORWARDED = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "transfer-encoding",
  "upgrade",
  "host",
]);

/** TLS settings of an h2 upstream. */
export interface Http2TlsOptions {
  /** PEM root certificates to trust besides the system's. */
  caCerts?: string[];
  /** Name to verify the certificate against (and send as SNI); the hostname by default. */
  serverName?: string;
}

/**
 * A pool for an HTTP/2 upstream. Without `tls` it speaks h2c with prior knowledge.
 *
 * Limits: in-flight requests beyond `maxConnections × 100 + maxPendingRequests` are
 * refused with {@linkcode UpstreamOverflowError}; `maxRequestPerConn` streams on a
 * connection make the next request open a new one while the old one drains.
 *
 * @example
 * ```ts
 * const pool = new Http2Pool({ hostname: "127.0.0.1", port: 50051 }, {
 *   maxRequestPerConn: 0,
 *   connectTimeoutMs: 1000,
 *   idleTimeoutMs: 60_000,
 *   maxConnections: 1,
 *   maxPendingRequests: 100,
 * });
 * const res = await pool.request({
 *   method: "GET",
 *   path: "/",
 *   headers: new Headers({ host: "api.example.com" }),
 *   body: null,
 * });
 * await res.body?.cancel();
 * pool.close();
 * ```
 */
export class Http2Pool implements ConnectionPool {
  #authority: string;
  #label: string;
  #options: PoolOptions;
  #tls: Http2TlsOptions | undefined;
  #session: ClientHttp2Session | null = null;
  #connecting: Promise<ClientHttp2Session> | null = null;
  /** Streams opened on {@linkcode #session}. */
  #streams = 0;
  #sessions = new Set<ClientHttp2Session>();
  #inflight = 0;
  #limit: number;
  #idleSince = 0;
  #timer: ReturnType<typeof setTimeout> | undefined = undefined;
  #closed = false;

  /**
   * Makes a pool; the connection is opened on the first request.
   *
   * @param target the upstream host
   * @param options limits and timeouts
   * @param tls set for h2 over TLS, with extra CA certificates if needed
   */
  constructor(
    target: { hostname: string; port: number },
    options: PoolOptions,
    tls?: Http2TlsOptions,
  ) {
    this.#label = target.hostname.includes(":")
      ? `[${target.hostname}]:${target.port}`
      : `${target.hostname}:${target.port}`;
    this.#authority = `${tls === undefined ? "http" : "https"}://${this.#label}`;
    this.#options = options;
    this.#tls = tls;
    const connections = options.maxConnections > 0 ? options.maxConnections : 1;
    this.#limit = connections * STREAMS_PER_CONNECTION + options.maxPendingRequests;
  }

  /** Connections currently open: the active one and any still draining. */
  get size(): number {
    return this.#sessions.size;
  }

  /**
   * Sends a request as one HTTP/2 stream.
   *
   * @param request the request; its Host header becomes `:authority`
   * @returns the response, its body streaming
   * @throws {UpstreamConnectError} when no connection could be made
   * @throws {UpstreamOverflowError} when too many requests are in flight
   * @throws {UpstreamResetError} when the stream failed before a response head
   */
  async request(request: UpstreamRequest): Promise<UpstreamResponse> {
    if (this.#closed) {
      throw new UpstreamConnectError(`The pool for upstream ${this.#label} is closed`);
    }
    request.signal?.throwIfAborted();
    if (this.#inflight >= this.#limit) {
      throw new UpstreamOverflowError(
        `Upstream ${this.#label} has ${this.#inflight} requests in flight, its limit`,
      );
    }
    this.#inflight++;
    let exchange: Http2Exchange;
    try {
      const session = await this.#sessionForRequest();
      request.signal?.throwIfAborted();
      exchange = new Http2Exchange(this, session, request);
    } catch (err) {
      this.done();
      throw err;
    }
    return await exchange.send();
  }

  /** Closes every connection; later requests fail. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    for (const session of this.#sessions) session.destroy();
    this.#sessions.clear();
    this.#session = null;
  }

  /** `host:port`, for messages. */
  get label(): string {
    return this.#label;
  }

  /** An exchange ended; counts it and arms the idle timer. */
  done(): void {
    this.#inflight--;
    if (this.#inflight > 0 || this.#closed || this.#options.idleTimeoutMs <= 0) return;
    this.#idleSince = Date.now();
    if (this.#timer === undefined) this.#schedule(this.#options.idleTimeoutMs);
  }

  async #sessionForRequest(): Promise<ClientHttp2Session> {
    let session = this.#session;
    const max = this.#options.maxRequestPerConn;
    if (session !== null && max > 0 && this.#streams >= max) {
      // let it finish its streams, then it closes; new requests go to a new connection
      session.close();
      this.#session = session = null;
    }
    if (session === null || session.closed || session.destroyed) {
      session = await (this.#connecting ??= this.#connect());
    }
    this.#streams++;
    return session;
  }

  async #connect(): Promise<ClientHttp2Session> {
    try {
      const session = await this.#open();
      if (this.#closed) {
        session.destroy();
        throw new UpstreamConnectError(`The pool for upstream ${this.#label} was closed`);
      }
      this.#session = session;
      this.#streams = 0;
      return session;
    } finally {
      this.#connecting = null;
    }
  }

  #open(): Promise<ClientHttp2Session> {
    const tls = this.#tls;
    const session = connect(
      this.#authority,
      tls === undefined ? {} : { ca: tls.caCerts, servername: tls.serverName },
    );
    this.#sessions.add(session);
    const forget = () => {
      this.#sessions.delete(session);
      if (this.#session === session) this.#session = null;
    };
    session.on("close", forget);
    session.on("goaway", forget);
    const ms = this.#options.connectTimeoutMs;
    return new Promise((resolve, reject) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const fail = (err: unknown) => {
        clearTimeout(timer);
        session.destroy();
        forget();
        this.#options.stats?.connectFailed();
        reject(
          err instanceof UpstreamConnectError ? err : new UpstreamConnectError(
            `Cannot connect to upstream ${this.#label}: ${(err as Error).message}`,
            { cause: err },
          ),
        );
      };
      if (ms > 0) {
        timer = setTimeout(
          () =>
            fail(
              new UpstreamConnectError(
                `Connecting to upstream ${this.#label} timed out after ${ms}ms`,
              ),
            ),
          ms,
        );
      }
      session.once("error", fail);
      session.once("connect", () => {
        clearTimeout(timer);
        session.off("error", fail);
        // later session errors also fail its streams, which report them
        session.on("error", ignore);
        const stats = this.#options.stats;
        if (stats !== undefined) {
          stats.connected();
          session.once("close", () => stats.disconnected());
        }
        resolve(session);
      });
    });
  }

  #schedule(ms: number): void {
    this.#timer = setTimeout(this.#sweep, ms);
    Deno.unrefTimer(this.#timer);
  }

  #sweep = (): void => {
    this.#timer = undefined;
    if (this.#inflight > 0 || this.#closed) return;
    const left = this.#idleSince + this.#options.idleTimeoutMs - Date.now();
    if (left > 0) {
      this.#schedule(left);
      return;
    }
    for (const session of this.#sessions) session.close();
    this.#session = null;
  };
}

/** One request as one stream; also the response body's stream source. */
class Http2Exchange implements UnderlyingDefaultSource<Uint8Array> {
  #pool: Http2Pool;
  #request: UpstreamRequest;
  #stream: ClientHttp2Stream;
  #controller: ReadableStreamDefaultController<Uint8Array> | null = null;
  #ended = false;
  #trailers: Headers | null = null;
  #trailersDone = Promise.withResolvers<Headers>();

  constructor(pool: Http2Pool, session: ClientHttp2Session, request: UpstreamRequest) {
    this.#pool = pool;
    this.#request = request;
    const headers: OutgoingHttpHeaders = {
      ":method": request.method,
      ":path": request.path,
      ":authority": request.headers.get("host") ?? pool.label,
    };
    request.headers.forEach((value, name) => {
      if (NOT_FORWARDED.has(name) || (name === "te" && value !== "trailers")) return;
      if (name === "set-cookie") {
        const list = headers[name];
        headers[name] = Array.isArray(list) ? [...list, value] : [value];
      } else {
        headers[name] = value;
      }
    });
    this.#stream = session.request(headers, { endStream: request.body === null });
  }

  /** Sends the body and waits for the response head. */
  send(): Promise<UpstreamResponse> {
    const stream = this.#stream;
    const request = this.#request;
    const { promise, resolve, reject } = Promise.withResolvers<UpstreamResponse>();
    const onAbort = () => stream.close(constants.NGHTTP2_CANCEL);
    request.signal?.addEventListener("abort", onAbort, { once: true });
    stream.once("response", (head: IncomingHttpHeaders) => {
      stream.off("error", beforeHead);
      stream.off("close", beforeHead);
      stream.on("error", (err) => this.#fail(err));
      resolve(this.#response(head));
    });
    const beforeHead = (err?: unknown) => {
      this.#end();
      request.signal?.removeEventListener("abort", onAbort);
      if (request.signal?.aborted) {
        reject(request.signal.reason);
        return;
      }
      reject(
        new UpstreamResetError(
          `Upstream ${this.#pool.label} reset the stream before a response head`,
          { cause: err ?? stream.rstCode },
        ),
      );
    };
    stream.once("error", beforeHead);
    stream.once("close", beforeHead);
    stream.on("trailers", (fields: IncomingHttpHeaders) => {
      this.#trailers = toHeaders(fields);
    });
    stream.on("close", () => {
      request.signal?.removeEventListener("abort", onAbort);
      if (request.signal?.aborted) this.#fail(request.signal.reason);
      else if (!this.#ended) {
        this.#fail(new UpstreamResetError(`Upstream ${this.#pool.label} reset the stream`));
      }
    });
    const body = request.body;
    if (body instanceof Uint8Array) stream.end(body);
    else if (body !== null) this.#sendBody(body);
    return promise;
  }

  #response(head: IncomingHttpHeaders): UpstreamResponse {
    const status = Number(head[":status"]);
    const method = this.#request.method;
    const empty = method === "HEAD" || status === 204 || status === 304;
    let body: ReadableStream<Uint8Array> | null = null;
    if (empty) {
      // nothing to read, but the stream must be drained to end cleanly
      this.#stream.resume();
      this.#stream.once("end", () => this.#finish());
    } else {
      body = new ReadableStream<Uint8Array>(this);
    }
    return {
      status,
      statusText: "",
      headers: toHeaders(head),
      body,
      trailers: this.#trailersDone.promise,
    };
  }

  /** Stream source: forwards data, pausing the h2 stream when the consumer lags. */
  start(controller: ReadableStreamDefaultController<Uint8Array>): void {
    this.#controller = controller;
    const stream = this.#stream;
    stream.on("data", (chunk: Uint8Array) => {
      // data already buffered keeps coming after a cancel
      if (this.#ended) return;
      controller.enqueue(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength));
      if ((controller.desiredSize ?? 0) <= 0) stream.pause();
    });
    stream.once("end", () => {
      if (this.#ended) return;
      controller.close();
      this.#finish();
    });
  }

  /** Stream source: the consumer wants more. */
  pull(): void {
    this.#stream.resume();
  }

  /** Stream source: the consumer gave up; the stream is reset. */
  cancel(): void {
    this.#stream.close(constants.NGHTTP2_CANCEL);
    this.#finish();
  }

  async #sendBody(body: ReadableStream<Uint8Array>): Promise<void> {
    const stream = this.#stream;
    const reader = body.getReader();
    try {
      while (true) {
        const { done, value } = await reader.read();
        if (done) break;
        if (stream.destroyed) {
          await reader.cancel();
          return;
        }
        if (!stream.write(value)) await drained(stream);
      }
      stream.end();
    } catch (err) {
      // the downstream body failed: the upstream must not take a truncated body for whole
      stream.close(constants.NGHTTP2_CANCEL);
      this.#fail(err);
    }
  }

  #finish(): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#trailersDone.resolve(this.#trailers ?? new Headers());
    this.#pool.done();
  }

  #end(): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#trailersDone.resolve(new Headers());
    this.#pool.done();
  }

  #fail(err: unknown): void {
    if (this.#ended) return;
    this.#end();
    try {
      this.#controller?.error(err);
    } catch {
      // already closed
    }
  }
}

function toHeaders(fields: IncomingHttpHeaders): Headers {
  const headers = new Headers();
  for (const name in fields) {
    if (name.charCodeAt(0) === 58) continue; // pseudo-headers such as :status
    const value = fields[name];
    if (value === undefined) continue;
    if (Array.isArray(value)) { for (const v of value) headers.append(name, v); }
    else headers.append(name, String(value));
  }
  return headers;
}

/** Resolves when `stream` can take more writes, or is closed. */
function drained(stream: ClientHttp2Stream): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      stream.off("drain", done);
      stream.off("close", done);
      resolve();
    };
    stream.on("drain", done);
    stream.on("close", done);
  });
}

function ignore(): void {}
