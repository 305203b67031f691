/**
 * The stream lifecycle: one request and its response, top to bottom.
 *
 * ```
 * create filters → before_route → match route → after_route (↺ rematch_route)
 *   → choose host → after_choose_host (↺ rechoose_host) → upstream (retries, timeout)
 *   → before_send → write response → finish (access log, onDestroy once)
 * ```
 *
 * Before any filter runs, the request is checked and cleaned (`checkRequest`): the
 * authority must be a valid host, an absolute-form target gives the authority, the path
 * is normalized (dot segments, escapes, slashes) and the client's hop-by-hop headers are
 * removed. Routes and filters only ever see the result.
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
import type { RouteInfo } from "../filter/api.ts";
import type { Route, Router } from "../router/router.ts";
import type { Cluster, ClusterManager, Host } from "../upstream/cluster.ts";
import {
  UpstreamConnectError,
  UpstreamOverflowError,
  type UpstreamResponse,
} from "../upstream/types.ts";
import type { AccessRecord } from "../log/access_log.ts";
import type { ListenerStats } from "../stats/scopes.ts";
import { endAttempt, type StreamSpan, tracer } from "../trace/tracer.ts";
import type { DownstreamInfo, DownstreamRequest, StreamResponse } from "./downstream.ts";
import { type Deadline, type DeadlineQueue, deadlineQueue } from "./deadlines.ts";
import { applyForwarded } from "./forwarded.ts";
import { headerBlockSize, stripHopByHop } from "./headers.ts";
import { isValidAuthority, parseAbsoluteTarget } from "./host.ts";
import { normalizeTarget } from "./path.ts";
import { DEFAULT_REQUEST_POLICY, type RequestPolicy } from "./policy.ts";
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
  /** Path normalization and forwarded-header trust; default {@linkcode DEFAULT_REQUEST_POLICY}. */
  readonly request?: RequestPolicy;
  /** Called once per stream when it ends; undefined when the listener logs no access. */
  readonly accessLog: ((record: AccessRecord) => void) | undefined;
  readonly logger: Logger;
  /** The listener's stats, resolved once per listener (they outlive reloads). */
  readonly stats: ListenerStats;
}

const MAX_ROUTE_REMATCHES = 8;
const MAX_HOST_RECHOOSES = 8;

export type { DownstreamInfo, DownstreamRequest, StreamResponse };

/** Runs one request through the listener and returns the response to write. */
export function handleStream(
  ctx: ListenerContext,
  request: DownstreamRequest,
  downstream: DownstreamInfo,
): Promise<StreamResponse> {
  // Deno's OpenTelemetry, when on (checked once per process): the stream's span, active
  // while the stream runs so that plugin calls become its children.
  if (tracer === undefined) return runStream(ctx, request, downstream, undefined);
  const span = tracer.startStream(request.method, downstream.protocol, ctx.name, request.headers);
  return tracer.run(span, () => runStream(ctx, request, downstream, span));
}

