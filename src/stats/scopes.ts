/**
 * The stats of one thread, as objects with plain number fields named as Envoy names the
 * stats (`downstream_rq_total`, `upstream_cx_connect_fail`, …). The data path resolves
 * its objects once (a listener's when its context is built, a cluster's and a host's when
 * they are made, a filter's when its factory is) and then only increments fields: no
 * string lookups and no allocation per request.
 *
 * Objects are kept by name in {@linkcode threadStats}, so counters survive a reload that
 * keeps the listener, cluster, host or filter. Each worker of `workers: N` has its own
 * (its own module instance); the admin API sums their snapshots.
 *
 * @module
 */

import { Histogram } from "./histogram.ts";
import { threadCounters } from "../workers/counters.ts";
import type { ScopeSnapshot, StatsSnapshot } from "./snapshot.ts";

/** Status codes counted one by one (`downstream_rq_404`); others count by class only. */
const CODES = 600;

function codeCounts(): number[] {
  return new Array(CODES).fill(0);
}

function addCodes(into: Record<string, number>, prefix: string, codes: number[]): void {
  for (let code = 100; code < CODES; code++) {
    if (codes[code] > 0) into[`${prefix}${code}`] = codes[code];
  }
}

/** A listener's stats (Envoy's `http.<prefix>.*` and `listener.<address>.*`). */
export class ListenerStats {
  /** Requests received. */
  downstream_rq_total = 0;
  /** Requests answered, by class. */
  downstream_rq_1xx = 0;
  /** Requests answered 2xx. */
  downstream_rq_2xx = 0;
  /** Requests answered 3xx. */
  downstream_rq_3xx = 0;
  /** Requests answered 4xx. */
  downstream_rq_4xx = 0;
  /** Requests answered 5xx. */
  downstream_rq_5xx = 0;
  /** Requests whose client left before the response was written. */
  downstream_rq_rx_reset = 0;
  /** Requests in flight (a gauge). */
  downstream_rq_active = 0;
  /** Requests answered with no route (404, flag NR). */
  downstream_rq_no_route = 0;
  /** Answers by status code. */
  readonly codes: number[] = codeCounts();
  /** Time from the request's arrival to the end of the response, in milliseconds. */
  readonly downstream_rq_time: Histogram = new Histogram();
  /** TLS handshakes completed (TLS listeners). */
  ssl_handshake = 0;
  /** TLS handshakes that failed. */
  ssl_connection_error = 0;
  /** The certificates the listener serves now, by name (`StatsRegistry.certificates`). */
  certificates: ReadonlyMap<string, CertificateStats> = new Map();

  /** Counts a response at its end. */
  answered(status: number, ms: number): void {
    this.downstream_rq_active--;
    const cls = (status / 100) | 0;
    if (cls === 2) this.downstream_rq_2xx++;
    else if (cls === 4) this.downstream_rq_4xx++;
    else if (cls === 5) this.downstream_rq_5xx++;
    else if (cls === 3) this.downstream_rq_3xx++;
    else if (cls === 1) this.downstream_rq_1xx++;
    if (status < CODES) this.codes[status]++;
    this.downstream_rq_time.record(ms);
  }

  /** This scope's values. */
  snapshot(name: string): ScopeSnapshot {
    const counters: Record<string, number> = {
      downstream_rq_total: this.downstream_rq_total,
      downstream_rq_1xx: this.downstream_rq_1xx,
      downstream_rq_2xx: this.downstream_rq_2xx,
      downstream_rq_3xx: this.downstream_rq_3xx,
      downstream_rq_4xx: this.downstream_rq_4xx,
      downstream_rq_5xx: this.downstream_rq_5xx,
      downstream_rq_rx_reset: this.downstream_rq_rx_reset,
      downstream_rq_no_route: this.downstream_rq_no_route,
    };
    addCodes(counters, "downstream_rq_", this.codes);
    const gauges: Record<string, number> = { downstream_rq_active: this.downstream_rq_active };
    if (this.ssl_handshake > 0 || this.ssl_connection_error > 0) {
      counters.ssl_handshake = this.ssl_handshake;
      counters.ssl_connection_error = this.ssl_connection_error;
    }
    if (this.certificates.size > 0) {
      const now = Date.now();
      let first = Infinity;
      for (const c of this.certificates.values()) {
        const left = c.secondsLeft(now);
        if (left < first) first = left;
      }
      if (Number.isFinite(first)) {
        gauges.ssl_seconds_until_first_cert_expiring = first;
        gauges.ssl_days_until_first_cert_expiring = Math.floor(first / 86_400);
      }
    }
    return {
      kind: "listener",
      labels: { listener: name },
      counters,
      gauges,
      histograms: { downstream_rq_time: this.downstream_rq_time.snapshot() },
    };
  }
}

