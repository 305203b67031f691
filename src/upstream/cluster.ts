/**
 * Clusters and their hosts, built once per config load. A host's connection pool is
 * made on the host's first use, so clusters that no route reaches open nothing.
 *
 * @module
 */

import type { HostInfo } from "../filter/api.ts";
import type { ClusterConfig, HostConfig } from "../config/types.ts";
import type { ConnectionPool } from "./types.ts";
import { createLoadBalancer, type LoadBalancer } from "./load_balancer.ts";
import { type ClusterStats, type HostStats, threadStats } from "../stats/scopes.ts";
import { HealthChecker } from "./health/checker.ts";
import { OutlierDetector } from "./outlier.ts";

/** Makes the connection pool of one host. */
export type MakePool = (host: HostConfig, cluster: ClusterConfig) => ConnectionPool;

/** Options of a {@linkcode Cluster} and a {@linkcode ClusterManager}. */
export interface ClusterOptions {
  /**
   * The load balancers' source of numbers in [0, 1); tests pass a seeded one.
   *
   * @default {Math.random}
   */
  random?: () => number;
}

/** An upstream host of a cluster. */
export class Host implements HostInfo {
  /** `host:port` of the upstream. */
  readonly address: string;
  /** The host name or IP to connect to. */
  readonly hostname: string;
  /** The port to connect to. */
  readonly port: number;
  /** The host's load-balancing weight. */
  readonly weight: number;
  /** The name of the cluster the host belongs to. */
  readonly cluster: string;
  /** The host's stats (they outlive reloads that keep the host). */
  readonly stats: HostStats;
  /** The host's place in its cluster's `hosts`. */
  readonly index: number;
  /**
   * True while active health checks find the host failing (MOSN's `FAILED_ACTIVE_HC`):
   * it is out of the load balancer.
   */
  failedActiveHealthCheck = false;
  /** True while outlier detection has the host ejected: it is out of the load balancer. */
  ejected = false;
  /** Times outlier detection ejected this host (a counter, of this config generation). */
  ejections = 0;

  #active = 0;
  #load: { active: number };
  #config: HostConfig;
  #clusterConfig: ClusterConfig;
  #makePool: MakePool;
  #pool: ConnectionPool | undefined;
  #closed = false;

  /**
   * Makes a host; its pool is not made yet.
   *
   * @param config The host.
   * @param cluster The cluster it belongs to.
   * @param makePool Makes the host's pool on first use.
   * @param index The host's place in the cluster's hosts.
   * @param load The cluster's count of requests in flight, kept with the host's own.
   */
  constructor(
    config: HostConfig,
    cluster: ClusterConfig,
    makePool: MakePool,
    index = 0,
    load: { active: number } = { active: 0 },
  ) {
    this.index = index;
    this.#load = load;
    this.address = config.address;
    this.hostname = config.hostname;
    this.port = config.port;
    this.weight = config.weight;
    this.cluster = cluster.name;
    this.stats = threadStats.host(cluster.name, config.address, this);
    this.#config = config;
    this.#clusterConfig = cluster;
    this.#makePool = makePool;
  }

  /**
   * Requests in flight to this host. The proxy increments it when it sends a request and
   * decrements it when the exchange ends; `LB_LEAST_REQUEST` reads it, and the cluster's
   * `max_requests` breaker reads the cluster's sum of it.
   */
  get active(): number {
    return this.#active;
  }

  set active(value: number) {
    this.#load.active += value - this.#active;
    this.#active = value;
  }

  /** False while the host fails its active health checks or is ejected. */
  get healthy(): boolean {
    return !this.failedActiveHealthCheck && !this.ejected;
  }