async function runStream(
  ctx: ListenerContext,
  request: DownstreamRequest,
  downstream: DownstreamInfo,
  span: StreamSpan | undefined,
): Promise<StreamResponse> {
  const startTime = Date.now();
  const stats = ctx.stats;
  stats.downstream_rq_total++;
  stats.downstream_rq_active++;
  const headers = request.headers;
  const policy = ctx.request ?? DEFAULT_REQUEST_POLICY;
  // 0. Check the request and clean it before anything reads it.
  const checked = checkRequest(request, downstream.protocol, policy);
  const authority = checked.authority;
  const checkError = checked.error;
  const req = new RequestState(
    request.method,
    checked.target,
    headers,
    request.body,
    downstream.remoteAddr,
    request.signal,
  );
  req.protocol = downstream.protocol;
  if (ctx.routesOverrideFilters) {
    req.earlyRoute = () =>
      ctx.router.match(authority, req.path, headers) ?? ctx.router.virtualHost(authority);
  }
  const log = new StreamLog(ctx, req, downstream, startTime);
  if (span !== undefined) {
    log.trace = span;
    span.setPath(req.path);
  }
  let filters: StreamFilters | undefined;
  let route: Route | undefined;
  let host: Host | undefined;
  let upstream: UpstreamResponse | undefined;
  /** Where no route matched: the virtual host, whose `per_filter_config` still applies. */
  let noRouteHost: RouteInfo | undefined;

  try {
    if (checkError !== undefined) {
      log.flag = "DPE";
      req.respond(400, { body: checkError });
    } else if (request.sanitized !== true && headerBlockSize(headers) > ctx.maxHeaderBytes) {
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

    // 3. Match the route; 4. after_route, which may ask to match again. After a rematch
    // the phase resumes past the filter that asked; `from` is this loop's own state.
    for (let i = 0, from = 0; !req.responded; i++) {
      route = ctx.router.match(authority, req.path, headers);
      req.route = route;
      if (route === undefined) {
        log.flag = "NR";
        stats.downstream_rq_no_route++;
        noRouteHost = ctx.router.virtualHost(authority);
        req.respond(404, { body: "no route\n" });
        break;
      }
      if (filters === undefined) break;
      req.phase = "after_route";
      let status = runReceivers(filters, "after_route", req, from);
      if (typeof status !== "string") status = await status;
      if (status !== "rematch_route" || i >= MAX_ROUTE_REMATCHES) break;
      from = filters.endedAt + 1;
    }
    if (route !== undefined && !req.responded && route.directResponse !== undefined) {
      const direct = route.directResponse;
      req.respond(direct.status, { body: direct.body });
      // A direct response gets the virtual host's and the route's response headers (Envoy).
      route.applyResponseHeaders(req.local!.headers);
    }

    // 5. Prepare the upstream request once: headers as the upstream should see them. The
    // client's hop-by-hop fields went before the filters; one a filter set is never
    // written by the pool, which frames and manages its own connection.
    if (!req.responded) {
      applyForwarded(
        headers,
        downstream.remoteAddr.hostname,
        ctx.scheme,
        authority,
        policy.forwarded,
      );
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
    stats.downstream_rq_rx_reset++;
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
    // The pool left out the upstream's hop-by-hop fields (UpstreamResponse.headers).
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
      route ?? noRouteHost,
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
      () => log.finish(status, sent, filters, responseHeaders),
      () => {
        log.flag ||= "DC";
        log.finish(status, sent, filters, responseHeaders);
      },
    );
    return { status, headers: responseHeaders, body };
  }
  if (body instanceof ReadableStream) {
    const tracked = trackBody(body, request.signal, (bytesSent, error) => {
      if (error !== undefined) log.flag ||= "DC";
      log.finish(status, bytesSent, filters, responseHeaders);
    });
    return { status, headers: responseHeaders, body: tracked };
  }
  log.finish(status, body?.byteLength ?? 0, filters, responseHeaders);
  return { status, headers: responseHeaders, body };
}

/** What {@linkcode checkRequest} made of a request's target and authority. */
interface CheckedRequest {
  /** The origin-form target to route and forward, path normalized. */
  target: string;
  /** The validated authority; "" for an HTTP/1.0 request without Host. */
  authority: string;
  /** Set when the request must be answered 400: the body to answer with. */
  error: string | undefined;
}

/**
 * Step 0: validates the authority (RFC 3986 host and optional port; RFC 9112 §3.2: an
 * HTTP/1.1 request needs one), takes an absolute-form target's authority instead of Host
 * (RFC 9112 §3.2.2), refuses an HTTP/2 `host` that differs from `:authority` (RFC 9113
 * §8.3.1), normalizes the path, and removes the client's hop-by-hop fields, before any
 * filter or route sees the request.
 */
function checkRequest(
  request: DownstreamRequest,
  protocol: string,
  policy: RequestPolicy,
): CheckedRequest {
  const headers = request.headers;
  let target = request.target;
  let authority = request.authority;
  let error: string | undefined;
  if (protocol === "HTTP/2") {
    const host = headers.get("host");
    if (authority === null) authority = host;
    else if (host !== null && host.toLowerCase() !== authority.toLowerCase()) {
      error = "host header differs from :authority\n";
    }
  } else if (authority === null && protocol !== "HTTP/1.0") {
    error = "missing host header\n";
  }
  if (error === undefined && target.charCodeAt(0) !== 0x2f /* / */) {
    const absolute = parseAbsoluteTarget(target);
    if (absolute === undefined) error = "invalid request target\n";
    else {
      target = absolute.originForm;
      authority = absolute.authority;
      headers.set("host", authority);
    }
  }
  if (error === undefined && authority !== null && !isValidAuthority(authority)) {
    error = "invalid host\n";
  }
  if (error === undefined) {
    const normalized = normalizeTarget(target, policy.path);
    if (normalized === undefined) error = "invalid request path\n";
    else target = normalized;
  }
  if (request.sanitized !== true) stripHopByHop(headers);
  // One scratch result, read at once by the caller before any await: no allocation.
  CHECKED.target = target;
  CHECKED.authority = authority ?? "";
  CHECKED.error = error;
  return CHECKED;
}

const CHECKED: CheckedRequest = { target: "", authority: "", error: undefined };

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
  log.cluster = cluster.name;
  const retry = route.retryPolicy;
  const maxAttempts = 1 + (retry?.numRetries ?? 0);
  const timeoutMs = route.timeoutMs;
  // One timer for the route timeout, cleared when the stream ends (not a timer per request
  // left to fire, as AbortSignal.timeout would be); it covers the response body too.
  const signal = timeoutMs > 0 ? log.routeTimeout(timeoutMs) : req.requestSignal;
  const stats = cluster.stats;
  let host: Host | undefined;

  for (let attempt = 1;; attempt++) {
    // after_choose_host, which may ask for another host.
    // `from` is where the phase resumes after a rechoose: past the filter that asked.
    for (let i = 0, from = 0;; i++) {
      host = cluster.choose(host);
      req.host = host;
      if (host === undefined) {
        log.flag = "UH";
        req.respond(503, { body: "no healthy upstream\n" });
        return { host, response: undefined };
      }
      if (filters === undefined) break;
      req.phase = "after_choose_host";
      let status = runReceivers(filters, "after_choose_host", req, from);
      if (typeof status !== "string") status = await status;
      if (req.responded) return { host, response: undefined };
      if (status !== "rechoose_host" || i >= MAX_HOST_RECHOOSES) break;
      from = filters.endedAt + 1;
    }

    log.upstreamHost = host.address;
    const body = req.content.source;
    // The cluster's max_requests breaker (host pools keep max_connections/max_pending).
    if (cluster.activeRequests >= cluster.maxRequests) {
      cluster.resilience.upstream_rq_overflow++;
      log.flag = "UO";
      req.respond(503, { body: "upstream overflow\n" });
      return { host, response: undefined };
    }
    // A retry holds one of the cluster's max_retries while it is sent.
    const retrying = attempt > 1;
    if (retrying) cluster.activeRetries++;
    host.active++;
    const hostStats = host.stats;
    stats.upstream_rq_total++;
    hostStats.rq_total++;
    if (attempt > 1) stats.upstream_rq_retry++;
    const sentAt = performance.now();
    log.attempts = attempt;
    // The attempt's span; the upstream request's traceparent names it.
    const span = log.trace === undefined
      ? undefined
      : log.trace.attempt(req.headers, cluster.name, host.address, attempt);
    let response: UpstreamResponse;
    try {
      const upstreamRequest = {
        method: req.method,
        path: req.path,
        headers: req.headers,
        body,
        signal,
      };
      // With tracing on, the attempt span is Deno's active context while the request is
      // made, so that Deno's own node:http2 instrumentation nests under it.
      const pool = host.pool;
      response = await (span === undefined
        ? pool.request(upstreamRequest)
        : log.trace!.within(span, () =>
          pool.request(upstreamRequest)));
    } catch (error) {
      host.active--;
      if (retrying) cluster.activeRetries--;
      if (span !== undefined) endAttempt(span, 0, attemptFlag(error, signal, req.requestSignal));
      if (req.requestSignal.aborted) throw error;
      hostStats.rq_error++;
      if (signal.aborted) {
        log.flag = "UT";
        stats.upstream_rq_timeout++;
        stats.answered(504);
        hostStats.rq_timeout++;
        cluster.report(host, 504);
        ctx.logger.warn(
          `upstream ${host.address} timed out (UT, cluster "${cluster.name}"): no response within the route timeout of ${timeoutMs} ms`,
        );
        req.respond(504, { body: "upstream request timeout\n" });
        return { host, response: undefined };
      }
      if (error instanceof UpstreamOverflowError) {
        log.flag = "UO";
        stats.upstream_rq_pending_overflow++;
        req.respond(503, { body: "upstream overflow\n" });
        return { host, response: undefined };
      }
      // A connect failure or a reset is a gateway failure to outlier detection.
      cluster.report(host, 503);
      const canRetry = error instanceof UpstreamConnectError || !(body instanceof ReadableStream);
      if (attempt < maxAttempts && canRetry) {
        if (retryAllowed(cluster, log)) continue;
        req.respond(503, { body: "upstream overflow\n" });
        return { host, response: undefined };
      }
      log.flag = error instanceof UpstreamConnectError ? "UF" : "UR";
      if (log.flag === "UR") stats.upstream_rq_rx_reset++;
      stats.answered(502);
      // One line, no stack: the flag, the host, the cluster and the reason.
      log.failureReason = reasonOf(error);
      ctx.logger.warn(
        `upstream ${host.address} failed (${log.flag}, cluster "${cluster.name}"): ${log.failureReason}`,
      );
      req.respond(502, { body: "upstream connect error or disconnect/reset before headers\n" });
      return { host, response: undefined };
    }
    if (retrying) cluster.activeRetries--;
    const upstreamMs = performance.now() - sentAt;
    log.upstreamMs = upstreamMs;
    log.responseMs = Date.now() - log.startTime;
    if (span !== undefined) endAttempt(span, response.status);
    cluster.report(host, response.status);
    stats.answered(response.status);
    stats.upstream_rq_time.record(upstreamMs);
    if (response.status >= 500) hostStats.rq_error++;
    else hostStats.rq_success++;
    if (
      response.status >= 500 && retry?.retryOn5xx === true && attempt < maxAttempts &&
      !(body instanceof ReadableStream) && retryAllowed(cluster, log)
    ) {
      host.active--;
      response.body?.cancel().catch(() => {});
      continue;
    }
    log.activeHost = host;
    return { host, response };
  }
}

