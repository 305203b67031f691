/**
 * Load balancers: pick one host of a cluster per request. Each pick is O(hosts) at
 * worst and allocates nothing.
 *
 * @module
 */

import type { ClusterConfig } from "../config/types.ts";
import type { Host } from "./cluster.ts";

/**
 * Picks a host for a request. One balancer serves one cluster; the round robins keep
 * their position between picks, tied to the host array they are given, so pass the same
 * array every time (a cluster's `hosts`).
 */
export interface LoadBalancer {
  /**
   * Picks a host.
   *
   * @param hosts The cluster's hosts.
   * @param exclude A host to avoid (the one that just failed, for a retry or a
   * `rechoose_host`); it is still picked when it is the only host.
   * @returns The host; undefined when `hosts` is empty.
   */
  choose(hosts: readonly Host[], exclude?: Host): Host | undefined;
}

/**
 * Makes the load balancer of an `lb_type`.
 *
 * - `LB_ROUNDROBIN`: each host in turn.
 * - `LB_RANDOM`: uniformly at random.
 * - `LB_WEIGHTED_ROUNDROBIN`: nginx's smooth weighted round robin: deterministic, and a
 *   heavy host's turns are spread out (5:1:1 gives `a a b a c a a`) rather than bunched.
 * - `LB_LEAST_REQUEST`: the power of two choices: of two random hosts, the one with fewer
 *   requests in flight (`host.active`); with two hosts or fewer, the least busy one.
 *   Weights are ignored.
 *
 * @param type The cluster's `lb_type`.
 * @param random A source of numbers in [0, 1); `Math.random` by default. Tests pass a
 * seeded one.
 * @returns A new balancer, with its own state.
 *
 * @example
 * ```ts ignore
 * const lb = createLoadBalancer("LB_ROUNDROBIN");
 * const host = lb.choose(cluster.hosts);
 * ```
 */
export function createLoadBalancer(
  type: ClusterConfig["lbType"],
  random: () => number = Math.random,
): LoadBalancer {
  switch (type) {
    case "LB_ROUNDROBIN":
      return new RoundRobin();
    case "LB_RANDOM":
      return new RandomBalancer(random);
    case "LB_WEIGHTED_ROUNDROBIN":
      return new SmoothWeightedRoundRobin();
    case "LB_LEAST_REQUEST":
      return new LeastRequest(random);
  }
}

class RoundRobin implements LoadBalancer {
  #next = 0;

  choose(hosts: readonly Host[], exclude?: Host): Host | undefined {
    const count = hosts.length;
    if (count === 0) return undefined;
    let host = hosts[this.#advance(count)];
    if (host === exclude && count > 1) host = hosts[this.#advance(count)];
    return host;
  }

  #advance(count: number): number {
    const index = this.#next % count;
    // Kept small so that it never loses integer precision, however long the process runs.
    this.#next = index + 1;
    return index;
  }
}

class RandomBalancer implements LoadBalancer {
  #random: () => number;

  constructor(random: () => number) {
    this.#random = random;
  }

  choose(hosts: readonly Host[], exclude?: Host): Host | undefined {
    const skip = skippedIndex(hosts, exclude);
    const count = skip < 0 ? hosts.length : hosts.length - 1;
    if (count === 0) return hosts[0];
    return hosts[withSkip(randomIndex(this.#random, count), skip)];
  }
}

/**
 * nginx's smooth weighted round robin (ngx_http_upstream_get_peer): every pick raises each
 * host's current weight by its weight, takes the highest, and lowers that one by the
 * total. Over one cycle each host is picked exactly `weight` times.
 */
class SmoothWeightedRoundRobin implements LoadBalancer {
  #hosts: readonly Host[] | undefined;
  #current = new Float64Array(0);

  choose(hosts: readonly Host[], exclude?: Host): Host | undefined {
    const count = hosts.length;
    if (count === 0) return undefined;
    if (hosts !== this.#hosts || this.#current.length !== count) {
      // A new host list starts a new cycle: positions of the old one mean nothing now.
      this.#hosts = hosts;
      this.#current = new Float64Array(count);
    }
    const skip = count > 1 ? exclude : undefined;
    return this.#pick(hosts, skip, false) ?? this.#pick(hosts, skip, true);
  }

  /**
   * One step of the algorithm. Hosts with weight 0 or less are out of rotation, unless
   * no other host is left (`equal`), then all candidates count as weight 1.
   */
  #pick(hosts: readonly Host[], skip: Host | undefined, equal: boolean): Host | undefined {
    const current = this.#current;
    let total = 0;
    let best = -1;
    for (let i = 0; i < hosts.length; i++) {
      const host = hosts[i];
      if (host === skip) continue;
      const weight = equal ? 1 : host.weight;
      if (!(weight > 0)) continue;
      current[i] += weight;
      total += weight;
      if (best < 0 || current[i] > current[best]) best = i;
    }
    if (best < 0) return undefined;
    current[best] -= total;
    return hosts[best];
  }
}

class LeastRequest implements LoadBalancer {
  #random: () => number;

  constructor(random: () => number) {
    this.#random = random;
  }

  choose(hosts: readonly Host[], exclude?: Host): Host | undefined {
    const skip = skippedIndex(hosts, exclude);
    const count = skip < 0 ? hosts.length : hosts.length - 1;
    if (count === 0) return hosts[0];
    if (count === 1) return hosts[withSkip(0, skip)];
    let first: number;
    let second: number;
    if (count === 2) {
      first = withSkip(0, skip);
      second = withSkip(1, skip);
    } else {
      const a = randomIndex(this.#random, count);
      let b = randomIndex(this.#random, count - 1);
      if (b >= a) b++;
      first = withSkip(a, skip);
      second = withSkip(b, skip);
    }
    const difference = hosts[first].active - hosts[second].active;
    if (difference < 0) return hosts[first];
    if (difference > 0) return hosts[second];
    return this.#random() < 0.5 ? hosts[first] : hosts[second];
  }
}

/** The index of `exclude` in `hosts` when another host exists to pick instead, else -1. */
function skippedIndex(hosts: readonly Host[], exclude: Host | undefined): number {
  return exclude === undefined || hosts.length < 2 ? -1 : hosts.indexOf(exclude);
}

/** Maps an index among the candidates to an index in `hosts`, stepping over `skip`. */
function withSkip(index: number, skip: number): number {
  return skip >= 0 && index >= skip ? index + 1 : index;
}

function randomIndex(random: () => number, count: number): number {
  // Clamped so that a source returning exactly 1 cannot index past the end.
  return Math.min(count - 1, Math.floor(random() * count));
}
