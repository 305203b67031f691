/**
 * The zod schema of a Mosaic config file, in MOSN's shape: types, formats and
 * defaults. Keys that are not in this schema are not errors: the loader warns about
 * them (see `unknown_keys.ts`). Rules that span fields or refer to other parts of the
 * file are checked while normalizing (see `normalize.ts`).
 *
 * @module
 */

import { z } from "zod";
import { routerConfig } from "./schema_routes.ts";
import { healthCheck, outlierDetection, panicThreshold } from "./schema_health.ts";
import {
  durationMs,
  hostPort,
  intIn,
  scalarString,
  socketAddress,
  tlsContext,
} from "./schema_values.ts";
import { describeValue } from "./values.ts";
import type { LogLevel } from "./types.ts";
import { parseCidr } from "../proxy/forwarded.ts";

/** MOSN's default access log format (`types.DefaultAccessLogFormat`). */
export const DEFAULT_ACCESS_LOG_FORMAT = "%start_time% %request_received_duration% " +
  "%response_received_duration% %bytes_sent% %bytes_received% %protocol% %response_code% " +
  "%duration% %response_flag% %response_code% %upstream_local_address% " +
  "%downstream_local_address% %downstream_remote_address% %upstream_host%";

const LOG_LEVELS: Record<string, LogLevel> = {
  TRACE: "trace",
  DEBUG: "debug",
  INFO: "info",
  WARN: "warning",
  WARNING: "warning",
  ERROR: "error",
  FATAL: "fatal",
};

const logLevel = z.unknown().transform((value, ctx): LogLevel => {
  const level = typeof value === "string" ? LOG_LEVELS[value.toUpperCase()] : undefined;
  if (level !== undefined) return level;
  ctx.issues.push({
    code: "custom",
    input: value,
    message: `expected one of TRACE, DEBUG, INFO, WARN, ERROR, FATAL, got ${describeValue(value)}`,
  });
  return z.NEVER;
});

/** `failure_mode` of a stream filter. */
export const failureMode = z.enum(["open", "closed"]);

/** Envoy's names for `path_with_escaped_slashes_action` are accepted beside Mosaic's. */
const ESCAPED_SLASHES_ACTIONS: Record<string, "reject" | "unescape_and_forward" | "keep"> = {
  reject: "reject",
  REJECT_REQUEST: "reject",
  unescape_and_forward: "unescape_and_forward",
  UNESCAPE_AND_FORWARD: "unescape_and_forward",
  keep: "keep",
  KEEP_UNCHANGED: "keep",
};

const escapedSlashesAction = z.unknown().transform((value, ctx) => {
  const action = typeof value === "string" ? ESCAPED_SLASHES_ACTIONS[value] : undefined;
  if (action !== undefined) return action;
  ctx.issues.push({
    code: "custom",
    input: value,
    message: `expected reject, unescape_and_forward or keep (or Envoy's REJECT_REQUEST, ` +
      `UNESCAPE_AND_FORWARD, KEEP_UNCHANGED), got ${describeValue(value)}`,
  });
  return z.NEVER;
});

const cidr = z.string().check((ctx) => {
  if (parseCidr(ctx.value) === undefined) {
    ctx.issues.push({
      code: "custom",
      input: ctx.value,
      message: `expected an IPv4 or IPv6 CIDR such as "10.0.0.0/8", got ${
        describeValue(ctx.value)
      }`,
    });
  }
});

const proxyConfig = z.object({
  // Http1, Http2, Auto, or a protocol codec's name (bolt), or MOSN's X with
  // extend_config.sub_protocol; checked when normalized.
  downstream_protocol: z.string().min(1).default("Auto"),
  upstream_protocol: z.string().min(1).optional(),
  extend_config: z.record(z.string(), z.unknown()).optional(),
  router_config_name: z.string().min(1),
  // Request hardening, with Envoy's names and Envoy's recommended edge defaults.
  normalize_path: z.boolean().default(true),
  merge_slashes: z.boolean().default(true),
  path_with_escaped_slashes_action: escapedSlashesAction.default("reject"),
  use_remote_address: z.boolean().default(true),
  xff_num_trusted_hops: intIn(0, 64).default(0),
  trusted_proxies: z.array(cidr).default([]),
});