/**
 * The cluster's max_retries breaker: true when another retry may be sent; else counts
 * the overflow and flags the stream `UO` (a 5xx that wanted the retry is passed on, as
 * Envoy does; a failure without a response is answered 503).
 */
function retryAllowed(cluster: Cluster, log: StreamLog): boolean {
  if (cluster.activeRetries < cluster.maxRetries) return true;
  cluster.resilience.upstream_rq_retry_overflow++;
  log.flag = "UO";
  return false;
}

/** The response flag of an attempt that got no response, for its span. */
function attemptFlag(error: unknown, signal: AbortSignal, client: AbortSignal): string {
  if (client.aborted) return "DC";
  if (signal.aborted) return "UT";
  if (error instanceof UpstreamOverflowError) return "UO";
  return error instanceof UpstreamConnectError ? "UF" : "UR";
}

/**
 * The reason of an upstream failure in a few words: `connection refused`, `connection
 * reset`, or the error's own message (and its cause's).
 */
function reasonOf(error: unknown): string {
  for (let e: unknown = error, i = 0; e !== undefined && i < 4; i++) {
    if (e instanceof Deno.errors.ConnectionRefused) return "connection refused";
    if (e instanceof Deno.errors.ConnectionReset) return "connection reset";
    if (e instanceof Deno.errors.TimedOut) return "timed out";
    e = (e as { cause?: unknown } | null)?.cause;
  }
  if (!(error instanceof Error)) return String(error);
  const cause = error.cause instanceof Error ? `: ${error.cause.message}` : "";
  return `${error.message}${cause}`;
}