/** What a host's stats read of the live host at snapshot time. */
export interface HostSource {
  /** Requests in flight. */
  readonly active: number;
  /** False while the host fails its health checks (absent: healthy). */
  readonly healthy?: boolean;
  /** True while outlier detection ejects the host (absent: not ejected). */
  readonly ejected?: boolean;
}

/** A cluster's stats (Envoy's `cluster.<name>.*`). */
export class ClusterStats {
  /** Requests sent upstream (every attempt). */
  upstream_rq_total = 0;
  /** Upstream answers 1xx. */
  upstream_rq_1xx = 0;
  /** Upstream answers 2xx. */
  upstream_rq_2xx = 0;
  /** Upstream answers 3xx. */
  upstream_rq_3xx = 0;
  /** Upstream answers 4xx. */
  upstream_rq_4xx = 0;
  /** Upstream answers 5xx (also 502/504 the proxy answers for a failed upstream). */
  upstream_rq_5xx = 0;
  /** Requests that ran past the route timeout. */
  upstream_rq_timeout = 0;
  /** Retries sent. */
  upstream_rq_retry = 0;
  /** Requests refused by the circuit breakers (503, flag UO). */
  upstream_rq_pending_overflow = 0;
  /** Requests that failed after connecting: reset or bad response (flag UR). */
  upstream_rq_rx_reset = 0;
  /** Upstream connections opened. */
  upstream_cx_total = 0;
  /** Upstream connections open now (a gauge). */
  upstream_cx_active = 0;
  /** Connects that failed (refused, unreachable, timed out). */
  upstream_cx_connect_fail = 0;
  /** Upstream connections closed. */
  upstream_cx_destroy = 0;
  /** Upstream answers by status code. */
  readonly codes: number[] = codeCounts();
  /** Time from sending the request to the response head, in milliseconds. */
  readonly upstream_rq_time: Histogram = new Histogram();
  /** TLS handshakes to the cluster's hosts. */
  ssl_handshake = 0;
  /** Failed TLS handshakes to the cluster's hosts. */
  ssl_connection_error = 0;
  /** The cluster's hosts, for the gauges read at snapshot time. */
  readonly hosts: HostStats[] = [];
  /**
   * More counters of the cluster kept elsewhere as plain numbers (health checks, outlier
   * detection, breakers), served with these under their own names.
   */
  extra: { readonly [name: string]: number } | undefined;

  /** Counts an upstream answer (or the proxy's 5xx for a failed attempt). */
  answered(status: number): void {
    const cls = (status / 100) | 0;
    if (cls === 2) this.upstream_rq_2xx++;
    else if (cls === 5) this.upstream_rq_5xx++;
    else if (cls === 4) this.upstream_rq_4xx++;
    else if (cls === 3) this.upstream_rq_3xx++;
    else if (cls === 1) this.upstream_rq_1xx++;
    if (status < CODES) this.codes[status]++;
  }

