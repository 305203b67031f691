/**
 * The validated, normalized config: what the rest of Mosaic reads. The loader turns
 * MOSN-shaped YAML or JSON into this once per load and freezes it; durations are
 * milliseconds, addresses are split, defaults are filled in.
 *
 * @module
 */

import type { JsonFormatFields } from "../log/access_log.ts";

/** Log levels, as in MOSN's `default_log_level`. */
export type LogLevel = "trace" | "debug" | "info" | "warning" | "error" | "fatal";

/** Where in the config file a value came from, for errors raised after validation. */
export interface SourcePosition {
  /** The config file. */
  file: string;
  /** 1-based line. */
  line: number;
  /** Field path, e.g. `servers[0].listeners[0].stream_filters[1]`. */
  path: string;
}

/** The whole config. */
export interface MosaicConfig {
  /** Absolute path of the config file. */
  file: string;
  /** `default_log_level` of the first server; default `info`. */
  logLevel: LogLevel;
  /** `default_log_path`: `stdout`, `stderr` or a file path; default `stderr`. */
  logPath: string;
  /** Every listener of every server. */
  listeners: ListenerConfig[];
  /** Routers by `router_config_name`. */
  routers: Map<string, RouterConfig>;
  /** Clusters by name. */
  clusters: Map<string, ClusterConfig>;
  /**
   * The admin API address, and the bearer token its mutating endpoints need (none when
   * undefined); undefined when `admin` is absent.
   */
  admin: { hostname: string; port: number; token?: string } | undefined;
  /** Out-of-process plugins by name. */
  plugins: Map<string, PluginConfig>;
  /** Seconds to let in-flight requests finish on SIGINT/SIGTERM; default 30. */
  drainTimeoutMs: number;
  /** Re-read the config when the file changes (`watch: true`); default false. */
  watch: boolean;
  /**
   * `workers:`: how many threads run the data path, each a whole runtime on the same
   * ports (`SO_REUSEPORT`); `auto` is one per core. Default 1: no worker thread at all.
   */
  workers: number | "auto";
}

/** A listener (`servers[].listeners[]`). */
export interface ListenerConfig {
  /** The listener's name; default `listener<N>`. */
  name: string;
  /** Bind address. */
  hostname: string;
  /** Bind port. */
  port: number;
  /** The network filter: the HTTP proxy or raw TCP forwarding. */
  network: ProxyNetworkFilter | TcpProxyNetworkFilter;
  /** Stream filters in config order (only meaningful for `proxy`). */
  streamFilters: StreamFilterConfig[];
  /** TLS of the listener's filter chain, if any. */
  tls: TlsContextConfig | undefined;
  /** Access logs of this listener. */
  accessLogs: AccessLogConfig[];
  /**
   * Largest request header block accepted, in bytes; default 32768 (larger: 431). Deno.serve
   * itself answers 400 to a block over about 64 KiB, before Mosaic sees it.
   */
  maxHeaderBytes: number;
  /**
   * `header_read_timeout`: a request head not complete this long after its first byte (or
   * after the connection opened, for its first request) is answered 408 and the
   * connection closed; default 60000 (nginx's `client_header_timeout`); 0: off.
   */
  headerReadTimeoutMs: number;
  /**
   * `connection_idle_timeout` (MOSN's key): a kept-alive connection with no request for
   * this long is closed; default 75000 (nginx's `keepalive_timeout`); 0: off.
   */
  idleTimeoutMs: number;
  /**
   * `body_read_timeout`: a request body that sends nothing for this long is cut; default
   * 60000 (nginx's `client_body_timeout`); 0: off.
   */
  bodyReadTimeoutMs: number;
  /** Where in the file the listener is. */
  position: SourcePosition;
}

