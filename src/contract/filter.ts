/**
 * The stream filter contract. Everything here is a type: an extension needs only
 * `import type` from Mosaic, so it carries no Mosaic code of its own (the few helpers
 * `mod.ts` also exports, such as `parseDuration` and `FilterConfigError`, are optional).
 *
 * @module
 */

/**
 * What a filter tells the chain after it ran.
 *
 * - `continue`: go on with the next filter of the phase.
 * - `stop`: skip the rest of the phase. Must come with {@linkcode RequestStream.respond};
 *   a `stop` without a response is answered 500 and logged with the filter's name.
 * - `rematch_route`: only in `after_route`; match the route again (headers or path changed).
 * - `rechoose_host`: only in `after_choose_host`; ask the load balancer again.
 */
export type FilterStatus = "continue" | "stop" | "rematch_route" | "rechoose_host";

/** The phases in which a receiver filter can run, in the order they happen. */
export type ReceivePhase = "before_route" | "after_route" | "after_choose_host";

/** Every phase of a stream, receiver phases then the sender phase. */
export type Phase = ReceivePhase | "before_send";

/** A logger scoped to one filter: its lines carry the filter's name as their category. */
export interface FilterLogger {
  /** Logs a debug line. */
  debug(message: string, properties?: Record<string, unknown>): void;
  /** Logs an info line. */
  info(message: string, properties?: Record<string, unknown>): void;
  /** Logs a warning. */
  warn(message: string, properties?: Record<string, unknown>): void;
  /** Logs an error. */
  error(message: string, properties?: Record<string, unknown>): void;
}

/** The route a request matched. */
export interface RouteInfo {
  /** The route's `name`, if the config gives one. */
  readonly name: string | undefined;
  /** The cluster the route sends to; undefined for a direct response. */
  readonly clusterName: string | undefined;
  /** The virtual host's name. */
  readonly virtualHost: string;
  /**
   * The route's `per_filter_config` entry for `filterName`, falling back to the virtual
   * host's; undefined when neither has one.
   */
  perFilterConfig(filterName: string): unknown;
}

/** The upstream host chosen by the load balancer. */
export interface HostInfo {
  /** `host:port` of the upstream. */
  readonly address: string;
  /** The cluster the host belongs to. */
  readonly cluster: string;
  /** The host's load-balancing weight. */
  readonly weight: number;
}

/** How {@linkcode RequestStream.respond} answers. */
export interface RespondInit {
  /** Response headers. */
  headers?: HeadersInit;
  /** Response body. */
  body?: string | Uint8Array;
}

/** A read-only view of the request, given to sender filters. */
export interface RequestView {
  /** The request method. */
  readonly method: string;
  /** The path with its query string, as it was sent upstream. */
  readonly path: string;
  /** The request headers. Changes made here are not sent anywhere. */
  readonly headers: Headers;
  /** The client's address. */
  readonly remoteAddr: { readonly hostname: string; readonly port: number };
  /**
   * How the request reached the proxy: `HTTP/1.1`, `HTTP/1.0`, `HTTP/2`, or a protocol
   * codec's name such as `bolt`. Absent where a runtime cannot tell (sandboxed modules).
   */
  readonly protocol?: string;
}

/** What a receiver filter sees of a request. */
export interface RequestStream extends RequestView {
  /** The phase the filter runs in. */
  readonly phase: ReceivePhase;
  /** The path with its query string. Setting it changes what goes upstream. */
  path: string;
  /** The request headers; mutable, and what goes upstream. */
  readonly headers: Headers;
  /** Values shared by all filters of this stream (MOSN's per-stream variables). */
  readonly metadata: Map<string, unknown>;
  /** The matched route, from `after_route` on. */
  readonly route: RouteInfo | undefined;
  /** The chosen upstream host, in `after_choose_host`. */
  readonly host: HostInfo | undefined;
  /** A logger scoped to the running filter. */
  readonly logger: FilterLogger;
  /**
   * The running filter's effective config: the route's `per_filter_config` for this
   * filter, else the virtual host's, else the config the filter was declared with. When
   * the filter has a `parseConfig`, this is the value it returned at load.
   */
  readonly config: unknown;
  /** True once some filter called {@linkcode RequestStream.respond}. */
  readonly responded: boolean;
  /**
   * Reads the whole request body (buffered once, on demand). With `maxBytes`, a larger
   * body rejects with an error named `BodyTooLargeError` and the body is lost: the
   * filter must then `respond()`.
   */
  body(options?: { maxBytes?: number }): Promise<Uint8Array>;
  /** Replaces the request body; Content-Length is set to match. */
  setBody(body: string | Uint8Array): void;
  /**
   * Answers the request locally (MOSN's hijack). Return `stop` to skip the rest of the
   * phase, or `continue` to let the phase finish; either way the request is not sent
   * upstream and the sender filters run on this response.
   */
  respond(status: number, init?: RespondInit): void;
}