  /** This scope's values. */
  snapshot(name: string): ScopeSnapshot {
    const counters: Record<string, number> = {
      upstream_rq_total: this.upstream_rq_total,
      upstream_rq_1xx: this.upstream_rq_1xx,
      upstream_rq_2xx: this.upstream_rq_2xx,
      upstream_rq_3xx: this.upstream_rq_3xx,
      upstream_rq_4xx: this.upstream_rq_4xx,
      upstream_rq_5xx: this.upstream_rq_5xx,
      upstream_rq_timeout: this.upstream_rq_timeout,
      upstream_rq_retry: this.upstream_rq_retry,
      upstream_rq_pending_overflow: this.upstream_rq_pending_overflow,
      upstream_rq_rx_reset: this.upstream_rq_rx_reset,
      upstream_cx_total: this.upstream_cx_total,
      upstream_cx_connect_fail: this.upstream_cx_connect_fail,
      upstream_cx_destroy: this.upstream_cx_destroy,
    };
    addCodes(counters, "upstream_rq_", this.codes);
    if (this.extra !== undefined) Object.assign(counters, this.extra);
    if (this.ssl_handshake > 0 || this.ssl_connection_error > 0) {
      counters.ssl_handshake = this.ssl_handshake;
      counters.ssl_connection_error = this.ssl_connection_error;
    }
    let active = 0;
    let healthy = 0;
    for (const host of this.hosts) {
      active += host.source?.active ?? 0;
      if (host.isHealthy()) healthy++;
    }
    return {
      kind: "cluster",
      labels: { cluster: name },
      counters,
      gauges: {
        upstream_cx_active: this.upstream_cx_active,
        upstream_rq_active: active,
        membership_total: this.hosts.length,
        membership_healthy: healthy,
      },
      histograms: { upstream_rq_time: this.upstream_rq_time.snapshot() },
    };
  }
}

/** A host's stats (Envoy's per-host stats of `/clusters`). */
export class HostStats {
  /** Requests sent to the host. */
  rq_total = 0;
  /** Requests answered without a 5xx. */
  rq_success = 0;
  /** Requests that failed: 5xx, connect failure, reset, timeout. */
  rq_error = 0;
  /** Requests that ran past the route timeout. */
  rq_timeout = 0;
  /** Connections opened. */
  cx_total = 0;
  /** Connections open now (a gauge). */
  cx_active = 0;
  /** Connects that failed. */
  cx_connect_fail = 0;
  /** The live host (the latest config's) whose in-flight count and health are read. */
  source: HostSource | undefined;

  /**
   * Makes a host's stats.
   *
   * @param cluster The stats of the cluster the host belongs to.
   */
  constructor(readonly cluster: ClusterStats) {}

  /** A connection to the host opened. */
  connected(): void {
    this.cx_total++;
    this.cx_active++;
    this.cluster.upstream_cx_total++;
    this.cluster.upstream_cx_active++;
  }

  /** A connection to the host closed. */
  disconnected(): void {
    this.cx_active--;
    this.cluster.upstream_cx_active--;
    this.cluster.upstream_cx_destroy++;
  }

  /** A connect to the host failed. */
  connectFailed(): void {
    this.cx_connect_fail++;
    this.cluster.upstream_cx_connect_fail++;
  }

  /** True unless the host fails its health checks or is ejected. */
  isHealthy(): boolean {
    const s = this.source;
    return s === undefined || (s.healthy !== false && s.ejected !== true);
  }

  /** This scope's values. */
  snapshot(cluster: string, address: string): ScopeSnapshot {
    const s = this.source;
    return {
      kind: "host",
      labels: { cluster, host: address },
      counters: {
        rq_total: this.rq_total,
        rq_success: this.rq_success,
        rq_error: this.rq_error,
        rq_timeout: this.rq_timeout,
        cx_total: this.cx_total,
        cx_connect_fail: this.cx_connect_fail,
      },
      gauges: {
        rq_active: s?.active ?? 0,
        cx_active: this.cx_active,
        healthy: this.isHealthy() ? 1 : 0,
        ejected: s?.ejected === true ? 1 : 0,
      },
      histograms: {},
    };
  }
}

/** A stream filter's stats, by listener and filter name. */
export class FilterStats {
  /** Calls of the filter's `onReceive` and `append`. */
  calls = 0;
  /** Calls that returned `stop`. */
  stops = 0;
  /** Calls during which the filter set a local response (`respond()`). */
  responds = 0;
  /** Calls that threw, rejected or returned a status not allowed in the phase. */
  errors = 0;
  /** Time spent in the filter's calls, in microseconds (until an async call settles). */
  time_us = 0;

  /** This scope's values. */
  snapshot(listener: string, filter: string): ScopeSnapshot {
    return {
      kind: "filter",
      labels: { listener, filter },
      counters: {
        calls: this.calls,
        stops: this.stops,
        responds: this.responds,
        errors: this.errors,
        time_us: Math.round(this.time_us),
      },
      gauges: {},
      histograms: {},
    };
  }
}