const tcpProxyConfig = z.object({
  cluster: z.string().min(1).optional(),
  routes: z.array(z.object({ cluster: z.string().min(1) })).optional(),
  idle_timeout: durationMs.default(0),
});

const networkFilter = z.discriminatedUnion("type", [
  z.object({ type: z.literal("proxy"), config: proxyConfig }),
  z.object({ type: z.literal("tcp_proxy"), config: tcpProxyConfig }),
], {
  error: (issue) => {
    const type = (issue.input as { type?: unknown } | undefined)?.type;
    return `expected network filter type "proxy" or "tcp_proxy", got ${describeValue(type)}`;
  },
});

const filterChain = z.object({
  filters: z.array(networkFilter).length(1, {
    error: (issue) =>
      `expected exactly one network filter (proxy or tcp_proxy), got ${
        (issue.input as unknown[]).length
      }`,
  }),
  tls_context: tlsContext.optional(),
});

const permissionValue = z.union([
  z.literal("inherit"),
  z.literal("none"),
  z.boolean(),
  z.array(z.string()),
], {
  error: (issue) =>
    `expected "inherit", "none", true, false or a list, got ${describeValue(issue.input)}`,
});

const sandbox = z.object({
  isolation: z.enum(["worker", "process"]).default("worker"),
  permissions: z.object({
    env: permissionValue.optional(),
    ffi: permissionValue.optional(),
    import: permissionValue.optional(),
    net: permissionValue.optional(),
    read: permissionValue.optional(),
    run: permissionValue.optional(),
    sys: permissionValue.optional(),
    write: permissionValue.optional(),
  }).default({}),
  timeout: durationMs.default(1000),
});

const INTEGRITY = /^sha256-[A-Za-z0-9+/]{43}=$/;

const streamFilter = z.object({
  type: z.string().min(1),
  name: z.string().min(1).optional(),
  config: z.unknown().optional(),
  failure_mode: failureMode.optional(),
  module: z.string().min(1).optional(),
  export: z.string().min(1).optional(),
  integrity: z.string().regex(INTEGRITY, {
    error: (issue) =>
      `expected "sha256-" and the base64 of a 32-byte SHA-256 digest (44 characters), got ` +
      describeValue(issue.input),
  }).optional(),
  sandbox: sandbox.optional(),
});

const accessLog = z.object({
  log_path: z.string().min(1).default("stdout"),
  // A MOSN variable format, or Envoy's `{ json_format: { key: "%VAR%" } }`.
  log_format: z.union([
    z.string().min(1),
    z.strictObject({ json_format: z.record(z.string(), jsonFormatValue()) }),
  ]).default(DEFAULT_ACCESS_LOG_FORMAT),
});

/** A `json_format` value: a format string, a constant, or a nested object of them. */
function jsonFormatValue(): z.ZodType<JsonFormatValue> {
  return z.lazy(() =>
    z.union([
      z.string(),
      z.number(),
      z.boolean(),
      z.null(),
      z.record(z.string(), jsonFormatValue()),
    ])
  );
}

type JsonFormatValue = string | number | boolean | null | { [key: string]: JsonFormatValue };

const listener = z.object({
  name: z.string().min(1).optional(),
  address: hostPort(true),
  filter_chains: z.array(filterChain).length(1, {
    error: (issue) => `expected exactly one filter chain, got ${(issue.input as unknown[]).length}`,
  }),
  stream_filters: z.array(streamFilter).default([]),
  access_logs: z.array(accessLog).default([]),
  max_header_bytes: intIn(1024, 16 * 1024 * 1024).default(32768),
  header_read_timeout: durationMs.optional(),
  // MOSN's listener key; nginx's keepalive_timeout default.
  connection_idle_timeout: durationMs.optional(),
  body_read_timeout: durationMs.optional(),
});

