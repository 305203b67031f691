/**
 * A connection pool whose upstream is a function in this process: the seam that lets
 * a request run through the whole proxy lifecycle without a socket, for fast filter
 * tests and embedding (as Hono's `app.request()` does for middleware).
 *
 * @module
 */

import { stripHopByHop } from "../proxy/headers.ts";
import type { ConnectionPool, UpstreamRequest, UpstreamResponse } from "./types.ts";

/** An in-process upstream: a fetch-style handler. */
export type UpstreamHandler = (request: Request) => Response | Promise<Response>;

/** A pool that hands every request to a handler instead of a connection. */
export class FunctionPool implements ConnectionPool {
  #closed = false;

  /** Wraps `handler`; `authority` is used to build the request URL. */
  constructor(readonly handler: UpstreamHandler, readonly authority: string) {}

  /** Calls the handler with a `Request` made from the upstream request. */
  async request(request: UpstreamRequest): Promise<UpstreamResponse> {
    if (this.#closed) throw new Error(`The pool for ${this.authority} is closed`);
    const hasBody = request.body !== null && request.method !== "GET" &&
      request.method !== "HEAD";
    const response = await this.handler(
      new Request(`http://${this.authority}${request.path}`, {
        method: request.method,
        headers: request.headers,
        body: hasBody ? request.body as BodyInit : null,
        signal: request.signal,
      }),
    );
    const headers = new Headers(response.headers);
    stripHopByHop(headers);
    return {
      status: response.status,
      statusText: response.statusText,
      headers,
      body: response.body,
      trailers: Promise.resolve(new Headers()),
    };
  }

  /** Always 0: there are no connections. */
  get size(): number {
    return 0;
  }

  /** Refuses later requests. */
  close(): void {
    this.#closed = true;
  }
}
