/**
 * Turns the parsed config into the {@linkcode MosaicConfig} the rest of Mosaic reads:
 * camelCase, milliseconds, split addresses, defaults filled in, paths resolved against
 * the config file; and checks what spans the file: names that must be unique and
 * references that must resolve.
 *
 * @module
 */

import { dirname } from "node:path";
import type { LoadOptions } from "./load.ts";
import { normalizeListeners } from "./normalize_listeners.ts";
import { attachFilterConfigs } from "./normalize_filters.ts";
import { normalizeRouters } from "./normalize_routes.ts";
import {
  firstDefined,
  type NormalizeContext,
  normalizeTls,
  resolveFromConfig,
  resolveOutput,
} from "./normalize_shared.ts";
import type { FieldPath, SourceDocument } from "./positions.ts";
import type { RawCluster, RawConfig } from "./schema.ts";
import type { RawHealthCheck, RawOutlierDetection } from "./schema_health.ts";
import type {
  ClusterConfig,
  HealthCheckConfig,
  MosaicConfig,
  OutlierDetectionConfig,
  PluginConfig,
} from "./types.ts";
import { bindsClash } from "./normalize_listeners.ts";
import { formatHostPort } from "./values.ts";

/**
 * Normalizes a parsed config.
 *
 * @param raw The config as the schema parsed it.
 * @param source The parsed file, for positions and errors.
 * @param file The config file's absolute path.
 * @param options Load options (known filter types).
 * @returns The normalized config, not yet frozen.
 * @throws {ConfigError} On the first problem.
 */
export function normalizeConfig(
  raw: RawConfig,
  source: SourceDocument,
  file: string,
  options: LoadOptions,
): MosaicConfig {
  const ctx: NormalizeContext = { source, dir: dirname(file) };
  const clusters = normalizeClusters(raw, ctx);
  const plugins = normalizePlugins(raw, ctx);
  const routers = normalizeRouters(raw, new Set(clusters.keys()), ctx);
  const listeners = normalizeListeners(
    raw,
    { routers, clusters: new Set(clusters.keys()), plugins: new Set(plugins.keys()), options },
    ctx,
  );
  attachFilterConfigs(raw, listeners, ctx, options);
  const admin = raw.admin === undefined ? undefined : {
    // MOSN's default admin address, on loopback only.
    hostname: raw.admin.address?.hostname ?? "127.0.0.1",
    port: raw.admin.address?.port ?? 34901,
    ...(raw.admin.bearer_token === undefined ? {} : { token: raw.admin.bearer_token }),
  };
  if (admin !== undefined) {
    const clash = listeners.find((l) => bindsClash(l, admin));
    if (clash !== undefined) {
      throw source.error(
        ["admin", "address"],
        `admin address ${formatHostPort(admin.hostname, admin.port)} is already bound by ` +
          `listener ${JSON.stringify(clash.name)} (line ${clash.position.line})`,
      );
    }
  }
  const first = raw.servers[0];
  return {
    file,
    logLevel: first?.default_log_level ?? "info",
    logPath: resolveOutput(ctx.dir, first?.default_log_path ?? "stderr"),
    listeners,
    routers,
    clusters,
    admin,
    plugins,
    drainTimeoutMs: raw.drain_timeout,
    watch: raw.watch,
    workers: raw.workers,
  };
}

function normalizeClusters(raw: RawConfig, ctx: NormalizeContext): Map<string, ClusterConfig> {
  const clusters = new Map<string, ClusterConfig>();
  const seen = new Map<string, FieldPath>();
  raw.cluster_manager.clusters.forEach((cluster, i) => {
    const path = ["cluster_manager", "clusters", i];
    const first = seen.get(cluster.name);
    if (first !== undefined) {
      throw ctx.source.error(
        [...path, "name"],
        `duplicate cluster name ${JSON.stringify(cluster.name)}; first defined at ${
          firstDefined(ctx.source, first)
        }`,
      );
    }
    seen.set(cluster.name, path);
    clusters.set(cluster.name, normalizeCluster(cluster, path, ctx));
  });
  return clusters;
}

