/**
 * Mosaic's public API: the only module an extension imports.
 *
 * A stream filter is a module that exports a {@linkcode CreateStreamFilterFactory}
 * (by convention named `createStreamFilterFactory`). It needs nothing from Mosaic at
 * run time: statuses and phases are string literals, so `import type` is enough, and a
 * filter written against one Mosaic version loads into another.
 *
 * @example A filter that denies requests without a `User: admin` header
 * ```ts
 * import type { CreateStreamFilterFactory } from "@mosaic/proxy";
 *
 * export const createStreamFilterFactory: CreateStreamFilterFactory = (config) => ({
 *   createFilterChain(chain) {
 *     chain.addReceiver({
 *       onReceive(s) {
 *         if (s.headers.get("user") === "admin") return "continue";
 *         s.respond(403, { body: "forbidden\n" });
 *         return "stop";
 *       },
 *     }, "before_route");
 *   },
 * });
 * ```
 *
 * @module
 */

export type {
  CertificateProvider,
  CertificateProviderFactory,
  CreateStreamFilterFactory,
  FactoryContext,
  FilterChain,
  FilterConfigContext,
  FilterLogger,
  FilterMetrics,
  FilterPermissions,
  FilterStatus,
  HistogramOptions,
  HostInfo,
  MetricCounter,
  MetricGauge,
  MetricHistogram,
  ParseFilterConfig,
  Phase,
  PluginCaller,
  PluginRequest,
  PluginResponse,
  ReceivePhase,
  ReceiverFilter,
  RequestStream,
  RequestView,
  RespondInit,
  ResponseStream,
  RouteInfo,
  SenderFilter,
  StreamFilterFactory,
  TlsMaterial,
} from "./src/filter/api.ts";

export type {
  CreateProtocolCodec,
  FrameType,
  ProtocolCodec,
  ProtocolFrame,
  RequestLine,
} from "./src/protocol/api.ts";

export { registerStreamFilter } from "./src/filter/registry.ts";
export { ProtocolError } from "./src/protocol/api.ts";
export { registerProtocol } from "./src/protocol/registry.ts";
export { checkConfigKeys, FilterConfigError } from "./src/config/filter_config.ts";
export { parseDuration } from "./src/config/values.ts";
export { registerCertificateProvider } from "./src/tls/providers.ts";
