/**
 * The operator's endpoints of the admin API, in Envoy's and MOSN's paths: stats (JSON
 * and Prometheus), the running config (redacted), clusters and their hosts, listeners,
 * readiness and the health check switch, and the log level. With `workers: N` every
 * answer is about the whole proxy: the stats are summed over the workers.
 *
 * @module
 */

import type { LogLevel, MosaicConfig } from "../config/types.ts";
import type { PluginStatus } from "../plugin/manager.ts";
import { configDump } from "./config_dump.ts";
import { type AdminServer, text } from "./server.ts";
import {
  type ScopeSnapshot,
  type StatsSnapshot,
  toEnvoyJson,
  toPrometheus,
} from "../stats/snapshot.ts";

/** When and which config was put in force. */
export interface ConfigInfo {
  /** The config file. */
  file: string;
  /** A short hash of the config text in force (`sha256:<12 hex>`). */
  version: string;
  /** When the proxy started (ms since the epoch). */
  startedAt: number;
  /** When the config in force was loaded (start or last reload). */
  loadedAt: number;
  /** Successful reloads since start. */
  reloads: number;
  /** When the last reload failed, and why. */
  lastReloadError?: { at: number; error: string };
}

/** What the endpoints read from the running proxy. */
export interface OperationsSource {
  /** The stats, summed over every worker. */
  stats(): Promise<StatsSnapshot>;
  /** The config in force. */
  config(): MosaicConfig;
  /** The config text in force. */
  configText(): string;
  /** When and which config is in force. */
  info(): ConfigInfo;
  /** The address each listener is bound to, by name. */
  addresses(): Map<string, Deno.NetAddr>;
  /** Every plugin's status. */
  plugins(): PluginStatus[];
  /** The log level in force. */
  logLevel(): LogLevel;
  /** Sets the log level of every thread. */
  setLogLevel(level: LogLevel): Promise<void>;
}

/** The readiness switch, also turned by a drain. */
export class Readiness {
  /** True after `/healthcheck/fail`, until `/healthcheck/ok`. */
  failed = false;
  /** True once the proxy drains for a stop. */
  draining = false;

  /** True when `/ready` answers 200. */
  get ready(): boolean {
    return !this.failed && !this.draining;
  }
}

const LEVELS: Record<string, LogLevel> = {
  TRACE: "trace",
  DEBUG: "debug",
  INFO: "info",
  WARN: "warning",
  WARNING: "warning",
  ERROR: "error",
  CRITICAL: "fatal",
  FATAL: "fatal",
};

/** Reads a log level as MOSN (`DEBUG`, `WARN`) or Envoy (`debug`, `warning`) write it. */
export function parseLogLevel(value: string | null | undefined): LogLevel | undefined {
  return value ? LEVELS[value.toUpperCase()] : undefined;
}

function json(status: number, body: unknown): Response {
  return new Response(JSON.stringify(body, null, 2) + "\n", {
    status,
    headers: { "content-type": "application/json" },
  });
}

function formatAddr(addr: { hostname: string; port: number }): string {
  return addr.hostname.includes(":")
    ? `[${addr.hostname}]:${addr.port}`
    : `${addr.hostname}:${addr.port}`;
}

/** The clusters of the config with their hosts' health, weight and counters. */
export function clustersReport(config: MosaicConfig, stats: StatsSnapshot) {
  const scopes = new Map<string, ScopeSnapshot>();
  for (const scope of stats.scopes) {
    if (scope.kind === "cluster") scopes.set(`c\n${scope.labels.cluster}`, scope);
    if (scope.kind === "host") {
      scopes.set(`h\n${scope.labels.cluster}\n${scope.labels.host}`, scope);
    }
  }
  return [...config.clusters.values()].map((cluster) => {
    const own = scopes.get(`c\n${cluster.name}`);
    return {
      name: cluster.name,
      type: cluster.type,
      lb_type: cluster.lbType,
      stats: { ...own?.counters, ...own?.gauges },
      hosts: cluster.hosts.map((host) => {
        const h = scopes.get(`h\n${cluster.name}\n${host.address}`);
        return {
          address: host.address,
          weight: host.weight,
          healthy: (h?.gauges.healthy ?? 1) === 1,
          ejected: (h?.gauges.ejected ?? 0) === 1,
          stats: { ...h?.counters, ...h?.gauges },
        };
      }),
    };
  });
}

/**
 * Adds the operations endpoints to an admin server.
 *
 * @param admin The admin server.
 * @param source The running proxy.
 * @param readiness The switch `/ready` reads.
 * @returns The admin server.
 */
