/**
 * The upstream side's contract: how the proxy asks a cluster's connection pool for a
 * response, and the errors that become the proxy's own status codes.
 *
 * @module
 */

import type { HostStats } from "../stats/scopes.ts";

/**
 * A request to send upstream. A pool never writes hop-by-hop fields from `headers` (a
 * filter may have set one): it frames the body and manages its connection itself.
 */
export interface UpstreamRequest {
  method: string;
  /** Path with query string. */
  path: string;
  /** Headers to send, Host included. */
  headers: Headers;
  /**
   * The body: bytes (sent with Content-Length), a stream (sent with the request's
   * Content-Length when the headers give one, else chunked), or null for none.
   */
  body: Uint8Array | ReadableStream<Uint8Array> | null;
  /** Aborts the exchange: the connection is closed, not returned to the pool. */
  signal?: AbortSignal;
}

/** An upstream's response. Its body streams; reading it to the end frees the connection. */
export interface UpstreamResponse {
  status: number;
  statusText: string;
  /**
   * Response headers without hop-by-hop fields (nor those the upstream's Connection
   * named): a pool never hands over what described its own connection.
   */
  headers: Headers;
  /** Null for HEAD, 204, 304 and 1xx-free empty bodies. */
  body: ReadableStream<Uint8Array> | null;
  /**
   * The whole body, when it arrived with the head (a small Content-Length body): the
   * connection is then already back in the pool and `body` need not be read.
   */
  bufferedBody?: Uint8Array | null;
  /** Trailers of a chunked body, resolved when the body ends (empty when none). */
  trailers: Promise<Headers>;
}

/** A pool of connections to one upstream host. */
export interface ConnectionPool {
  /**
   * Sends a request.
   *
   * @throws {UpstreamConnectError} when no connection could be made (the proxy answers 502)
   * @throws {UpstreamOverflowError} when the pool's limits are reached (503)
   * @throws {UpstreamResetError} when the upstream closed before a full response head (502)
   */
  request(request: UpstreamRequest): Promise<UpstreamResponse>;
  /** Connections currently open (idle and busy). */
  readonly size: number;
  /** Closes every connection; later requests fail. */
  close(): void;
}

/** Options of a pool, from the cluster config. */
export interface PoolOptions {
  /** Requests on one connection before it is closed; 0 means unlimited. */
  maxRequestPerConn: number;
  connectTimeoutMs: number;
  idleTimeoutMs: number;
  /** Concurrent connections; more requests wait, up to `maxPendingRequests`. */
  maxConnections: number;
  maxPendingRequests: number;
  /** Counts the pool's connections: opened, closed, failed connects. */
  stats?: HostStats;
}

/** No connection to the upstream could be made (refused, unreachable, connect timeout). */
export class UpstreamConnectError extends Error {
  /** Makes the error. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "UpstreamConnectError";
  }
}

/** The pool's connection and pending-request limits are reached. */
export class UpstreamOverflowError extends Error {
  /** Makes the error. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "UpstreamOverflowError";
  }
}

/** The upstream closed the connection or sent garbage before a full response head. */
export class UpstreamResetError extends Error {
  /** Makes the error. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "UpstreamResetError";
  }
}

/**
 * The upstream answered against HTTP/1.1's rules in a way that is not a malformed head,
 * such as `101 Switching Protocols` to a request that asked for no upgrade. A kind of
 * {@linkcode UpstreamResetError}, so callers answer it the same way (502).
 */
export class UpstreamProtocolError extends UpstreamResetError {
  /** Makes the error. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "UpstreamProtocolError";
  }
}