/** What a sender filter sees of a response. */
export interface ResponseStream {
  /** Always `before_send`. */
  readonly phase: "before_send";
  /** The response status; settable. */
  status: number;
  /** The response headers; mutable. */
  readonly headers: Headers;
  /** The request this response answers. */
  readonly request: RequestView;
  /** Values shared by all filters of this stream. */
  readonly metadata: Map<string, unknown>;
  /** The matched route, if any. */
  readonly route: RouteInfo | undefined;
  /** The upstream host that answered, if any. */
  readonly host: HostInfo | undefined;
  /** True when the response was made by the proxy or a filter, not an upstream. */
  readonly local: boolean;
  /** A logger scoped to the running filter. */
  readonly logger: FilterLogger;
  /** The running filter's effective config (see {@linkcode RequestStream.config}). */
  readonly config: unknown;
  /** Reads the whole response body (buffered once, on demand); `maxBytes` as for requests. */
  body(options?: { maxBytes?: number }): Promise<Uint8Array>;
  /** Replaces the response body; Content-Length is set to match. */
  setBody(body: string | Uint8Array): void;
}

/** A filter that sees requests. */
export interface ReceiverFilter {
  /** Called once in the phase the filter was added for. */
  onReceive(stream: RequestStream): FilterStatus | Promise<FilterStatus>;
  /** Called exactly once when the stream ends, also when the client went away. */
  onDestroy?(): void;
}

/** A filter that sees responses, upstream and local alike. */
export interface SenderFilter {
  /** Called once before the response is written. `stop` skips later sender filters. */
  append(stream: ResponseStream): FilterStatus | Promise<FilterStatus>;
  /** Called exactly once when the stream ends (once even if also a receiver). */
  onDestroy?(): void;
}

/** Collects one stream's filter instances. */
export interface FilterChain {
  /** Adds a receiver filter to a phase. */
  addReceiver(filter: ReceiverFilter, phase: ReceivePhase): void;
  /** Adds a sender filter. */
  addSender(filter: SenderFilter): void;
}

/** Made once per config load; creates cheap filter instances for every stream. */
export interface StreamFilterFactory {
  /** Called for every stream: add this filter's instances to the chain. */
  createFilterChain(chain: FilterChain): void;
  /** Called when the config that made this factory is replaced or the proxy stops. */
  destroy?(): void | Promise<void>;
}

/** A request to an out-of-process plugin (MOSN's `proto.Request`). */
export interface PluginRequest {
  /** Header map sent to the plugin. */
  header?: Record<string, string>;
  /** Trailer map sent to the plugin. */
  trailer?: Record<string, string>;
  /** Body bytes. */
  body?: Uint8Array;
  /** A free-form type string. */
  type?: string;
}

/** A plugin's answer (MOSN's `proto.Response`). */
export interface PluginResponse {
  /** Header map returned by the plugin. */
  header: Record<string, string>;
  /** Trailer map returned by the plugin. */
  trailer: Record<string, string>;
  /** Body bytes. */
  body: Uint8Array;
  /** The status: MOSN's checker convention uses -1 for deny. */
  status: number;
}

/** Calls plugins declared in the config's `plugins:` map. */
export interface PluginCaller {
  /**
   * Calls plugin `name`.
   *
   * @throws {Error} when the plugin is unknown, down, disabled, or the call times out.
   */
  call(name: string, request: PluginRequest, options?: { timeoutMs?: number }): Promise<
    PluginResponse
  >;
}

/** What a factory is given besides its config. */
export interface FactoryContext {
  /** The filter's name (its `type`, or `name` when the config gives one). */
  readonly name: string;
  /** The listener the filter is declared on. */
  readonly listener: string;
  /** The config file's path, to resolve relative paths in the filter's config. */
  readonly configFile: string;
  /** A logger with the filter's category. */
  readonly logger: FilterLogger;
  /** Reaches out-of-process plugins. */
  readonly plugins: PluginCaller;
  /**
   * Defines the filter's own counters, gauges and histograms, served by the admin API
   * (`mosaic_custom_<name>{listener,filter}`). Present when the filter runs in the
   * proxy's thread (built in, module by URL); absent inside a sandbox.
   */
  readonly metrics?: FilterMetrics;
}

/** A monotonic counter. */
export interface MetricCounter {
  /** Adds `n` (default 1); a negative or non-finite `n` is ignored. */
  inc(n?: number): void;
  /** The value in this thread. */
  readonly value: number;
}

/** A value that goes up and down. */
export interface MetricGauge {
  /** Sets the value. */
  set(value: number): void;
  /** Adds `n` (default 1). */
  inc(n?: number): void;
  /** Subtracts `n` (default 1). */
  dec(n?: number): void;
  /** The value in this thread. */
  readonly value: number;
}

/** A distribution of observed values (latencies, sizes). */
export interface MetricHistogram {
  /** Records one observation. */
  record(value: number): void;
}

/** Options of {@linkcode FilterMetrics.histogram}. */
export interface HistogramOptions {
  /**
   * Upper bounds of the buckets, ascending.
   *
   * @default {Envoy's default bounds, 0.5 to 3,600,000 (milliseconds)}
   */
  buckets?: readonly number[];
}

