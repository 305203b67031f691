/**
 * Counters of one thread. Each worker keeps its own (no atomics, nothing shared, so
 * counting costs a request nothing across threads); the admin API asks every worker for
 * a snapshot and sums them with {@linkcode sumCounters}.
 *
 * @module
 */

import type { CounterSnapshot } from "./protocol.ts";

/** Named monotonic counters of the current thread. */
export class Counters {
  readonly #values = new Map<string, number>();

  /**
   * Adds `n` to counter `name`.
   *
   * @param name The counter, e.g. `plugin_calls`.
   * @param n How much to add.
   * @default n 1
   */
  add(name: string, n = 1): void {
    this.#values.set(name, (this.#values.get(name) ?? 0) + n);
  }

  /** The current values, as a plain object (it crosses threads). */
  snapshot(): CounterSnapshot {
    return Object.fromEntries(this.#values);
  }
}

/** The counters of this thread (each worker has its own module instance). */
export const threadCounters: Counters = new Counters();

/**
 * Sums snapshots counter by counter.
 *
 * @param snapshots One snapshot per worker.
 * @returns Every counter that appears in any snapshot, summed.
 *
 * @example
 * ```ts
 * import { sumCounters } from "./counters.ts";
 *
 * sumCounters([{ reloads: 1, plugin_calls: 3 }, { reloads: 1 }]); // { reloads: 2, plugin_calls: 3 }
 * ```
 */
export function sumCounters(snapshots: Iterable<CounterSnapshot>): CounterSnapshot {
  const total: CounterSnapshot = {};
  for (const snapshot of snapshots) {
    for (const [name, value] of Object.entries(snapshot)) total[name] = (total[name] ?? 0) + value;
  }
  return total;
}
