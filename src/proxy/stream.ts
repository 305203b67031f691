/**
 * The stream lifecycle: one request and its response, top to bottom.
 *
 * ```
 * create filters → before_route → match route → after_route (↺ rematch_route)
 *   → choose host → after_choose_host (↺ rechoose_host) → upstream (retries, timeout)
 *   → before_send → write response → finish (access log, onDestroy once)
 * ```
 *
 * Each phase is a named step below. A local response (a filter's `respond()`, a direct
 * response, or an error the proxy answers itself) jumps straight to `before_send`.
 * `finish` runs exactly once: when the response body has been written, or when the
 * client went away.
 *
 * @module
 */

import type { Logger } from "@logtape/logtape";
import { runReceivers, runSenders, StreamFilters } from "../filter/chain.ts";
import type { FilterEntry } from "../filter/chain.ts";
import type { Route, Router } from "../router/router.ts";
import type { ClusterManager, Host } from "../upstream/cluster.ts";
import {
  UpstreamConnectError,
  UpstreamOverflowError,
  type UpstreamResponse,
} from "../upstream/types.ts";
import type { AccessRecord } from "../log/access_log.ts";
import type { DownstreamInfo, DownstreamRequest, StreamResponse } from "./downstream.ts";
import { addForwardedHeaders, headerBlockSize, stripHopByHop } from "./headers.ts";
import { type LocalResponse, RequestState } from "./request_state.ts";
import { ResponseState } from "./response_state.ts";
import { trackBody } from "./track_body.ts";

/** Everything a stream needs from its listener; swapped whole on reload. */
export interface ListenerContext {
  /** The listener's name, for logs. */
  readonly name: string;
  /** `http` or `https`, for X-Forwarded-Proto. */
  readonly scheme: "http" | "https";
  readonly router: Router;
  readonly clusters: ClusterManager;
  /** The listener's stream filters in config order. */
  readonly filters: readonly FilterEntry[];
  /** True when some route or virtual host has `per_filter_config`. */
  readonly routesOverrideFilters: boolean;
  /** Largest accepted request header block (431 above). */
  readonly maxHeaderBytes: number;
  /** Called once per stream when it ends; undefined when the listener logs no access. */
  readonly accessLog: ((record: AccessRecord) => void) | undefined;
  readonly logger: Logger;
}

const MAX_ROUTE_REMATCHES = 8;
const MAX_HOST_RECHOOSES = 8;

export type { DownstreamInfo, DownstreamRequest, StreamResponse };