/** A plugin's stats (out-of-process plugins). */
export class PluginStats {
  /** Calls made. */
  calls = 0;
  /** Calls that failed (error, timeout, plugin down). */
  errors = 0;
  /** Calls that ran past their deadline (counted in `errors` too). */
  timeouts = 0;
  /** Times the plugin's process was started again after it died. */
  restarts = 0;
  /** Call latency in milliseconds (every call, failed ones included). */
  readonly latency: Histogram = new Histogram();
  /**
   * Reads restarts kept elsewhere (the plugin instance's own count), added to
   * `restarts` at snapshot time.
   */
  restartsSource: (() => number) | undefined;

  /** Counts one call that ended after `ms` milliseconds. */
  called(ms: number, failed: boolean, timedOut: boolean): void {
    this.calls++;
    if (failed) {
      this.errors++;
      if (timedOut) this.timeouts++;
    }
    this.latency.record(ms);
  }

  /** This scope's values. */
  snapshot(name: string): ScopeSnapshot {
    return {
      kind: "plugin",
      labels: { plugin: name },
      counters: {
        calls: this.calls,
        errors: this.errors,
        timeouts: this.timeouts,
        restarts: this.restarts + (this.restartsSource?.() ?? 0),
      },
      gauges: {},
      histograms: { latency: this.latency.snapshot() },
    };
  }
}

/**
 * A certificate a TLS listener serves: its expiry, read at snapshot time as seconds left
 * (Envoy's `ssl.certificate.<name>.expiration_unix_time_seconds` and a countdown).
 */
export class CertificateStats {
  /** `notAfter` in milliseconds since the epoch; NaN when it could not be read. */
  notAfterMs = NaN;
  /** The certificate's subject, for humans (`CN=…`). */
  subject = "";
  /** The certificate's serial number (hex), for humans. */
  serial = "";

  /** Seconds until `notAfter` (negative once expired); NaN when unknown. */
  secondsLeft(now = Date.now()): number {
    return Math.floor((this.notAfterMs - now) / 1000);
  }

  /** This scope's values. */
  snapshot(listener: string, certificate: string): ScopeSnapshot {
    return {
      kind: "certificate",
      labels: { listener, certificate },
      counters: {},
      gauges: {
        seconds_until_expiry: this.secondsLeft(),
        expiration_unix_time_seconds: Math.floor(this.notAfterMs / 1000),
      },
      histograms: {},
    };
  }
}

/** A metric a filter defined through `FactoryContext.metrics`. */
export interface CustomMetric {
  readonly type: "counter" | "gauge" | "histogram";
  value: number;
  readonly histogram?: Histogram;
}

/** Every stats object of this thread, by name. */
export class StatsRegistry {
  readonly #listeners = new Map<string, ListenerStats>();
  readonly #clusters = new Map<string, ClusterStats>();
  readonly #hosts = new Map<string, { cluster: string; address: string; stats: HostStats }>();
  readonly #filters = new Map<string, { listener: string; name: string; stats: FilterStats }>();
  readonly #plugins = new Map<string, PluginStats>();
  readonly #certificates = new Map<string, Map<string, CertificateStats>>();
  readonly #custom = new Map<
    string,
    { listener: string; filter: string; metrics: Map<string, CustomMetric> }
  >();
  /** Counters of the process itself (`server.*`). */
  readonly server: Record<string, number> = {};

  /** The stats of listener `name`, made on first use. */
  listener(name: string): ListenerStats {
    let s = this.#listeners.get(name);
    if (s === undefined) this.#listeners.set(name, s = new ListenerStats());
    return s;
  }

  /** The stats of cluster `name`, made on first use. */
  cluster(name: string): ClusterStats {
    let s = this.#clusters.get(name);
    if (s === undefined) this.#clusters.set(name, s = new ClusterStats());
    return s;
  }

  /**
   * The stats of a cluster's host, made on first use; `source` (the live host) replaces
   * the previous one, so gauges read the host of the config in force.
   */
  host(cluster: string, address: string, source?: HostSource): HostStats {
    const key = `${cluster}\n${address}`;
    let entry = this.#hosts.get(key);
    if (entry === undefined) {
      const clusterStats = this.cluster(cluster);
      entry = { cluster, address, stats: new HostStats(clusterStats) };
      clusterStats.hosts.push(entry.stats);
      this.#hosts.set(key, entry);
    }
    if (source !== undefined) entry.stats.source = source;
    return entry.stats;
  }