const server = z.object({
  default_log_path: z.string().min(1).default("stderr"),
  default_log_level: logLevel.default("info"),
  routers: z.array(routerConfig).default([]),
  listeners: z.array(listener).default([]),
});

const thresholds = z.object({
  max_connections: intIn(1).default(1024),
  max_pending_requests: intIn(0).default(1024),
  max_requests: intIn(1).default(1024),
  max_retries: intIn(0).default(3),
});

const cluster = z.object({
  name: z.string().min(1),
  type: z.literal("SIMPLE", {
    error: (issue) =>
      typeof issue.input === "string"
        ? `cluster type ${describeValue(issue.input)} is not supported by Mosaic; ` +
          `only "SIMPLE" (static hosts) is`
        : `expected "SIMPLE", got ${describeValue(issue.input)}`,
  }).default("SIMPLE"),
  lb_type: z.enum(["LB_ROUNDROBIN", "LB_RANDOM", "LB_WEIGHTED_ROUNDROBIN", "LB_LEAST_REQUEST"])
    .default("LB_ROUNDROBIN"),
  hosts: z.array(z.object({
    address: hostPort(false),
    hostname: z.string().optional(),
    weight: intIn(1, 128).default(1),
  })).min(1),
  max_request_per_conn: intIn(0).default(0),
  connect_timeout: durationMs.default(3000),
  idle_timeout: durationMs.default(90_000),
  // MOSN writes a list of thresholds; Envoy `{ thresholds: [...] }`. Both are accepted.
  circuit_breakers: z.union([z.array(thresholds), z.object({ thresholds: z.array(thresholds) })], {
    error: (issue) =>
      `expected a list of thresholds or { thresholds: [...] }, got ${describeValue(issue.input)}`,
  }).optional(),
  protocol: z.enum(["Http1", "Http2"]).default("Http1"),
  tls_context: tlsContext.optional(),
  health_check: healthCheck.optional(),
  outlier_detection: outlierDetection.optional(),
  healthy_panic_threshold: panicThreshold.optional(),
});

const plugin = z.object({
  command: z.union([z.string().min(1).transform((s) => [s]), z.array(z.string().min(1)).min(1)], {
    error: (issue) =>
      `expected a program or a list [program, ...args], got ${describeValue(issue.input)}`,
  }),
  args: z.array(scalarString).default([]),
  env: z.record(z.string(), scalarString).default({}),
  cwd: z.string().min(1).optional(),
  network: z.enum(["unix", "tcp"]).default("unix"),
  start_timeout: durationMs.default(10_000),
  max_procs: intIn(1, 64).default(1),
});

/** The whole config file. */
export const configSchema = z.object({
  servers: z.array(server).default([]),
  cluster_manager: z.object({ clusters: z.array(cluster).default([]) }).default({ clusters: [] }),
  admin: z.object({
    address: z.union([
      hostPort(true),
      z.object({ socket_address: socketAddress }).transform((v) => v.socket_address),
    ], {
      error: (issue) =>
        `expected host:port or { socket_address: { address, port_value } }, got ` +
        describeValue(issue.input),
    }).optional(),
    /** Mutating admin endpoints then need `Authorization: Bearer <token>`. */
    bearer_token: z.string().min(1).optional(),
  }).optional(),
  plugins: z.record(z.string().min(1), plugin).default({}),
  drain_timeout: durationMs.default(30_000),
  watch: z.boolean().default(false),
  workers: z.union([z.number().int().min(1).max(1024), z.literal("auto")], {
    error: (issue) =>
      `expected a number of workers from 1 to 1024, or "auto", got ${describeValue(issue.input)}`,
  }).default(1),
});

/** The parsed, not yet normalized config. */
export type RawConfig = z.output<typeof configSchema>;
/** A parsed listener. */
export type RawListener = z.output<typeof listener>;
/** A parsed stream filter entry. */
export type RawStreamFilter = z.output<typeof streamFilter>;
/** A parsed cluster. */
export type RawCluster = z.output<typeof cluster>;
/** A parsed plugin. */
export type RawPlugin = z.output<typeof plugin>;
