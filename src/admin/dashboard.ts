/**
 * `/dashboard`: one small page served by the admin listener, with nothing from a CDN.
 * It polls `/dashboard/data` every second and shows, per listener and cluster, the
 * request rate, the error rate and latency percentiles over the last interval, the
 * hosts with their health, the filters with their counters, the plugins with their
 * state, and the config's version and time of the last reload.
 *
 * @module
 */

import type { PluginStatus } from "../plugin/manager.ts";
import type { HistogramSnapshot } from "../stats/histogram.ts";
import type { StatsSnapshot } from "../stats/snapshot.ts";
import { clustersReport, type OperationsSource } from "./operations.ts";
import type { AdminServer } from "./server.ts";

/** What the page polls. */
export interface DashboardData {
  now: number;
  info: ReturnType<OperationsSource["info"]>;
  listeners: {
    name: string;
    total: number;
    errors: number;
    active: number;
    classes: Record<string, number>;
    time: HistogramSnapshot | undefined;
  }[];
  clusters: {
    name: string;
    total: number;
    errors: number;
    active: number;
    time: HistogramSnapshot | undefined;
    hosts: { address: string; healthy: boolean; ejected: boolean; stats: Record<string, number> }[];
  }[];
  filters: { listener: string; filter: string; stats: Record<string, number> }[];
  plugins: (PluginStatus & { stats: Record<string, number> })[];
}

/** Builds what the page shows from the summed stats. */
export function dashboardData(source: OperationsSource, stats: StatsSnapshot): DashboardData {
  const config = source.config();
  const listeners: DashboardData["listeners"] = [];
  const clusterTime = new Map<string, HistogramSnapshot>();
  const filters: DashboardData["filters"] = [];
  const pluginStats = new Map<string, Record<string, number>>();
  const listenerNames = new Set(config.listeners.map((l) => l.name));
  for (const scope of stats.scopes) {
    const c = scope.counters;
    if (scope.kind === "listener" && listenerNames.has(scope.labels.listener)) {
      listeners.push({
        name: scope.labels.listener,
        total: c.downstream_rq_total ?? 0,
        errors: c.downstream_rq_5xx ?? 0,
        active: scope.gauges.downstream_rq_active ?? 0,
        classes: {
          "2xx": c.downstream_rq_2xx ?? 0,
          "3xx": c.downstream_rq_3xx ?? 0,
          "4xx": c.downstream_rq_4xx ?? 0,
          "5xx": c.downstream_rq_5xx ?? 0,
        },
        time: scope.histograms.downstream_rq_time,
      });
    } else if (scope.kind === "cluster") {
      clusterTime.set(scope.labels.cluster, scope.histograms.upstream_rq_time);
    } else if (scope.kind === "filter") {
      filters.push({ listener: scope.labels.listener, filter: scope.labels.filter, stats: c });
    } else if (scope.kind === "plugin") {
      pluginStats.set(scope.labels.plugin, c);
    }
  }
  const clusters = clustersReport(config, stats).map((cluster) => ({
    name: cluster.name,
    total: cluster.stats.upstream_rq_total ?? 0,
    errors: cluster.stats.upstream_rq_5xx ?? 0,
    active: cluster.stats.upstream_rq_active ?? 0,
    time: clusterTime.get(cluster.name),
    hosts: cluster.hosts,
  }));
  return {
    now: Date.now(),
    info: source.info(),
    listeners,
    clusters,
    filters,
    plugins: source.plugins().map((p) => ({ ...p, stats: pluginStats.get(p.name) ?? {} })),
  };
}

/**
 * Adds `/dashboard` and `/dashboard/data` to an admin server.
 *
 * @param admin The admin server.
 * @param source The running proxy.
 * @returns The admin server.
 */
export function addDashboardRoutes(admin: AdminServer, source: OperationsSource): AdminServer {
  admin.route("/dashboard", () =>
    new Response(DASHBOARD_HTML, {
      status: 200,
      headers: {
        "content-type": "text/html; charset=utf-8",
        "content-security-policy":
          "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'",
      },
    }), { description: "live dashboard: rates, latency, errors, hosts, filters, plugins" });
  admin.route("/dashboard/data", async () => {
    const data = dashboardData(source, await source.stats());
    return new Response(JSON.stringify(data), {
      status: 200,
      headers: { "content-type": "application/json", "cache-control": "no-store" },
    });
  }, { description: "what the dashboard polls, as JSON" });
  return admin;
}