/** The `proxy` network filter. */
export interface ProxyNetworkFilter {
  type: "proxy";
  /** `Http1`, `Http2` or `Auto`: Mosaic always serves HTTP/1.1 and h2c. */
  downstreamProtocol: "Http1" | "Http2" | "Auto";
  /** `Http1` (default) or `Http2`. */
  upstreamProtocol: "Http1" | "Http2";
  /**
   * Set when the proxy speaks a protocol codec's protocol instead of HTTP
   * (`downstream_protocol: bolt`, or MOSN's `X` with `extend_config.sub_protocol`);
   * `downstreamProtocol` is then `Auto` and unused.
   */
  codec?: ProtocolCodecConfig;
  /** Name of the router config this listener routes with. */
  routerConfigName: string;
  /** Normalize request paths (dot segments, unreserved escapes, `\\`); default true. */
  normalizePath: boolean;
  /** Merge `//` in request paths; default true. */
  mergeSlashes: boolean;
  /** `%2F`/`%5C` in a path: `reject` (400, default), `unescape_and_forward` or `keep`. */
  pathWithEscapedSlashesAction: "reject" | "unescape_and_forward" | "keep";
  /** Append the peer's address to X-Forwarded-For (Envoy's); default true. */
  useRemoteAddress: boolean;
  /** Proxy hops in X-Forwarded-For before the client's address (Envoy's); default 0. */
  xffNumTrustedHops: number;
  /** CIDRs of peers whose X-Forwarded-* and x-request-id are kept; default none. */
  trustedProxies: string[];
}

/** The protocol codec of a `proxy` network filter. */
export interface ProtocolCodecConfig {
  /** The downstream protocol's name (`bolt`). */
  name: string;
  /** The upstream protocol's name; the downstream's unless `upstream_protocol` says. */
  upstream: string;
  /** `extend_config.module`: a module by URL exporting the codec's creator. */
  module?: string;
  /** `extend_config.export`; default `createProtocolCodec`. */
  export?: string;
  /** `extend_config.config`, passed to the creator. */
  config?: unknown;
  /** `extend_config.max_frame_size` in bytes: longer frames close the connection; default 16 MiB. */
  maxFrameBytes: number;
}

/** The `tcp_proxy` network filter. */
export interface TcpProxyNetworkFilter {
  type: "tcp_proxy";
  /** The cluster to forward bytes to. */
  cluster: string;
  /** Close a connection idle for this long; 0 means never. */
  idleTimeoutMs: number;
}

/** One entry of a listener's `stream_filters`. */
export interface StreamFilterConfig {
  /** A registered name, or `module`, or `plugin`. */
  type: string;
  /** The filter's name for `per_filter_config` and logs: `name` if given, else `type`. */
  name: string;
  /** The filter's own config, passed to its factory as is. */
  config: unknown;
  /** `closed` (default): a throw or failure answers 500/503; `open`: the chain goes on. */
  failureMode: "open" | "closed";
  /** For `type: module`: the module URL, resolved against the config file. */
  module?: string;
  /** For `type: module`: the factory export; default `createStreamFilterFactory`. */
  export?: string;
  /** For `type: module`: `sha256-<base64>` pin of the module's bytes. */
  integrity?: string;
  /** For `type: module`: run in a Worker or a child process with these permissions. */
  sandbox?: SandboxConfig;
  /**
   * The `per_filter_config` entries naming this filter in the routes and virtual hosts of
   * the listener's router, each to be parsed once at load.
   */
  overrides?: FilterOverrideConfig[];
  /**
   * Set when the registered filter's `parseConfig` already parsed `config` while loading
   * (`value` is what it returned); absent for modules, which are parsed when built.
   */
  parsedConfig?: { value: unknown };
  /** Where in the file the entry is. */
  position: SourcePosition;
}

/** A `per_filter_config` entry for one stream filter. */
export interface FilterOverrideConfig {
  /** The entry's value, as in the route's or virtual host's `perFilterConfig`. */
  config: unknown;
  /** What the filter's `parseConfig` returned for it, when parsed while loading. */
  parsed?: { value: unknown };
  /** Where the entry is. */
  position: SourcePosition;
}

/** `sandbox:` of a module filter. */
export interface SandboxConfig {
  /** `worker` (default) or `process`. */
  isolation: "worker" | "process";
  /** Deno permissions, in the Worker options' shape. */
  permissions: Record<string, unknown>;
  /** Per-call timeout; default 1000. */
  timeoutMs: number;
}

