/**
 * What the HTTP/1.1 pool tests share: a pool aimed at a raw test server, with test
 * options, and a plain GET request.
 */

import { Http1Pool } from "../../../src/upstream/http1_pool.ts";
import type { PoolOptions, UpstreamRequest } from "../../../src/upstream/types.ts";
import type { RawServer } from "./_raw_server.ts";

/** Pool options of the tests: generous limits, a long idle timeout. */
export const OPTIONS: PoolOptions = {
  maxRequestPerConn: 0,
  connectTimeoutMs: 5000,
  idleTimeoutMs: 60_000,
  maxConnections: 100,
  maxPendingRequests: 100,
};

/** A pool to `server`, with {@linkcode OPTIONS} overridden by `options`. */
export function poolFor(server: RawServer, options: Partial<PoolOptions> = {}): Http1Pool {
  return new Http1Pool({ hostname: "127.0.0.1", port: server.port }, { ...OPTIONS, ...options });
}

/** A GET of `path` with Host `example.test`, and whatever `init` overrides. */
export function get(path = "/", init: Partial<UpstreamRequest> = {}): UpstreamRequest {
  return {
    method: "GET",
    path,
    headers: new Headers({ host: "example.test" }),
    body: null,
    ...init,
  };
}
