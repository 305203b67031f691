/**
 * Passive outlier detection, as Envoy's consecutive-failure detectors: each upstream
 * result of a host is reported; `consecutive_5xx` 5xx answers in a row, or
 * `consecutive_gateway_failure` gateway failures in a row (502, 503, 504, and the
 * proxy's own connect failures, resets and timeouts, reported as those statuses), eject
 * the host from the load balancer.
 *
 * An ejection lasts `base_ejection_time` × the number of times the host was ejected
 * (capped by `max_ejection_time`); ejected hosts come back at the sweep every
 * `interval`, and each sweep that finds a host in the balancer lowers its count by one
 * (Envoy's backoff). At most `max_ejection_percent` of the hosts are ejected at once,
 * though one host always may be.
 *
 * {@linkcode OutlierDetector.report} is on every request's path: it allocates nothing.
 * The sweep timer runs only while some host is ejected or has a count to lower, and is
 * unref'd.
 *
 * @module
 */

import type { OutlierDetectionConfig } from "../config/types.ts";
import type { Host, ResilienceStats } from "./cluster.ts";
import { logger } from "../log/logger.ts";

const log = logger("upstream", "outlier_detection");

/** Ejects failing hosts of one cluster and brings them back. */
export class OutlierDetector {
  readonly #config: OutlierDetectionConfig;
  readonly #hosts: readonly Host[];
  readonly #stats: ResilienceStats;
  readonly #onChange: () => void;
  readonly #random: () => number;
  readonly #now: () => number;
  /** Each host's 5xx answers in a row. */
  readonly #consecutive5xx: Uint32Array;
  /** Each host's gateway failures in a row. */
  readonly #consecutiveGateway: Uint32Array;
  /** Each host's ejection count, the multiplier of the ejection time. */
  readonly #multiplier: Uint32Array;
  /** When each ejected host was ejected (`now()` scale). */
  readonly #ejectedAt: Float64Array;
  #ejected = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #closed = false;

  /**
   * Makes the detector of a cluster.
   *
   * @param config The cluster's `outlier_detection`.
   * @param hosts The cluster's hosts; a host's `index` is its place here.
   * @param stats The cluster's counters, which the detector adds to.
   * @param onChange Called when a host was ejected or came back.
   * @param options `random` decides the `enforcing_*` percentages; `now` is the clock
   * (milliseconds), `performance.now` by default.
   */
  constructor(
    config: OutlierDetectionConfig,
    hosts: readonly Host[],
    stats: ResilienceStats,
    onChange: () => void,
    options: { random?: () => number; now?: () => number } = {},
  ) {
    this.#config = config;
    this.#hosts = hosts;
    this.#stats = stats;
    this.#onChange = onChange;
    this.#random = options.random ?? Math.random;
    this.#now = options.now ?? (() => performance.now());
    this.#consecutive5xx = new Uint32Array(hosts.length);
    this.#consecutiveGateway = new Uint32Array(hosts.length);
    this.#multiplier = new Uint32Array(hosts.length);
    this.#ejectedAt = new Float64Array(hosts.length);
  }

  /** Hosts ejected now (Envoy's `outlier_detection.ejections_active`). */
  get ejectionsActive(): number {
    return this.#ejected;
  }

  /**
   * Reports one upstream result of a host.
   *
   * @param host The host.
   * @param status The response status; for failures without a response, the status the
   * failure stands for (503 for a connect failure or reset, 504 for a timeout).
   */
  report(host: Host, status: number): void {
    if (host.ejected || this.#closed) return;
    const i = host.index;
    if (status < 500) {
      this.#consecutive5xx[i] = 0;
      this.#consecutiveGateway[i] = 0;
      return;
    }
    const config = this.#config;
    if (status === 502 || status === 503 || status === 504) {
      if (++this.#consecutiveGateway[i] >= config.consecutiveGatewayFailure) {
        this.#consecutiveGateway[i] = 0;
        if (this.#eject(host, "gateway")) return;
      }
    } else {
      this.#consecutiveGateway[i] = 0;
    }
    if (++this.#consecutive5xx[i] >= config.consecutive5xx) {
      this.#consecutive5xx[i] = 0;
      this.#eject(host, "5xx");
    }
  }

  /**
   * Brings back the hosts whose ejection time is over and lowers the counts of those in
   * the balancer; the timer calls it every `interval`, tests may call it directly.
   *
   * @param now The time, on the detector's clock.
   */
  sweep(now: number = this.#now()): void {
    const config = this.#config;
    let changed = false;
    let pending = false;
    for (let i = 0; i < this.#hosts.length; i++) {
      const host = this.#hosts[i];
      if (!host.ejected) {
        if (this.#multiplier[i] > 0) this.#multiplier[i]--;
        if (this.#multiplier[i] > 0) pending = true;
        continue;
      }
      const duration = Math.min(
        config.baseEjectionTimeMs * this.#multiplier[i],
        config.maxEjectionTimeMs,
      );
      if (now - this.#ejectedAt[i] >= duration) {
        host.ejected = false;
        this.#ejected--;
        log.info(`host ${host.address} of cluster "${host.cluster}" is back from ejection`);
        this.#consecutive5xx[i] = 0;
        this.#consecutiveGateway[i] = 0;
        changed = true;
      }
      pending = true;
    }
    if (changed) this.#onChange();
    if (!pending) this.#stopTimer();
  }

  /** Stops the sweep timer; later reports are ignored. */
  close(): void {
    this.#closed = true;
    this.#stopTimer();
  }

  #eject(host: Host, reason: "5xx" | "gateway"): boolean {
    const stats = this.#stats;
    const config = this.#config;
    const enforcing = reason === "5xx"
      ? config.enforcingConsecutive5xx
      : config.enforcingConsecutiveGatewayFailure;
    if (reason === "5xx") stats.outlier_detection_ejections_detected_consecutive_5xx++;
    else stats.outlier_detection_ejections_detected_consecutive_gateway_failure++;
    if (enforcing <= 0 || (enforcing < 100 && this.#random() * 100 >= enforcing)) return false;
    const total = this.#hosts.length;
    if (this.#ejected > 0 && (this.#ejected + 1) * 100 > config.maxEjectionPercent * total) {
      stats.outlier_detection_ejections_overflow++;
      return false;
    }
    const i = host.index;
    host.ejected = true;
    this.#ejected++;
    this.#multiplier[i]++;
    this.#ejectedAt[i] = this.#now();
    this.#consecutive5xx[i] = 0;
    this.#consecutiveGateway[i] = 0;
    stats.outlier_detection_ejections_enforced_total++;
    if (reason === "5xx") stats.outlier_detection_ejections_enforced_consecutive_5xx++;
    else stats.outlier_detection_ejections_enforced_consecutive_gateway_failure++;
    host.ejections++;
    log.warn(
      `host ${host.address} of cluster "${host.cluster}" ejected for ${
        Math.min(config.baseEjectionTimeMs * this.#multiplier[i], config.maxEjectionTimeMs)
      } ms (consecutive ${reason === "5xx" ? "5xx" : "gateway failures"}, ejection ${
        this.#multiplier[i]
      })`,
    );
    this.#startTimer();
    this.#onChange();
    return true;
  }

  #startTimer(): void {
    if (this.#timer !== undefined || this.#closed) return;
    const timer = setInterval(() => this.sweep(), this.#config.intervalMs);
    Deno.unrefTimer(timer);
    this.#timer = timer;
  }

  #stopTimer(): void {
    if (this.#timer === undefined) return;
    clearInterval(this.#timer);
    this.#timer = undefined;
  }
}