/** An access log. */
export interface AccessLogConfig {
  /** `stdout`, `stderr` or a file path. */
  path: string;
  /**
   * MOSN variable format, e.g. `%start_time% %response_code%`, or Envoy's JSON format
   * `{ json_format: { status: "%RESPONSE_CODE%" } }`.
   */
  format: string | { json_format: JsonFormatFields };
}

/** A router config (`servers[].routers[]`). */
export interface RouterConfig {
  name: string;
  virtualHosts: VirtualHostConfig[];
}

/** A header to add. */
export interface HeaderValueOption {
  key: string;
  value: string;
  /** Append to an existing value instead of replacing it; default false. */
  append: boolean;
}

/** A virtual host. */
export interface VirtualHostConfig {
  name: string;
  /** Exact names, `*.suffix`, or `*`. Ports in the Host header are ignored. */
  domains: string[];
  routes: RouteConfig[];
  requestHeadersToAdd: HeaderValueOption[];
  requestHeadersToRemove: string[];
  responseHeadersToAdd: HeaderValueOption[];
  responseHeadersToRemove: string[];
  /** Filter name → config override. */
  perFilterConfig: Record<string, unknown>;
}

/** A header matcher of a route. */
export interface HeaderMatcher {
  name: string;
  value: string;
  /** Treat `value` as a regular expression (anchored). */
  regex: boolean;
}

/** A route (`virtual_hosts[].routers[]`). */
export interface RouteConfig {
  name: string | undefined;
  match: {
    prefix?: string;
    path?: string;
    regex?: string;
    headers: HeaderMatcher[];
    /** Match the path case-sensitively (Envoy's `case_sensitive`); absent means true. */
    caseSensitive?: boolean;
  };
  /** Where to send; undefined when the route has a direct response. */
  route: RouteAction | undefined;
  directResponse: { status: number; body: string } | undefined;
  requestHeadersToAdd: HeaderValueOption[];
  requestHeadersToRemove: string[];
  responseHeadersToAdd: HeaderValueOption[];
  responseHeadersToRemove: string[];
  perFilterConfig: Record<string, unknown>;
}

/** The `route` of a route. */
export interface RouteAction {
  /** A single cluster; or undefined with `weightedClusters`. */
  clusterName: string | undefined;
  weightedClusters: { name: string; weight: number }[];
  /** Whole-request timeout; 0 means none. Default 0 (MOSN's default is none too). */
  timeoutMs: number;
  retryPolicy: { numRetries: number; retryOn5xx: boolean; perTryTimeoutMs: number } | undefined;
  prefixRewrite: string | undefined;
  hostRewrite: string | undefined;
}

/** A cluster (`cluster_manager.clusters[]`). */
export interface ClusterConfig {
  name: string;
  /** Only `SIMPLE` (static hosts) for now. */
  type: "SIMPLE";
  lbType: "LB_ROUNDROBIN" | "LB_RANDOM" | "LB_WEIGHTED_ROUNDROBIN" | "LB_LEAST_REQUEST";
  hosts: HostConfig[];
  /** Requests on one upstream connection before it is closed; 0 means unlimited. */
  maxRequestPerConn: number;
  /** Default 3000 (MOSN's). */
  connectTimeoutMs: number;
  /** An idle pooled connection is closed after this; default 90000. */
  idleTimeoutMs: number;
  /** Circuit breaker: concurrent connections per host; default 1024. Overflow is 503. */
  maxConnections: number;
  /** Circuit breaker: requests waiting for a connection per host; default 1024. */
  maxPendingRequests: number;
  /**
   * Circuit breaker: requests in flight to the whole cluster (Envoy's `max_requests`);
   * default 1024. Overflow is 503 `UO`.
   */
  maxRequests?: number;
  /**
   * Circuit breaker: retries in flight in the whole cluster (Envoy's `max_retries`);
   * default 3. A retry beyond it is not made: the request ends `UO`.
   */
  maxRetries?: number;
  /** Active health checking (MOSN's `health_check`); undefined when off. */
  healthCheck?: HealthCheckConfig;
  /** Passive outlier detection (Envoy's `outlier_detection`); undefined when off. */
  outlierDetection?: OutlierDetectionConfig;
  /**
   * Envoy's `healthy_panic_threshold`, in percent; default 50. When fewer than this share
   * of hosts are healthy, the load balancer balances over all hosts.
   */
  healthyPanicThreshold?: number;
  /** Upstream protocol: `Http1` (default) or `Http2`. */
  protocol: "Http1" | "Http2";
  /** TLS to the upstream, if any. */
  tls: TlsContextConfig | undefined;
  position: SourcePosition;
}