/** Runs one request through the listener and returns the response to write. */
export async function handleStream(
  ctx: ListenerContext,
  request: DownstreamRequest,
  downstream: DownstreamInfo,
): Promise<StreamResponse> {
  const startTime = Date.now();
  const path = request.target;
  const headers = request.headers;
  const authority = request.authority ?? "";
  const req = new RequestState(
    request.method,
    path,
    headers,
    request.body,
    downstream.remoteAddr,
    request.signal,
  );
  if (ctx.routesOverrideFilters) {
    req.earlyRoute = () => ctx.router.match(authority, req.path, headers);
  }
  const log = new StreamLog(ctx, req, downstream, startTime);
  let filters: StreamFilters | undefined;
  let route: Route | undefined;
  let host: Host | undefined;
  let upstream: UpstreamResponse | undefined;

  try {
    // 0. Refuse what must never be forwarded.
    if (headerBlockSize(headers) > ctx.maxHeaderBytes) {
      req.respond(431, { body: "request header fields too large\n" });
    }

    // 1. Create this stream's filter instances.
    if (!req.responded && ctx.filters.length > 0) filters = new StreamFilters(ctx.filters);

    // 2. before_route
    if (filters !== undefined && !req.responded) {
      req.phase = "before_route";
      const status = runReceivers(filters, "before_route", req);
      if (typeof status !== "string") await status;
    }

    // 3. Match the route; 4. after_route, which may ask to match again.
    for (let i = 0; !req.responded; i++) {
      route = ctx.router.match(authority, req.path, headers);
      req.route = route;
      if (route === undefined) {
        log.flag = "NR";
        req.respond(404, { body: "no route\n" });
        break;
      }
      if (filters === undefined) break;
      req.phase = "after_route";
      let status = runReceivers(filters, "after_route", req);
      if (typeof status !== "string") status = await status;
      if (status !== "rematch_route" || i >= MAX_ROUTE_REMATCHES) break;
    }
    if (route !== undefined && !req.responded && route.directResponse !== undefined) {
      const direct = route.directResponse;
      req.respond(direct.status, { body: direct.body });
    }

    // 5. Prepare the upstream request once: headers as the upstream should see them.
    if (!req.responded) {
      stripHopByHop(headers);
      addForwardedHeaders(headers, downstream.remoteAddr.hostname, ctx.scheme, authority);
      if (!headers.has("host")) headers.set("host", authority);
      if (route!.hostRewrite !== undefined) headers.set("host", route!.hostRewrite);
      route!.applyRequestHeaders(headers);
      req.path = route!.rewritePath(req.path);
    }

    // 6. Choose a cluster and host; after_choose_host; send, with retries.
    if (!req.responded) {
      const sent = await sendUpstream(ctx, req, route!, filters, log);
      host = sent.host;
      upstream = sent.response;
    }
  } catch (error) {
    // A client that left mid-request is not an error of the proxy; it is logged as DC.
    if (!request.signal.aborted) {
      ctx.logger.error("Stream failed on listener {listener}: {error}", {
        listener: ctx.name,
        error,
      });
    }
    if (upstream !== undefined) upstream.body?.cancel().catch(() => {});
    upstream = undefined;
    req.respond(500, { body: "internal error\n" });
  }

  if (request.signal.aborted) {
    // The client is gone: nothing will be written, but the stream still ends properly.
    upstream?.body?.cancel().catch(() => {});
    log.flag ||= "DC";
    log.finish(499, 0, filters);
    return { status: 499, headers: new Headers(), body: null };
  }

  // 7. before_send, on upstream and local responses alike.
  const local: LocalResponse | undefined = req.local;
  let status: number;
  let responseHeaders: Headers;
  let body: ReadableStream<Uint8Array> | Uint8Array | null;
  if (local !== undefined) {
    ({ status, headers: responseHeaders, body } = local);
  } else {
    status = upstream!.status;
    responseHeaders = upstream!.headers;
    // A small body that came with the head is written as bytes: no stream to pump (and
    // `body`, a getter on such responses, is never built).
    const buffered = upstream!.bufferedBody;
    body = buffered !== undefined && buffered !== null ? buffered : upstream!.body;
  }
  if (local === undefined) {
    stripHopByHop(responseHeaders);
    route?.applyResponseHeaders(responseHeaders);
  } else if (body !== null && !responseHeaders.has("content-type")) {
    responseHeaders.set("content-type", "text/plain");
  }
  if (filters !== undefined && filters.senders.length > 0) {
    const res = new ResponseState(
      status,
      responseHeaders,
      body,
      req,
      req.metadata,
      route,
      host,
      local !== undefined,
    );
    try {
      const pending = runSenders(filters, res);
      if (pending !== undefined) await pending;
    } catch (error) {
      ctx.logger.error("Sender filters failed: {error}", { error });
      res.failWith500();
    }
    status = res.status;
    responseHeaders = res.headers;
    body = res.content.source;
  }

  // 8. Write the response; 9. finish when it was delivered, or the client left.
  if (downstream.completed !== undefined) {
    const sent = body === null
      ? 0
      : body instanceof Uint8Array
      ? body.byteLength
      : Number(responseHeaders.get("content-length") ?? -1);
    downstream.completed.then(
      () => log.finish(status, sent, filters),
      () => {
        log.flag ||= "DC";
        log.finish(status, sent, filters);
      },
    );
    return { status, headers: responseHeaders, body };
  }
  if (body instanceof ReadableStream) {
    const tracked = trackBody(body, request.signal, (bytesSent, error) => {
      if (error !== undefined) log.flag ||= "DC";
      log.finish(status, bytesSent, filters);
    });
    return { status, headers: responseHeaders, body: tracked };
  }
  log.finish(status, body?.byteLength ?? 0, filters);
  return { status, headers: responseHeaders, body };
}

/** The result of the upstream step. */
interface Sent {
  host: Host | undefined;
  response: UpstreamResponse | undefined;
}