/** Collects what the access log needs and ends the stream exactly once. */
class StreamLog {
  flag = "";
  upstreamHost = "";
  /** The cluster the stream went to, "" before one was chosen. */
  cluster = "";
  /** Why the last upstream attempt failed (UF, UR), for the access log. */
  failureReason = "";
  /** Upstream attempts sent. */
  attempts = 0;
  /** Upstream time of the attempt that answered, ms; -1 without one. */
  upstreamMs = -1;
  /** From the stream's start to the upstream response head, ms; -1 without one. */
  responseMs = -1;
  /** The stream's span when Deno's OpenTelemetry is on. */
  trace: StreamSpan | undefined = undefined;
  /** The host whose in-flight count this stream holds until it ends. */
  activeHost: Host | undefined;
  #done = false;
  #deadline: Deadline | undefined;
  #deadlines: DeadlineQueue | undefined;
  #unlink: (() => void) | undefined;

  constructor(
    readonly ctx: ListenerContext,
    readonly req: RequestState,
    readonly downstream: DownstreamInfo,
    readonly startTime: number,
  ) {}

  /**
   * A signal that aborts when the client leaves or `ms` pass, whichever comes first. The
   * deadline waits in the queue of its timeout value (one timer for all of them) and is
   * let go when the stream finishes.
   */
  routeTimeout(ms: number): AbortSignal {
    const client = this.req.requestSignal;
    const controller = new AbortController();
    const onClientGone = () => controller.abort(client.reason);
    if (client.aborted) onClientGone();
    else client.addEventListener("abort", onClientGone, { once: true });
    this.#unlink = () => client.removeEventListener("abort", onClientGone);
    this.#deadlines = deadlineQueue(ms);
    this.#deadline = this.#deadlines.add(controller, this.startTime);
    return controller.signal;
  }

  /** Writes the access log line and destroys the filters, once. */
  finish(
    status: number,
    bytesSent: number,
    filters: StreamFilters | undefined,
    responseHeaders?: Headers,
  ): void {
    if (this.#done) return;
    this.#done = true;
    if (this.#deadline !== undefined) {
      this.#deadlines!.end(this.#deadline);
      this.#unlink!();
    }
    if (this.activeHost !== undefined) this.activeHost.active--;
    this.ctx.stats.answered(status, Date.now() - this.startTime);
    filters?.destroy();
    const trace = this.trace;
    if (trace !== undefined) {
      trace.end(status, this.flag, this.req.route?.name, this.cluster, this.upstreamHost);
    }
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
      responseHeaders,
      responseDurationMs: this.responseMs,
      upstreamServiceMs: this.upstreamMs,
      cluster: this.cluster,
      routeName: this.req.route?.name ?? "",
      attempts: this.attempts,
      upstreamFailureReason: this.failureReason,
      traceId: trace?.traceId,
      spanId: trace?.spanId,
    });
  }
}
