/**
 * Active health checking of one cluster, in MOSN's shape: every host is checked each
 * round; `unhealthy_threshold` failures in a row take a host out of the load balancer,
 * `healthy_threshold` passes in a row bring it back. Hosts start healthy (MOSN's
 * default).
 *
 * One cluster has one timer: it starts a round that checks every host at once under one
 * shared timeout, and when the round is over the next one is scheduled `interval` (plus
 * up to `interval_jitter`) later. Timers are unref'd: health checks never keep the
 * process alive.
 *
 * @module
 */

import type { HealthCheckConfig } from "../../config/types.ts";
import type { Host, ResilienceStats } from "../cluster.ts";
import { HostProbe, type ProbeResult } from "./probe.ts";
import { logger } from "../../log/logger.ts";

const log = logger("upstream", "health_check");

/** Runs a cluster's active health checks until {@linkcode HealthChecker.stop}. */
export class HealthChecker {
  readonly #config: HealthCheckConfig;
  readonly #hosts: readonly Host[];
  readonly #probes: HostProbe[];
  readonly #stats: ResilienceStats;
  readonly #onChange: () => void;
  readonly #random: () => number;
  /** Passes in a row of each host while it is marked unhealthy. */
  readonly #passes: Uint32Array;
  /** Failures in a row of each host while it is healthy. */
  readonly #failures: Uint32Array;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #round: AbortController | undefined;
  #stopped = false;
  /** Resolves when the round under way (or the next) has been applied; for tests. */
  #roundWaiters: (() => void)[] = [];

  /**
   * Makes the checker of a cluster; it checks nothing until {@linkcode start}.
   *
   * @param config The cluster's `health_check`.
   * @param hosts The cluster's hosts.
   * @param stats The cluster's counters, which the checker adds to.
   * @param onChange Called after a round that changed some host's health.
   * @param random The jitter's source of numbers in [0, 1).
   */
  constructor(
    config: HealthCheckConfig,
    hosts: readonly Host[],
    stats: ResilienceStats,
    onChange: () => void,
    random: () => number = Math.random,
  ) {
    this.#config = config;
    this.#hosts = hosts;
    this.#probes = hosts.map((host) => new HostProbe(host, config));
    this.#stats = stats;
    this.#onChange = onChange;
    this.#random = random;
    this.#passes = new Uint32Array(hosts.length);
    this.#failures = new Uint32Array(hosts.length);
  }

  /** Starts checking: the first round starts at once. */
  start(): void {
    if (this.#stopped || this.#timer !== undefined || this.#round !== undefined) return;
    this.#schedule(0);
  }

  /** Stops checking: the pending timer is cleared and a round under way is aborted. */
  stop(): void {
    this.#stopped = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#round?.abort();
    for (const wake of this.#roundWaiters.splice(0)) wake();
  }

  /**
   * Resolves after the next round of checks has been applied (or the checker stopped).
   * For tests and tools that must not wait on time.
   */
  nextRound(): Promise<void> {
    if (this.#stopped) return Promise.resolve();
    return new Promise((resolve) => this.#roundWaiters.push(resolve));
  }

  #schedule(delayMs: number): void {
    if (this.#stopped) return;
    const timer = setTimeout(() => {
      this.#timer = undefined;
      this.#runRound();
    }, delayMs);
    Deno.unrefTimer(timer);
    this.#timer = timer;
  }

  async #runRound(): Promise<void> {
    const controller = new AbortController();
    this.#round = controller;
    const deadline = setTimeout(() => controller.abort(), this.#config.timeoutMs);
    Deno.unrefTimer(deadline);
    const results = await Promise.all(this.#probes.map((probe) => probe.run(controller.signal)));
    clearTimeout(deadline);
    this.#round = undefined;
    if (this.#stopped) return;
    let changed = false;
    for (let i = 0; i < results.length; i++) {
      if (this.#apply(i, results[i])) changed = true;
    }
    if (changed) this.#onChange();
    for (const wake of this.#roundWaiters.splice(0)) wake();
    const jitter = this.#config.intervalJitterMs;
    this.#schedule(this.#config.intervalMs + (jitter > 0 ? this.#random() * jitter : 0));
  }

  /** MOSN's HandleSuccess / HandleFailure; true when the host's health changed. */
  #apply(i: number, result: ProbeResult): boolean {
    const host = this.#hosts[i];
    const stats = this.#stats;
    stats.health_check_attempt++;
    if (result === "healthy") {
      stats.health_check_success++;
      this.#failures[i] = 0;
      if (!host.failedActiveHealthCheck) return false;
      if (++this.#passes[i] < this.#config.healthyThreshold) return false;
      this.#passes[i] = 0;
      host.failedActiveHealthCheck = false;
      log.info(`host ${host.address} of cluster "${host.cluster}" passed its health checks`);
      return true;
    }
    stats.health_check_failure++;
    if (result === "network") stats.health_check_network_failure++;
    this.#passes[i] = 0;
    if (host.failedActiveHealthCheck) return false;
    if (++this.#failures[i] < this.#config.unhealthyThreshold) return false;
    this.#failures[i] = 0;
    host.failedActiveHealthCheck = true;
    log.warn(
      `host ${host.address} of cluster "${host.cluster}" failed its health checks ` +
        `(${result === "network" ? "no answer" : "unexpected status"})`,
    );
    return true;
  }
}