/**
 * Picks a cluster and host, runs `after_choose_host`, and sends the request; retries
 * on connect failures and, when the body can be sent again, on 5xx. Sets a local
 * response (502, 503, 504) when no upstream answer can be had.
 */
async function sendUpstream(
  ctx: ListenerContext,
  req: RequestState,
  route: Route,
  filters: StreamFilters | undefined,
  log: StreamLog,
): Promise<Sent> {
  const clusterName = route.pickCluster();
  const cluster = clusterName === undefined ? undefined : ctx.clusters.get(clusterName);
  if (cluster === undefined) {
    log.flag = "NC";
    req.respond(502, { body: "no cluster\n" });
    return { host: undefined, response: undefined };
  }
  const retry = route.retryPolicy;
  const maxAttempts = 1 + (retry?.numRetries ?? 0);
  const timeoutMs = route.timeoutMs;
  const signal = timeoutMs > 0
    ? AbortSignal.any([req.requestSignal, AbortSignal.timeout(timeoutMs)])
    : req.requestSignal;
  let host: Host | undefined;

  for (let attempt = 1;; attempt++) {
    // after_choose_host, which may ask for another host.
    for (let i = 0;; i++) {
      host = cluster.choose(host);
      req.host = host;
      if (host === undefined) {
        log.flag = "UH";
        req.respond(502, { body: "no healthy upstream\n" });
        return { host, response: undefined };
      }
      if (filters === undefined) break;
      req.phase = "after_choose_host";
      let status = runReceivers(filters, "after_choose_host", req);
      if (typeof status !== "string") status = await status;
      if (req.responded) return { host, response: undefined };
      if (status !== "rechoose_host" || i >= MAX_HOST_RECHOOSES) break;
    }

    log.upstreamHost = host.address;
    const body = req.content.source;
    host.active++;
    let response: UpstreamResponse;
    try {
      response = await host.pool.request({
        method: req.method,
        path: req.path,
        headers: req.headers,
        body,
        signal,
      });
    } catch (error) {
      host.active--;
      if (req.requestSignal.aborted) throw error;
      if (signal.aborted) {
        log.flag = "UT";
        req.respond(504, { body: "upstream request timeout\n" });
        return { host, response: undefined };
      }
      if (error instanceof UpstreamOverflowError) {
        log.flag = "UO";
        req.respond(503, { body: "upstream overflow\n" });
        return { host, response: undefined };
      }
      const canRetry = error instanceof UpstreamConnectError || !(body instanceof ReadableStream);
      if (attempt < maxAttempts && canRetry) continue;
      log.flag = error instanceof UpstreamConnectError ? "UF" : "UR";
      ctx.logger.warn("Upstream {host} failed: {error}", { host: host.address, error });
      req.respond(502, { body: "upstream connect error or disconnect/reset before headers\n" });
      return { host, response: undefined };
    }
    if (
      response.status >= 500 && retry?.retryOn5xx === true && attempt < maxAttempts &&
      !(body instanceof ReadableStream)
    ) {
      host.active--;
      response.body?.cancel().catch(() => {});
      continue;
    }
    log.activeHost = host;
    return { host, response };
  }
}

/** Collects what the access log needs and ends the stream exactly once. */
class StreamLog {
  flag = "";
  upstreamHost = "";
  /** The host whose in-flight count this stream holds until it ends. */
  activeHost: Host | undefined;
  #done = false;

  constructor(
    readonly ctx: ListenerContext,
    readonly req: RequestState,
    readonly downstream: DownstreamInfo,
    readonly startTime: number,
  ) {}

  /** Writes the access log line and destroys the filters, once. */
  finish(status: number, bytesSent: number, filters: StreamFilters | undefined): void {
    if (this.#done) return;
    this.#done = true;
    if (this.activeHost !== undefined) this.activeHost.active--;
    filters?.destroy();
    const write = this.ctx.accessLog;
    if (write === undefined) return;
    write({
      startTime: this.startTime,
      durationMs: Date.now() - this.startTime,
      method: this.req.method,
      path: this.req.path,
      protocol: this.downstream.protocol,
      status,
      flag: this.flag,
      bytesSent,
      remoteAddr: this.downstream.remoteAddr,
      upstreamHost: this.upstreamHost,
      requestHeaders: this.req.headers,
      listener: this.ctx.name,
    });
  }
}