  /**
   * The host's connection pool, made on first access. After {@linkcode Host.close} a
   * fresh pool is made closed, so a straggling request fails the way the pool contract
   * says instead of opening connections that nobody will close.
   */
  get pool(): ConnectionPool {
    if (this.#pool === undefined) {
      this.#pool = this.#makePool(this.#config, this.#clusterConfig);
      if (this.#closed) this.#pool.close();
    }
    return this.#pool;
  }

  /** Closes the host's pool, if it was made. Idempotent. */
  close(): void {
    this.#closed = true;
    this.#pool?.close();
  }
}

/**
 * A cluster's health and resilience counters: plain numbers, only ever incremented,
 * named as Envoy names them (`cluster.<name>.<counter>`, dots as underscores). They
 * outlive reloads that keep the cluster, as {@linkcode ClusterStats} does. The pending
 * overflow of `max_pending_requests` is `ClusterStats.upstream_rq_pending_overflow`.
 */
export interface ResilienceStats {
  /** Requests refused by the `max_requests` breaker (503 `UO`). */
  upstream_rq_overflow: number;
  /** Retries not made because of the `max_retries` breaker (`UO`). */
  upstream_rq_retry_overflow: number;
  /** Host picks made over all hosts because too few were healthy (panic mode). */
  lb_healthy_panic: number;
  /** Active health checks made. */
  health_check_attempt: number;
  /** Active health checks passed. */
  health_check_success: number;
  /** Active health checks failed (network failures included). */
  health_check_failure: number;
  /** Active health checks failed without an answer (connect, reset, timeout). */
  health_check_network_failure: number;
  /** Ejections by outlier detection. */
  outlier_detection_ejections_enforced_total: number;
  /** Ejections by `consecutive_5xx`. */
  outlier_detection_ejections_enforced_consecutive_5xx: number;
  /** Ejections by `consecutive_gateway_failure`. */
  outlier_detection_ejections_enforced_consecutive_gateway_failure: number;
  /** Times `consecutive_5xx` was reached, ejected or not. */
  outlier_detection_ejections_detected_consecutive_5xx: number;
  /** Times `consecutive_gateway_failure` was reached, ejected or not. */
  outlier_detection_ejections_detected_consecutive_gateway_failure: number;
  /** Ejections not made because `max_ejection_percent` was reached. */
  outlier_detection_ejections_overflow: number;
}

/** Each cluster's resilience counters by name, so that they outlive reloads. */
const RESILIENCE = new Map<string, ResilienceStats>();

function resilienceStats(cluster: string): ResilienceStats {
  let stats = RESILIENCE.get(cluster);
  if (stats === undefined) {
    stats = {
      upstream_rq_overflow: 0,
      upstream_rq_retry_overflow: 0,
      lb_healthy_panic: 0,
      health_check_attempt: 0,
      health_check_success: 0,
      health_check_failure: 0,
      health_check_network_failure: 0,
      outlier_detection_ejections_enforced_total: 0,
      outlier_detection_ejections_enforced_consecutive_5xx: 0,
      outlier_detection_ejections_enforced_consecutive_gateway_failure: 0,
      outlier_detection_ejections_detected_consecutive_5xx: 0,
      outlier_detection_ejections_detected_consecutive_gateway_failure: 0,
      outlier_detection_ejections_overflow: 0,
    };
    RESILIENCE.set(cluster, stats);
  }
  return stats;
}

/**
 * A cluster: its hosts, its load balancer, what keeps unhealthy hosts out of the
 * balancer (active health checks, outlier detection, the panic threshold), and the
 * cluster-wide breakers (`max_requests`, `max_retries`).
 */
export class Cluster {
  /** The cluster's name. */
  readonly name: string;
  /** The cluster's config. */
  readonly config: ClusterConfig;
  /** The hosts, in config order; the same frozen array for the cluster's lifetime. */
  readonly hosts: readonly Host[];
  /** The cluster's stats (they outlive reloads that keep the cluster). */
  readonly stats: ClusterStats;
  /** Health check, outlier and breaker counters (they outlive reloads too). */
  readonly resilience: ResilienceStats;
  /** The `max_requests` breaker: requests in flight to the whole cluster at most. */
  readonly maxRequests: number;
  /** The `max_retries` breaker: retries in flight in the whole cluster at most. */
  readonly maxRetries: number;
  /** Retries in flight now; the proxy counts them. */
  activeRetries = 0;
  /** The health checker, when the cluster has `health_check`. */
  readonly healthChecker: HealthChecker | undefined;
  /** The outlier detector, when the cluster has `outlier_detection`. */
  readonly outlierDetector: OutlierDetector | undefined;
  #balancer: LoadBalancer;
  #load = { active: 0 };
  /** The hosts the balancer picks from: all of them, or the healthy ones. */
  #available: readonly Host[];
  #panic = false;
  #healthy: number;
  #panicThreshold: number;

