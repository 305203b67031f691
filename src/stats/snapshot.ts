/**
 * Stats as plain data: what a thread reports, how the workers' reports are summed, and
 * the two forms the admin API answers with: Envoy's JSON of `/stats` and the Prometheus
 * text format of `/stats/prometheus`.
 *
 * @module
 */

import { addHistogram, type HistogramSnapshot } from "./histogram.ts";

/** The stats of one listener, cluster, host, filter, plugin or the server itself. */
export interface ScopeSnapshot {
  /** `listener`, `cluster`, `host`, `filter`, `plugin`, `custom` or `server`. */
  kind: string;
  /** What the scope is of, e.g. `{ cluster: "serverCluster" }`; Prometheus labels. */
  labels: Record<string, string>;
  /** Monotonic counters by name. */
  counters: Record<string, number>;
  /** Values that go up and down by name. */
  gauges: Record<string, number>;
  /** Histograms by name. */
  histograms: Record<string, HistogramSnapshot>;
}

/** Every scope of one thread, or the sum over the workers. */
export interface StatsSnapshot {
  scopes: ScopeSnapshot[];
}

/**
 * Gauges that every worker reports alike (a certificate's expiry): the sum keeps the
 * smallest instead of adding them.
 */
const SAME_IN_EVERY_WORKER: ReadonlySet<string> = new Set([
  "ssl_seconds_until_first_cert_expiring",
  "ssl_days_until_first_cert_expiring",
  "seconds_until_expiry",
  "expiration_unix_time_seconds",
]);

/**
 * Sums snapshots scope by scope and stat by stat: counters and gauges add (requests in
 * flight over all workers), histograms add bucket by bucket; a certificate's expiry
 * gauges, the same in every worker, keep the smallest.
 *
 * @param snapshots One per worker.
 * @returns The sum, scopes in the order they first appear.
 */
export function sumStats(snapshots: Iterable<StatsSnapshot>): StatsSnapshot {
  const byKey = new Map<string, ScopeSnapshot>();
  for (const snapshot of snapshots) {
    for (const scope of snapshot.scopes) {
      const key = `${scope.kind}\n${JSON.stringify(scope.labels)}`;
      const into = byKey.get(key);
      if (into === undefined) {
        byKey.set(key, structuredClone(scope));
        continue;
      }
      for (const [name, v] of Object.entries(scope.counters)) {
        into.counters[name] = (into.counters[name] ?? 0) + v;
      }
      for (const [name, v] of Object.entries(scope.gauges)) {
        const mine = into.gauges[name];
        if (mine === undefined) into.gauges[name] = v;
        else if (SAME_IN_EVERY_WORKER.has(name)) into.gauges[name] = Math.min(mine, v);
        else into.gauges[name] = mine + v;
      }
      for (const [name, h] of Object.entries(scope.histograms)) {
        const mine = into.histograms[name];
        if (mine === undefined) into.histograms[name] = structuredClone(h);
        else addHistogram(mine, h);
      }
    }
  }
  return { scopes: [...byKey.values()] };
}

/**
 * The Envoy-style dotted prefix of a scope: `listener.ingress.`, `cluster.c1.`,
 * `cluster.c1.host.127.0.0.1:8080.`, `filter.ingress.auth.`, `server.`.
 */
export function scopePrefix(scope: ScopeSnapshot): string {
  const l = scope.labels;
  switch (scope.kind) {
    case "host":
      return `cluster.${l.cluster}.host.${l.host}.`;
    case "server":
      return "server.";
    default:
      return `${scope.kind}.${Object.values(l).join(".")}.`;
  }
}

/** One stat of `/stats`, as Envoy's `/stats?format=json` names it. */
export interface NamedStat {
  name: string;
  value: number;
}

/** One histogram of `/stats`. */
export interface NamedHistogram extends HistogramSnapshot {
  name: string;
}

/**
 * Envoy's JSON form: `{ "stats": [{ "name": "cluster.c1.upstream_rq_total", "value": 3 }],
 * "histograms": [{ "name", "bounds", "counts", "sum", "count" }] }`, sorted by name.
 *
 * @param snapshot The stats.
 * @param filter Keeps only stats whose name matches (Envoy's `?filter=`).
 */
