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
  /**
   * Requests in flight to this host. The proxy increments it when it sends a request and
   * decrements it when the exchange ends; `LB_LEAST_REQUEST` reads it.
   */
  active = 0;

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
   */
  constructor(config: HostConfig, cluster: ClusterConfig, makePool: MakePool) {
    this.address = config.address;
    this.hostname = config.hostname;
    this.port = config.port;
    this.weight = config.weight;
    this.cluster = cluster.name;
    this.#config = config;
    this.#clusterConfig = cluster;
    this.#makePool = makePool;
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

/** A cluster: its hosts and its load balancer. */
export class Cluster {
  /** The cluster's name. */
  readonly name: string;
  /** The cluster's config. */
  readonly config: ClusterConfig;
  /** The hosts, in config order; the same frozen array for the cluster's lifetime. */
  readonly hosts: readonly Host[];
  #balancer: LoadBalancer;

  /**
   * Makes a cluster and its hosts; no pool is made yet.
   *
   * @param config The cluster.
   * @param makePool Makes a host's pool on the host's first use.
   * @param options The load balancer's random source.
   */
  constructor(config: ClusterConfig, makePool: MakePool, options: ClusterOptions = {}) {
    this.name = config.name;
    this.config = config;
    this.hosts = Object.freeze(config.hosts.map((host) => new Host(host, config, makePool)));
    this.#balancer = createLoadBalancer(config.lbType, options.random);
  }

  /**
   * Picks a host with the cluster's load balancer.
   *
   * @param exclude A host to avoid when another exists (a retry, a `rechoose_host`).
   * @returns The host; undefined when the cluster has no hosts.
   */
  choose(exclude?: Host): Host | undefined {
    return this.#balancer.choose(this.hosts, exclude);
  }

  /** Closes the pools of every host. */
  close(): void {
    for (const host of this.hosts) host.close();
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
