/**
 * Runs requests through a listener's whole lifecycle in this process: filters, router,
 * load balancer, upstream step, sender filters. The upstream is a function, so a
 * filter test needs no socket and no server; the real end-to-end tests cover the rest.
 *
 * @example
 * ```ts ignore
 * const proxy = await createInProcessProxy({
 *   streamFilters: [{ type: "demo", config: { User: "admin" } }],
 *   upstream: () => new Response("hello"),
 * });
 * const response = await proxy.request("/", { headers: { user: "admin" } });
 * ```
 *
 * @module
 */

import { ListenerStats } from "../stats/scopes.ts";
import type { RouteConfig, StreamFilterConfig, VirtualHostConfig } from "../config/types.ts";
import type { PluginCaller } from "../filter/api.ts";
import { buildFilterEntries, type ModuleResolver } from "../filter/build.ts";
import { logger } from "../log/logger.ts";
import type { AccessRecord } from "../log/access_log.ts";
import { Router } from "../router/router.ts";
import { ClusterManager } from "../upstream/cluster.ts";
import { FunctionPool, type UpstreamHandler } from "../upstream/function_pool.ts";
import type { ConnectionPool } from "../upstream/types.ts";
import { type DownstreamRequest, type StreamResponse, toFetchResponse } from "./downstream.ts";
import type { RequestPolicy } from "./policy.ts";
import { handleStream, type ListenerContext } from "./stream.ts";

/** A stream filter as the in-process proxy takes it: the config's fields, defaults filled. */
export interface InProcessFilter {
  type: string;
  name?: string;
  config?: unknown;
  failureMode?: "open" | "closed";
  module?: string;
  export?: string;
  sandbox?: StreamFilterConfig["sandbox"];
}

/** Options of {@linkcode createInProcessProxy}. */
export interface InProcessOptions {
  /** The listener's stream filters, in order. */
  streamFilters?: InProcessFilter[];
  /** Routes of the single virtual host (`*`); default: everything to the upstream. */
  routes?: Partial<RouteConfig>[];
  /** The upstream of cluster `upstream`. */
  upstream: UpstreamHandler;
  /**
   * A connection pool to use for each host instead of calling `upstream` (which is then
   * ignored): for benchmarks of the lifecycle alone, with a pool that answers at once.
   */
  pool?: (address: string) => ConnectionPool;
  /**
   * How many hosts cluster `upstream` has (`upstream-0.local:80`, …), all served by
   * `upstream`; the request URL's host tells which was chosen. Default 1.
   */
  upstreamHosts?: number;
  /** Reaches plugins; default: none. */
  plugins?: PluginCaller;
  /** Loads `type: module` filters. */
  resolveModule?: ModuleResolver;
  /** Receives access records. */
  accessLog?: (record: AccessRecord) => void;
  /** The single virtual host's own settings (headers to add, `per_filter_config`). */
  virtualHost?: Partial<Omit<VirtualHostConfig, "routes">>;
  /** Path normalization and forwarded-header trust; default: the listener defaults. */
  requestPolicy?: RequestPolicy;
  /** `http` (default) or `https`, for X-Forwarded-Proto. */
  scheme?: "http" | "https";
}

/** A request as a client wrote it, for {@linkcode InProcessProxy.raw}. */
export interface RawInProcessRequest {
  method?: string;
  /** The request target exactly as sent: `/a/../b`, `http://b.example/x`, `*`. */
  target: string;
  /** The Host header (or `:authority`); null for none. */
  authority: string | null;
  headers?: HeadersInit;
  body?: string;
  /** `HTTP/1.1` (default), `HTTP/1.0` or `HTTP/2`. */
  protocol?: string;
  /** The peer's address; default 127.0.0.1. */
  remoteAddress?: string;
}

/** A listener without sockets. */
export interface InProcessProxy {
  /** Sends a request (path or full URL) through the lifecycle. */
  request(input: string, init?: RequestInit): Promise<Response>;
  /** Sends a request with its target and authority exactly as given (no URL parsing). */
  raw(request: RawInProcessRequest): Promise<Response>;
  /** Runs a request already in the lifecycle's shape, as a listener hands it over. */
  handle(request: DownstreamRequest): Promise<StreamResponse>;
  /** Destroys factories and closes the cluster. */
  close(): Promise<void>;
}

const FILE = "<in-process>";