export function toEnvoyJson(
  snapshot: StatsSnapshot,
  filter?: RegExp,
): { stats: NamedStat[]; histograms: NamedHistogram[] } {
  const stats: NamedStat[] = [];
  const histograms: NamedHistogram[] = [];
  for (const scope of snapshot.scopes) {
    const prefix = scopePrefix(scope);
    for (const values of [scope.counters, scope.gauges]) {
      for (const [name, value] of Object.entries(values)) {
        const full = prefix + name;
        if (filter === undefined || filter.test(full)) stats.push({ name: full, value });
      }
    }
    for (const [name, h] of Object.entries(scope.histograms)) {
      const full = prefix + name;
      if (filter === undefined || filter.test(full)) histograms.push({ name: full, ...h });
    }
  }
  stats.sort((a, b) => a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
  histograms.sort((a, b) => a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
  return { stats, histograms };
}

/** The prefix of every Prometheus metric name. */
export const PROMETHEUS_PREFIX = "mosaic_";

function metricName(kind: string, stat: string): string {
  return `${PROMETHEUS_PREFIX}${kind}_${stat}`.replace(/[^a-zA-Z0-9_:]/g, "_");
}

function labelText(labels: Record<string, string>, extra?: string): string {
  const parts = Object.entries(labels).map(([k, v]) =>
    `${k.replace(/[^a-zA-Z0-9_]/g, "_")}="${
      v.replaceAll("\\", "\\\\").replaceAll('"', '\\"').replaceAll("\n", "\\n")
    }"`
  );
  if (extra !== undefined) parts.push(extra);
  return parts.length === 0 ? "" : `{${parts.join(",")}}`;
}

function number(value: number): string {
  if (value === Infinity) return "+Inf";
  if (value === -Infinity) return "-Inf";
  return Number.isNaN(value) ? "NaN" : String(value);
}

/**
 * The Prometheus text exposition format (version 0.0.4): one family per kind and stat,
 * e.g. `mosaic_cluster_upstream_rq_total{cluster="c1"} 3`, each with its `# TYPE` line;
 * histograms as `_bucket{le=…}` (cumulative), `_sum` and `_count`.
 *
 * @param snapshot The stats.
 * @returns The text, ending with a newline.
 */
export function toPrometheus(snapshot: StatsSnapshot): string {
  const families = new Map<string, { type: string; lines: string[] }>();
  const family = (name: string, type: string) => {
    let f = families.get(name);
    if (f === undefined) families.set(name, f = { type, lines: [] });
    return f;
  };
  for (const scope of snapshot.scopes) {
    for (const [stat, value] of Object.entries(scope.counters)) {
      const name = metricName(scope.kind, stat);
      family(name, "counter").lines.push(`${name}${labelText(scope.labels)} ${number(value)}`);
    }
    for (const [stat, value] of Object.entries(scope.gauges)) {
      if (Number.isNaN(value)) continue;
      const name = metricName(scope.kind, stat);
      family(name, "gauge").lines.push(`${name}${labelText(scope.labels)} ${number(value)}`);
    }
    for (const [stat, h] of Object.entries(scope.histograms)) {
      const name = metricName(scope.kind, stat);
      const lines = family(name, "histogram").lines;
      let cumulative = 0;
      for (let i = 0; i < h.counts.length; i++) {
        cumulative += h.counts[i];
        const le = i < h.bounds.length ? number(h.bounds[i]) : "+Inf";
        lines.push(`${name}_bucket${labelText(scope.labels, `le="${le}"`)} ${cumulative}`);
      }
      lines.push(`${name}_sum${labelText(scope.labels)} ${number(h.sum)}`);
      lines.push(`${name}_count${labelText(scope.labels)} ${h.count}`);
    }
  }
  let out = "";
  for (const [name, f] of families) {
    out += `# TYPE ${name} ${f.type}\n${f.lines.join("\n")}\n`;
  }
  return out;
}