/** A cluster's active health check (MOSN's `health_check`). */
export interface HealthCheckConfig {
  /** `http` (MOSN's `Http1`) or `tcp` (connect). */
  protocol: "http" | "tcp";
  /** Time a check may take; default 1000 (MOSN's). */
  timeoutMs: number;
  /** Time between the end of one round of checks and the next; default 15000 (MOSN's). */
  intervalMs: number;
  /** Up to this much is added at random to each interval; default 0. */
  intervalJitterMs: number;
  /** Passes in a row that bring an unhealthy host back; default 1. */
  healthyThreshold: number;
  /** Failures in a row that take a healthy host out; default 1. */
  unhealthyThreshold: number;
  serviceName: string;
  /**
   * MOSN's `check_config.http_check_config`. Undefined for `tcp`, and for `http` without
   * it, which MOSN (and so Mosaic) checks by connecting only.
   */
  http: HttpCheckConfig | undefined;
}

/** MOSN's `http_check_config`. */
export interface HttpCheckConfig {
  path: string;
  method: string;
  /** The Host header; the host's address by default. */
  domain: string | undefined;
  /** A port to check instead of the host's. */
  port: number | undefined;
  /** Statuses that pass, inclusive ranges; default 200 only (MOSN's). */
  codes: { start: number; end: number }[];
}

/** Envoy's `outlier_detection`, the consecutive-failure detectors. */
export interface OutlierDetectionConfig {
  /** 5xx answers in a row that eject a host; default 5. */
  consecutive5xx: number;
  /** Gateway failures (502, 503, 504, connect failures) in a row; default 5. */
  consecutiveGatewayFailure: number;
  /** Percent chance an ejection by `consecutive5xx` happens; default 100. */
  enforcingConsecutive5xx: number;
  /**
   * Percent chance an ejection by `consecutiveGatewayFailure` happens; Envoy's default 0,
   * but 100 when `consecutive_gateway_failure` is written.
   */
  enforcingConsecutiveGatewayFailure: number;
  /** Time between sweeps that bring ejected hosts back; default 10000. */
  intervalMs: number;
  /** An ejection lasts this × the times the host was ejected; default 30000. */
  baseEjectionTimeMs: number;
  /** The longest an ejection lasts; default 300000. */
  maxEjectionTimeMs: number;
  /** Most hosts ejected at once, in percent (one host always may be); default 10. */
  maxEjectionPercent: number;
}

/** A static host. */
export interface HostConfig {
  /** `host:port`. */
  address: string;
  hostname: string;
  port: number;
  /** Default 1. */
  weight: number;
}

/** MOSN's `tls_context`. */
export interface TlsContextConfig {
  /** `status: true` turns TLS on. */
  status: boolean;
  /** PEM text or a file path. */
  certChain: string | undefined;
  privateKey: string | undefined;
  caCert: string | undefined;
  serverName: string | undefined;
  minVersion: string | undefined;
  maxVersion: string | undefined;
  alpn: string[];
  /** Certificate provider name; `file` by default. */
  type: string;
  extendVerify: unknown;
  insecureSkip: boolean;
  requireClientCert: boolean;
  /**
   * How a TLS listener serves: `bridge` (node:tls in front of Deno.serve: client
   * certificates, rotation without failed requests), `direct` (Deno.serve with the
   * certificate: faster; needs `--unstable-net` to rotate), or `auto`. Unset: the
   * `MOSAIC_TLS_SERVE` environment variable, else `auto`.
   */
  serveMode: "auto" | "bridge" | "direct" | undefined;
  position: SourcePosition;
}

/** An out-of-process plugin (`plugins:`). */
export interface PluginConfig {
  name: string;
  /** argv, first element the program. */
  command: string[];
  args: string[];
  env: Record<string, string>;
  cwd: string | undefined;
  network: "unix" | "tcp";
  startTimeoutMs: number;
  maxProcs: number;
  position: SourcePosition;
}