  /** The stats of filter `name` on `listener`, made on first use. */
  filter(listener: string, name: string): FilterStats {
    const key = `${listener}\n${name}`;
    let entry = this.#filters.get(key);
    if (entry === undefined) {
      this.#filters.set(key, entry = { listener, name, stats: new FilterStats() });
    }
    return entry.stats;
  }

  /** The stats of plugin `name`, made on first use. */
  plugin(name: string): PluginStats {
    let s = this.#plugins.get(name);
    if (s === undefined) this.#plugins.set(name, s = new PluginStats());
    return s;
  }

  /**
   * Sets the certificates listener `name` serves (at start, reload and rotation): the
   * previous ones stop being served. Each is `{ name, notAfterMs, subject, serial }`.
   */
  certificates(
    listener: string,
    certificates: readonly {
      name: string;
      notAfterMs: number;
      subject?: string;
      serial?: string;
    }[],
  ): void {
    const map = new Map<string, CertificateStats>();
    for (const c of certificates) {
      const stats = new CertificateStats();
      stats.notAfterMs = c.notAfterMs;
      stats.subject = c.subject ?? "";
      stats.serial = c.serial ?? "";
      map.set(c.name, stats);
    }
    this.#certificates.set(listener, map);
    this.listener(listener).certificates = map;
  }

  /**
   * A metric defined by a filter; the same listener, filter and name give the same metric
   * (so a reload keeps its value).
   *
   * @throws {TypeError} when the name is taken by a metric of another type.
   */
  custom(
    listener: string,
    filter: string,
    name: string,
    type: CustomMetric["type"],
    bounds?: readonly number[],
  ): CustomMetric {
    const key = `${listener}\n${filter}`;
    let scope = this.#custom.get(key);
    if (scope === undefined) {
      this.#custom.set(key, scope = { listener, filter, metrics: new Map() });
    }
    let metric = scope.metrics.get(name);
    if (metric === undefined) {
      metric = type === "histogram"
        ? { type, value: 0, histogram: new Histogram(bounds) }
        : { type, value: 0 };
      scope.metrics.set(name, metric);
    } else if (metric.type !== type) {
      throw new TypeError(
        `Metric "${name}" of filter "${filter}" is a ${metric.type}, not a ${type}`,
      );
    }
    return metric;
  }

  /**
   * The scopes only this thread has, whatever the workers: the plugins (every call of
   * every worker runs in the main thread's plugin manager). The admin API adds them to
   * the workers' sum once.
   */
  mainThreadSnapshot(): StatsSnapshot {
    const scopes: ScopeSnapshot[] = [];
    for (const [name, s] of this.#plugins) scopes.push(s.snapshot(name));
    return { scopes };
  }

  /** Every value of this thread, as plain data (it crosses threads). */
  snapshot(): StatsSnapshot {
    const scopes: ScopeSnapshot[] = [];
    for (const [name, s] of this.#listeners) scopes.push(s.snapshot(name));
    for (const [name, s] of this.#clusters) scopes.push(s.snapshot(name));
    for (const { cluster, address, stats } of this.#hosts.values()) {
      scopes.push(stats.snapshot(cluster, address));
    }
    for (const { listener, name, stats } of this.#filters.values()) {
      scopes.push(stats.snapshot(listener, name));
    }
    for (const [name, s] of this.#plugins) scopes.push(s.snapshot(name));
    for (const [listener, certificates] of this.#certificates) {
      for (const [name, c] of certificates) scopes.push(c.snapshot(listener, name));
    }
    for (const { listener, filter, metrics } of this.#custom.values()) {
      const scope: ScopeSnapshot = {
        kind: "custom",
        labels: { listener, filter },
        counters: {},
        gauges: {},
        histograms: {},
      };
      for (const [name, m] of metrics) {
        if (m.type === "counter") scope.counters[name] = m.value;
        else if (m.type === "gauge") scope.gauges[name] = m.value;
        else scope.histograms[name] = m.histogram!.snapshot();
      }
      scopes.push(scope);
    }
    scopes.push({
      kind: "server",
      labels: {},
      counters: { ...threadCounters.snapshot(), ...this.server },
      gauges: {},
      histograms: {},
    });
    return { scopes };
  }
}

/** The stats of this thread (each worker has its own module instance). */
export const threadStats: StatsRegistry = new StatsRegistry();