function normalizeCluster(raw: RawCluster, path: FieldPath, ctx: NormalizeContext): ClusterConfig {
  const breakers = raw.circuit_breakers;
  const thresholds = Array.isArray(breakers) ? breakers[0] : breakers?.thresholds[0];
  return {
    name: raw.name,
    type: raw.type,
    lbType: raw.lb_type,
    hosts: raw.hosts.map((host) => ({
      address: formatHostPort(host.address.hostname, host.address.port),
      hostname: host.address.hostname,
      port: host.address.port,
      weight: host.weight,
    })),
    maxRequestPerConn: raw.max_request_per_conn,
    connectTimeoutMs: raw.connect_timeout,
    idleTimeoutMs: raw.idle_timeout,
    maxConnections: thresholds?.max_connections ?? 1024,
    maxPendingRequests: thresholds?.max_pending_requests ?? 1024,
    maxRequests: thresholds?.max_requests ?? 1024,
    maxRetries: thresholds?.max_retries ?? 3,
    healthCheck: normalizeHealthCheck(raw.health_check),
    outlierDetection: normalizeOutlierDetection(raw.outlier_detection),
    healthyPanicThreshold: raw.healthy_panic_threshold ?? 50,
    protocol: raw.protocol,
    tls: normalizeTls(raw.tls_context, [...path, "tls_context"], ctx, "cluster"),
    position: ctx.source.position(path),
  };
}

function normalizeHealthCheck(
  raw: RawHealthCheck | undefined,
): HealthCheckConfig | undefined {
  if (raw === undefined) return undefined;
  const http = raw.protocol === "http" ? raw.check_config?.http_check_config : undefined;
  const timeoutMs = raw.timeout !== undefined && raw.timeout > 0 ? raw.timeout : 1000;
  return {
    protocol: raw.protocol,
    // MOSN's http_check_config.timeout bounds the HTTP exchange; the check's own timeout
    // bounds the whole check, so the shorter one is what counts.
    timeoutMs: http?.timeout !== undefined && http.timeout > 0
      ? Math.min(timeoutMs, http.timeout)
      : timeoutMs,
    intervalMs: raw.interval !== undefined && raw.interval > 0 ? raw.interval : 15_000,
    intervalJitterMs: raw.interval_jitter ?? 0,
    // MOSN leaves 0 as "never changes"; a threshold of 0 means 1 here.
    healthyThreshold: Math.max(1, raw.healthy_threshold ?? 1),
    unhealthyThreshold: Math.max(1, raw.unhealthy_threshold ?? 1),
    serviceName: raw.service_name ?? "",
    http: http === undefined ? undefined : {
      path: http.path,
      method: http.method,
      domain: http.domain,
      port: http.port,
      codes: http.codes.length > 0 ? http.codes : [{ start: 200, end: 200 }],
    },
  };
}

function normalizeOutlierDetection(
  raw: RawOutlierDetection | undefined,
): OutlierDetectionConfig | undefined {
  if (raw === undefined) return undefined;
  return {
    consecutive5xx: raw.consecutive_5xx ?? 5,
    consecutiveGatewayFailure: raw.consecutive_gateway_failure ?? 5,
    enforcingConsecutive5xx: raw.enforcing_consecutive_5xx ?? 100,
    enforcingConsecutiveGatewayFailure: raw.enforcing_consecutive_gateway_failure ??
      (raw.consecutive_gateway_failure !== undefined ? 100 : 0),
    intervalMs: raw.interval !== undefined && raw.interval > 0 ? raw.interval : 10_000,
    baseEjectionTimeMs: raw.base_ejection_time ?? 30_000,
    maxEjectionTimeMs: Math.max(raw.max_ejection_time ?? 300_000, raw.base_ejection_time ?? 0),
    maxEjectionPercent: raw.max_ejection_percent ?? 10,
  };
}

function normalizePlugins(raw: RawConfig, ctx: NormalizeContext): Map<string, PluginConfig> {
  const plugins = new Map<string, PluginConfig>();
  for (const [name, plugin] of Object.entries(raw.plugins)) {
    plugins.set(name, {
      name,
      command: plugin.command,
      args: plugin.args,
      env: plugin.env,
      // Relative paths in `command` and `args` are meant relative to the config file, so
      // the plugin runs in the config file's directory unless `cwd` says otherwise.
      cwd: resolveFromConfig(ctx.dir, plugin.cwd ?? "."),
      network: plugin.network,
      startTimeoutMs: plugin.start_timeout,
      maxProcs: plugin.max_procs,
      position: ctx.source.position(["plugins", name]),
    });
  }
  return plugins;
}