export function addOperationsRoutes(
  admin: AdminServer,
  source: OperationsSource,
  readiness: Readiness = new Readiness(),
): AdminServer {
  admin.route("/stats", async (_request, url) => {
    const pattern = url.searchParams.get("filter");
    let filter: RegExp | undefined;
    if (pattern) {
      try {
        filter = new RegExp(pattern);
      } catch (error) {
        return text(400, `filter is not a regular expression: ${(error as Error).message}\n`);
      }
    }
    const all = toEnvoyJson(await source.stats(), filter);
    const usedOnly = url.searchParams.has("usedonly");
    return json(200, {
      stats: usedOnly ? all.stats.filter((s) => s.value !== 0) : all.stats,
      histograms: usedOnly ? all.histograms.filter((h) => h.count > 0) : all.histograms,
    });
  }, { description: "every stat as JSON (?filter=<regex>, ?usedonly)" });

  admin.route("/stats/prometheus", async () => {
    return new Response(toPrometheus(await source.stats()), {
      status: 200,
      headers: { "content-type": "text/plain; version=0.0.4; charset=utf-8" },
    });
  }, { description: "every stat in Prometheus text format" });

  admin.route("/api/v1/config_dump", () => {
    return json(200, { info: source.info(), config: configDump(source.configText()) });
  }, { description: "the running config, secrets and private keys redacted" });

  admin.route("/clusters", async (_request, url) => {
    const report = clustersReport(source.config(), await source.stats());
    if (url.searchParams.get("format") === "json") return json(200, { clusters: report });
    // Envoy's text form: cluster::host::stat::value.
    let out = "";
    for (const c of report) {
      for (const [stat, value] of Object.entries(c.stats)) out += `${c.name}::${stat}::${value}\n`;
      for (const h of c.hosts) {
        const prefix = `${c.name}::${h.address}::`;
        out += `${prefix}weight::${h.weight}\n`;
        out += `${prefix}health_flags::${
          h.ejected ? "/failed_outlier_check" : h.healthy ? "healthy" : "/failed_active_hc"
        }\n`;
        for (const [stat, value] of Object.entries(h.stats)) out += `${prefix}${stat}::${value}\n`;
      }
    }
    return text(200, out);
  }, { description: "clusters and hosts: health, weight, counters (?format=json)" });

  admin.route("/listeners", (_request, url) => {
    const addresses = source.addresses();
    const listeners = source.config().listeners.map((l) => ({
      name: l.name,
      address: formatAddr(addresses.get(l.name) ?? l),
      network: l.network.type,
      tls: l.tls?.status ?? false,
    }));
    if (url.searchParams.get("format") === "json") return json(200, { listeners });
    return text(200, listeners.map((l) => `${l.name}::${l.address}\n`).join(""));
  }, { description: "listeners and their bound addresses (?format=json)" });

  admin.route("/ready", () => {
    if (readiness.ready) return text(200, "LIVE\n");
    return text(503, readiness.draining ? "DRAINING\n" : "FAILED\n");
  }, { description: "200 LIVE when serving; 503 after /healthcheck/fail or during a drain" });

  admin.route("/healthcheck/fail", () => {
    readiness.failed = true;
    return text(200, "OK\n");
  }, { mutating: true, description: "make /ready answer 503 (before a drain)" });

  admin.route("/healthcheck/ok", () => {
    readiness.failed = false;
    return text(200, "OK\n");
  }, { mutating: true, description: "make /ready answer 200 again" });

  const setLevel = async (value: string | null | undefined) => {
    const level = parseLogLevel(value);
    if (level === undefined) {
      return text(
        400,
        `Unknown log level ${
          JSON.stringify(value ?? "")
        }: use TRACE, DEBUG, INFO, WARN, ERROR or FATAL\n`,
      );
    }
    await source.setLogLevel(level);
    return undefined;
  };

  admin.route("/logging", async (request, url) => {
    if (request.method === "POST") {
      const refused = await setLevel(url.searchParams.get("level"));
      if (refused) return refused;
    }
    return text(200, `active loggers:\n  mosaic: ${source.logLevel()}\n`);
  }, {
    mutating: (url) => url.searchParams.has("level"),
    description: "the log level; POST ?level=debug sets it",
  });

  admin.route("/api/v1/update_loglevel", async (request, url) => {
    // MOSN's body: {"log_path": "...", "log_level": "DEBUG"}; ?level= also works.
    let value: string | null = url.searchParams.get("level");
    if (value === null) {
      try {
        const body = await request.json() as { log_level?: unknown };
        value = typeof body.log_level === "string" ? body.log_level : null;
      } catch {
        return text(400, 'Expected a JSON body like {"log_level": "DEBUG"}\n');
      }
    }
    const refused = await setLevel(value);
    if (refused) return refused;
    return text(200, `update logger success: ${source.logLevel()}\n`);
  }, { mutating: true, description: 'MOSN\'s log level update: body {"log_level": "DEBUG"}' });

  return admin;
}