  /**
   * Makes a cluster and its hosts; no pool is made yet. With `health_check`, the first
   * round of checks starts at once.
   *
   * @param config The cluster.
   * @param makePool Makes a host's pool on the host's first use.
   * @param options The load balancer's random source.
   */
  constructor(config: ClusterConfig, makePool: MakePool, options: ClusterOptions = {}) {
    this.name = config.name;
    this.config = config;
    this.stats = threadStats.cluster(config.name);
    this.resilience = resilienceStats(config.name);
    // Served by the admin API with the cluster's other stats.
    this.stats.extra = this.resilience as unknown as Record<string, number>;
    const load = this.#load;
    this.hosts = Object.freeze(
      config.hosts.map((host, i) => new Host(host, config, makePool, i, load)),
    );
    this.#available = this.hosts;
    this.#healthy = this.hosts.length;
    this.#panicThreshold = config.healthyPanicThreshold ?? 50;
    this.maxRequests = config.maxRequests ?? 1024;
    this.maxRetries = config.maxRetries ?? 3;
    this.#balancer = createLoadBalancer(config.lbType, options.random);
    const refresh = () => this.#refresh();
    if (config.outlierDetection !== undefined) {
      this.outlierDetector = new OutlierDetector(
        config.outlierDetection,
        this.hosts,
        this.resilience,
        refresh,
        { random: options.random },
      );
    }
    if (config.healthCheck !== undefined) {
      this.healthChecker = new HealthChecker(
        config.healthCheck,
        this.hosts,
        this.resilience,
        refresh,
        options.random,
      );
      this.healthChecker.start();
    }
  }

  /** Requests in flight to the cluster's hosts. */
  get activeRequests(): number {
    return this.#load.active;
  }

  /** Hosts neither failing health checks nor ejected. */
  get healthyHosts(): number {
    return this.#healthy;
  }

  /** True while too few hosts are healthy and the balancer picks from all (panic mode). */
  get panic(): boolean {
    return this.#panic;
  }

  /**
   * Picks a host with the cluster's load balancer among the healthy hosts; among all of
   * them in panic mode (healthy hosts under `healthy_panic_threshold` percent).
   *
   * @param exclude A host to avoid when another exists (a retry, a `rechoose_host`).
   * @returns The host; undefined when none can be picked (no host is healthy and the
   * panic threshold is 0).
   */
  choose(exclude?: Host): Host | undefined {
    if (this.#panic) this.resilience.lb_healthy_panic++;
    return this.#balancer.choose(this.#available, exclude);
  }

  /**
   * Reports one upstream result to outlier detection; costs a field read when the
   * cluster has none. Allocates nothing.
   *
   * @param host The host the request went to.
   * @param status The response status; 503 for a connect failure or a reset, 504 for a
   * timeout.
   */
  report(host: Host, status: number): void {
    const detector = this.outlierDetector;
    if (detector !== undefined) detector.report(host, status);
  }

  /** Stops health checks and outlier sweeps, and closes the pools of every host. */
  close(): void {
    this.healthChecker?.stop();
    this.outlierDetector?.close();
    for (const host of this.hosts) host.close();
  }

  /** Recomputes the hosts the balancer picks from, after a host's health changed. */
  #refresh(): void {
    const hosts = this.hosts;
    let healthy = 0;
    for (const host of hosts) if (host.healthy) healthy++;
    this.#healthy = healthy;
    // Envoy: panic when the healthy share is below the threshold; 0 turns it off.
    this.#panic = healthy < hosts.length &&
      healthy * 100 < this.#panicThreshold * hosts.length;
    this.#available = healthy === hosts.length || this.#panic
      ? hosts
      : Object.freeze(hosts.filter((host) => host.healthy));
  }
}

/**
 * Every cluster of a config, by name.
 *
 * @example
 * ```ts ignore
 * const clusters = new ClusterManager(config.clusters, (host, cluster) => makePool(host, cluster));
 * const host = clusters.get("serverCluster")?.choose();
 * const response = await host?.pool.request(request);
 * clusters.close();
 * ```
 */
export class ClusterManager {
  #clusters = new Map<string, Cluster>();

  /**
   * Makes the clusters; no pool is made until a host is used.
   *
   * @param configs The clusters by name.
   * @param makePool Makes a host's connection pool.
   * @param options The load balancers' random source.
   */
  constructor(
    configs: ReadonlyMap<string, ClusterConfig>,
    makePool: MakePool,
    options: ClusterOptions = {},
  ) {
    for (const [name, config] of configs) {
      this.#clusters.set(name, new Cluster(config, makePool, options));
    }
  }

  /**
   * Finds a cluster.
   *
   * @param name The cluster's name.
   * @returns The cluster; undefined when there is none of that name.
   */
  get(name: string): Cluster | undefined {
    return this.#clusters.get(name);
  }

  /** Closes every pool of every cluster. Idempotent. */
  close(): void {
    for (const cluster of this.#clusters.values()) cluster.close();
  }
}