/**
 * Defines a filter's own metrics. The same name gives the same metric (also after a
 * reload); a name is letters, digits and `_`, not starting with a digit.
 *
 * @example
 * ```ts ignore
 * export const createStreamFilterFactory: CreateStreamFilterFactory = (config, ctx) => {
 *   const denied = ctx.metrics?.counter("requests_denied");
 *   return { createFilterChain(chain) { … denied?.inc(); … } };
 * };
 * ```
 */
export interface FilterMetrics {
  /**
   * A counter.
   *
   * @throws {TypeError} for a bad name, or one a gauge or histogram already has.
   */
  counter(name: string): MetricCounter;
  /**
   * A gauge.
   *
   * @throws {TypeError} for a bad name, or one a counter or histogram already has.
   */
  gauge(name: string): MetricGauge;
  /**
   * A histogram.
   *
   * @throws {TypeError} for a bad name or buckets, or a name another type already has.
   */
  histogram(name: string, options?: HistogramOptions): MetricHistogram;
}

/** What a {@linkcode ParseFilterConfig} is given besides the config. */
export interface FilterConfigContext {
  /** The filter's name (its `type`, or `name` when the config gives one). */
  readonly name: string;
  /**
   * Which config this is: the listener's `config`, or a route's or virtual host's
   * `per_filter_config` entry for the filter.
   */
  readonly source: "config" | "per_filter_config";
  /** The config file's path, to resolve relative paths in the filter's config. */
  readonly configFile: string;
}

/**
 * Parses and validates a filter's config once, at load (Envoy's
 * `createRouteSpecificFilterConfig`). It is called for the listener's `config` and for
 * every `per_filter_config` entry that names the filter, before any request; a throw
 * stops the load (and fails `main.ts check`) with the file, line and field path. Throw
 * a {@linkcode FilterConfigError} to point at a field inside the config.
 *
 * What it returns is what the factory is called with and what
 * {@linkcode RequestStream.config} hands the filter: the filter never parses per request.
 * It must be synchronous and free of side effects: `check` calls it too.
 */
export type ParseFilterConfig = (config: unknown, context: FilterConfigContext) => unknown;

/**
 * The conventional export of an extension module, `createStreamFilterFactory`
 * (MOSN's `CreateFilterFactory`). It validates its config and throws on a bad one: the
 * error stops the load.
 *
 * It may carry a {@linkcode ParseFilterConfig} as its `parseConfig` property; then the
 * factory receives the parsed config, and so does every stream through `config`.
 *
 * @example A filter whose config is parsed once, at load
 * ```ts
 * import { type CreateStreamFilterFactory, FilterConfigError } from "@mosaic/proxy";
 *
 * export const createStreamFilterFactory: CreateStreamFilterFactory = () => ({
 *   createFilterChain(chain) {
 *     chain.addReceiver({
 *       onReceive(s) {
 *         const { header } = s.config as { header: string };
 *         return s.headers.has(header) ? "continue" : (s.respond(400), "stop");
 *       },
 *     }, "before_route");
 *   },
 * });
 * createStreamFilterFactory.parseConfig = (config) => {
 *   const header = (config as { header?: unknown } | null)?.header;
 *   if (typeof header !== "string") throw new FilterConfigError(["header"], "expected a header name");
 *   return Object.freeze({ header });
 * };
 * ```
 */
export interface CreateStreamFilterFactory {
  (config: unknown, context: FactoryContext): StreamFilterFactory | Promise<StreamFilterFactory>;
  /** Parses the config once at load; see {@linkcode ParseFilterConfig}. */
  parseConfig?: ParseFilterConfig;
  /**
   * What the filter needs from Deno beyond the proxy's own permissions, for the flags
   * `main.ts check` and `main.ts flags` print (for example a wasm file it reads). Given
   * the config as `parseConfig` returned it (or the raw config without a parser).
   */
  permissions?: (config: unknown) => FilterPermissions;
}

/** Paths and hosts a filter reads or reaches; see {@linkcode CreateStreamFilterFactory}. */
export interface FilterPermissions {
  /** Files or folders read (`--allow-read`). */
  readonly read?: readonly string[];
  /** `host:port` reached (`--allow-net`). */
  readonly net?: readonly string[];
}

/** PEM material served or used by a TLS context. */
export interface TlsMaterial {
  /** Certificate chain, PEM. */
  cert: string;
  /** Private key, PEM. */
  key: string;
  /** CA bundle, PEM. */
  ca?: string;
  /** Fetch again after this many milliseconds. */
  refreshAfterMs?: number;
}

/** Supplies certificates to a TLS context. */
export interface CertificateProvider {
  /** Fetches the current certificate and key. */
  fetch(): Promise<TlsMaterial>;
}

/** Creates a certificate provider from a `tls_context`'s `extend_verify` config. */
export type CertificateProviderFactory = (
  config: unknown,
  context: { configFile: string; plugins: PluginCaller },
) => CertificateProvider | Promise<CertificateProvider>;