/** The page: plain HTML, CSS and script, no dependency. */
export const DASHBOARD_HTML = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Mosaic dashboard</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:0;background:#f6f7f9;color:#1d2330}
header{background:#1d2330;color:#fff;padding:10px 18px;display:flex;gap:24px;align-items:baseline;flex-wrap:wrap}
header h1{font-size:18px;margin:0}header span{opacity:.85}
main{padding:12px 18px;display:grid;gap:14px}
section{background:#fff;border:1px solid #dde1e8;border-radius:6px;padding:8px 12px}
h2{font-size:15px;margin:4px 0 8px}
table{border-collapse:collapse;width:100%}th,td{text-align:right;padding:3px 8px;border-bottom:1px solid #eef0f4;white-space:nowrap}
th:first-child,td:first-child{text-align:left}th{font-weight:600;color:#566}
.ok{color:#18794e}.bad{color:#c62828;font-weight:600}.dim{color:#8a93a3}
#status.stale{color:#ffb4a8}
</style></head><body>
<header><h1>Mosaic</h1>
<span>config <b id="version">…</b></span><span>loaded <b id="loaded">…</b></span>
<span>reloads <b id="reloads">0</b></span><span id="status">connecting…</span></header>
<main>
<section><h2>Listeners</h2><table><thead><tr><th>listener</th><th>requests</th><th>req/s</th>
<th>active</th><th>2xx</th><th>4xx</th><th>5xx</th><th>error rate</th><th>p50 ms</th><th>p90 ms</th><th>p99 ms</th></tr></thead>
<tbody id="listeners"></tbody></table></section>
<section><h2>Clusters</h2><table><thead><tr><th>cluster</th><th>requests</th><th>req/s</th>
<th>active</th><th>5xx</th><th>error rate</th><th>p50 ms</th><th>p90 ms</th><th>p99 ms</th><th>hosts healthy</th></tr></thead>
<tbody id="clusters"></tbody></table></section>
<section><h2>Hosts</h2><table><thead><tr><th>host</th><th>cluster</th><th>health</th><th>weight</th>
<th>in flight</th><th>requests</th><th>errors</th><th>connections</th><th>connect fails</th></tr></thead>
<tbody id="hosts"></tbody></table></section>
<section><h2>Filters</h2><table><thead><tr><th>filter</th><th>listener</th><th>calls</th><th>stops</th>
<th>responds</th><th>errors</th><th>avg µs</th></tr></thead><tbody id="filters"></tbody></table></section>
<section><h2>Plugins</h2><table><thead><tr><th>plugin</th><th>enabled</th><th>running</th><th>calls</th>
<th>errors</th><th>restarts</th></tr></thead><tbody id="plugins"></tbody></table></section>
</main>
<script>
"use strict";
let last;
const $ = (id) => document.getElementById(id);
const esc = (s) => String(s).replace(/[&<>"]/g, (c) => ({"&":"&amp;","<":"&lt;",">":"&gt;",'"':"&quot;"})[c]);
const cell = (v, test, cls) => '<td' + (test ? ' data-test="' + esc(test) + '"' : '') + (cls ? ' class="' + cls + '"' : '') + '>' + esc(v) + '</td>';
function diff(a, b) {
  if (!a) return undefined;
  if (!b) return a;
  return { bounds: a.bounds, counts: a.counts.map((n, i) => n - (b.counts[i] || 0)), count: a.count - b.count, sum: a.sum - b.sum };
}
function quantile(h, q) {
  if (!h || h.count <= 0) return NaN;
  const rank = q * h.count; let seen = 0;
  for (let i = 0; i < h.counts.length; i++) {
    const n = h.counts[i];
    if (n > 0 && seen + n >= rank) {
      const lo = i === 0 ? 0 : h.bounds[i - 1];
      if (i >= h.bounds.length) return lo;
      return lo + (h.bounds[i] - lo) * Math.max(0, rank - seen) / n;
    }
    seen += n;
  }
  return h.bounds[h.bounds.length - 1];
}
const fmt = (x, d) => Number.isFinite(x) ? x.toFixed(d) : "–";
const pct = (e, t) => t > 0 ? (100 * e / t).toFixed(1) + "%" : "–";
function rates(kind, row, prev, dt) {
  const p = prev && prev[kind].find((r) => r.name === row.name);
  const dTotal = p ? row.total - p.total : row.total;
  const dErr = p ? row.errors - p.errors : row.errors;
  const h = diff(row.time, p && p.time);
  const use = h && h.count > 0 ? h : row.time;
  return { rate: p && dt > 0 ? dTotal / dt : NaN, err: pct(dErr, dTotal), p50: quantile(use, .5), p90: quantile(use, .9), p99: quantile(use, .99) };
}
function render(d) {
  const dt = last ? (d.now - last.now) / 1000 : 0;
  $("version").textContent = d.info.version;
  $("loaded").textContent = new Date(d.info.loadedAt).toLocaleTimeString();
  $("reloads").textContent = d.info.reloads;
  $("listeners").innerHTML = d.listeners.map((l) => {
    const r = rates("listeners", l, last, dt), id = "listener-" + l.name;
    return "<tr>" + cell(l.name) + cell(l.total, id + "-total") + cell(fmt(r.rate, 1), id + "-rate") + cell(l.active) +
      cell(l.classes["2xx"], id + "-2xx") + cell(l.classes["4xx"], id + "-4xx") + cell(l.classes["5xx"], id + "-5xx", l.classes["5xx"] ? "bad" : "") +
      cell(r.err, id + "-errors") + cell(fmt(r.p50, 2), id + "-p50") + cell(fmt(r.p90, 2), id + "-p90") + cell(fmt(r.p99, 2), id + "-p99") + "</tr>";
  }).join("");
  $("clusters").innerHTML = d.clusters.map((c) => {
    const r = rates("clusters", c, last, dt), id = "cluster-" + c.name;
    const healthy = c.hosts.filter((h) => h.healthy && !h.ejected).length;
    return "<tr>" + cell(c.name) + cell(c.total, id + "-total") + cell(fmt(r.rate, 1), id + "-rate") + cell(c.active) +
      cell(c.errors, id + "-5xx", c.errors ? "bad" : "") + cell(r.err, id + "-errors") + cell(fmt(r.p50, 2), id + "-p50") + cell(fmt(r.p90, 2), id + "-p90") +
      cell(fmt(r.p99, 2), id + "-p99") + cell(healthy + "/" + c.hosts.length, id + "-healthy", healthy < c.hosts.length ? "bad" : "ok") + "</tr>";
  }).join("");
  $("hosts").innerHTML = d.clusters.flatMap((c) => c.hosts.map((h) => {
    const id = "host-" + c.name + "-" + h.address, s = h.stats;
    const health = h.ejected ? "ejected" : h.healthy ? "healthy" : "unhealthy";
    return "<tr>" + cell(h.address) + cell(c.name) + cell(health, id + "-health", health === "healthy" ? "ok" : "bad") + cell(h.weight) +
      cell(s.rq_active || 0) + cell(s.rq_total || 0, id + "-total") + cell(s.rq_error || 0) + cell(s.cx_active || 0) + cell(s.cx_connect_fail || 0) + "</tr>";
  })).join("");
  $("filters").innerHTML = d.filters.map((f) => {
    const s = f.stats, id = "filter-" + f.listener + "-" + f.filter;
    return "<tr>" + cell(f.filter) + cell(f.listener) + cell(s.calls, id + "-calls") + cell(s.stops, id + "-stops") + cell(s.responds, id + "-responds") +
      cell(s.errors, id + "-errors", s.errors ? "bad" : "") + cell(s.calls ? fmt(s.time_us / s.calls, 1) : "–") + "</tr>";
  }).join("");
  $("plugins").innerHTML = d.plugins.length === 0 ? '<tr><td class="dim" colspan="6">no plugins</td></tr>' : d.plugins.map((p) =>
    "<tr>" + cell(p.name) + cell(p.enabled ? "yes" : "no") + cell(p.on ? "on" : "off", "plugin-" + p.name + "-state", p.on ? "ok" : "bad") +
    cell(p.stats.calls || 0) + cell(p.stats.errors || 0) + cell(p.stats.restarts || 0) + "</tr>").join("");
  last = d;
}
async function poll() {
  try {
    const res = await fetch("/dashboard/data", { cache: "no-store" });
    render(await res.json());
    $("status").textContent = "live, updated " + new Date().toLocaleTimeString();
    $("status").className = "";
  } catch (e) {
    $("status").textContent = "admin API unreachable";
    $("status").className = "stale";
  }
  setTimeout(poll, 1000);
}
poll();
</script></body></html>
`;