/** Builds an in-process listener. */
export async function createInProcessProxy(options: InProcessOptions): Promise<InProcessProxy> {
  const filterConfigs: StreamFilterConfig[] = (options.streamFilters ?? []).map((f, i) => ({
    type: f.type,
    name: f.name ?? f.type,
    config: f.config,
    failureMode: f.failureMode ?? "closed",
    module: f.module,
    export: f.export,
    sandbox: f.sandbox,
    position: { file: FILE, line: 0, path: `stream_filters[${i}]` },
  }));
  const noPlugins: PluginCaller = {
    call: (name) => Promise.reject(new Error(`Plugin "${name}" is not declared`)),
  };
  const filters = await buildFilterEntries(filterConfigs, {
    listener: "in-process",
    configFile: FILE,
    plugins: options.plugins ?? noPlugins,
    resolveModule: options.resolveModule ??
      (() => Promise.reject(new Error("No module resolver was given"))),
  });
  const routes: RouteConfig[] = (options.routes ?? [{}]).map((r) => ({
    name: r.name,
    match: r.match ?? { prefix: "/", headers: [] },
    route: r.directResponse !== undefined ? undefined : r.route ?? {
      clusterName: "upstream",
      weightedClusters: [],
      timeoutMs: 0,
      retryPolicy: undefined,
      prefixRewrite: undefined,
      hostRewrite: undefined,
    },
    directResponse: r.directResponse,
    requestHeadersToAdd: r.requestHeadersToAdd ?? [],
    requestHeadersToRemove: r.requestHeadersToRemove ?? [],
    responseHeadersToAdd: r.responseHeadersToAdd ?? [],
    responseHeadersToRemove: r.responseHeadersToRemove ?? [],
    perFilterConfig: r.perFilterConfig ?? {},
  }));
  const router = new Router({
    name: "in-process",
    virtualHosts: [{
      name: "all",
      domains: ["*"],
      routes,
      requestHeadersToAdd: [],
      requestHeadersToRemove: [],
      responseHeadersToAdd: [],
      responseHeadersToRemove: [],
      perFilterConfig: {},
      ...options.virtualHost,
    }],
  });
  const position = { file: FILE, line: 0, path: "clusters[0]" };
  const clusters = new ClusterManager(
    new Map([["upstream", {
      name: "upstream",
      type: "SIMPLE",
      lbType: "LB_ROUNDROBIN",
      hosts: Array.from({ length: options.upstreamHosts ?? 1 }, (_, i) => ({
        address: `upstream-${i}.local:80`,
        hostname: `upstream-${i}.local`,
        port: 80,
        weight: 1,
      })),
      maxRequestPerConn: 0,
      connectTimeoutMs: 3000,
      idleTimeoutMs: 90000,
      maxConnections: 1024,
      maxPendingRequests: 1024,
      protocol: "Http1",
      tls: undefined,
      position,
    }]]),
    (host) => options.pool?.(host.address) ?? new FunctionPool(options.upstream, host.address),
  );
  const context: ListenerContext = {
    name: "in-process",
    scheme: options.scheme ?? "http",
    router,
    routesOverrideFilters: router.overridesFilterConfig,
    clusters,
    filters,
    maxHeaderBytes: 65536,
    accessLog: options.accessLog,
    logger: logger("listener", "in-process"),
    request: options.requestPolicy,
    stats: new ListenerStats(),
  };
  return {
    request(input, init) {
      const url = input.startsWith("/") ? `http://mosaic.local${input}` : input;
      const request = new Request(url, init);
      const parsed = new URL(request.url);
      const headers = new Headers(request.headers);
      if (!headers.has("host")) headers.set("host", parsed.host);
      return handleStream(context, {
        method: request.method,
        target: parsed.pathname + parsed.search,
        authority: headers.get("host"),
        headers,
        body: request.body,
        signal: request.signal,
      }, {
        remoteAddr: { hostname: "127.0.0.1", port: 40000 },
        protocol: "HTTP/1.1",
      }).then(toFetchResponse);
    },
    handle(request) {
      return handleStream(context, request, {
        remoteAddr: { hostname: "127.0.0.1", port: 40000 },
        protocol: "HTTP/1.1",
      });
    },
    raw(request) {
      const headers = new Headers(request.headers);
      if (request.authority !== null && !headers.has("host") && request.protocol !== "HTTP/2") {
        headers.set("host", request.authority);
      }
      const body = request.body === undefined ? null : new Response(request.body).body;
      const protocol = request.protocol ?? "HTTP/1.1";
      return handleStream(context, {
        method: request.method ?? "GET",
        target: request.target,
        authority: request.authority,
        headers,
        body,
        signal: new AbortController().signal,
      }, {
        remoteAddr: { hostname: request.remoteAddress ?? "127.0.0.1", port: 40000 },
        protocol,
      }).then(toFetchResponse);
    },
    async close() {
      clusters.close();
      for (const entry of filters) await entry.factory.destroy?.();
    },
  };
}
