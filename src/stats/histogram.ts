/**
 * A fixed-bucket histogram, as Envoy's: recording is a scan over a short array of
 * bounds and two additions, no allocation; percentiles are read from the bucket counts.
 *
 * @module
 */

/**
 * Envoy's default histogram bounds (milliseconds for times): 0.5 ms to one hour.
 */
export const DEFAULT_BUCKETS: readonly number[] = Object.freeze([
  0.5,
  1,
  5,
  10,
  25,
  50,
  100,
  250,
  500,
  1000,
  2500,
  5000,
  10000,
  30000,
  60000,
  300000,
  600000,
  1800000,
  3600000,
]);

/** A histogram's values as they cross threads and reach the admin API. */
export interface HistogramSnapshot {
  /** Upper bounds of the buckets, ascending; a last bucket holds everything above. */
  bounds: number[];
  /** Observations per bucket (not cumulative); one more entry than `bounds`. */
  counts: number[];
  /** The sum of every observation. */
  sum: number;
  /** How many observations. */
  count: number;
}

/** A histogram of one thread. */
export class Histogram {
  /** Upper bounds, ascending. */
  readonly bounds: readonly number[];
  /** Observations per bucket; the last is above every bound. */
  readonly counts: number[];
  /** The sum of every observation. */
  sum = 0;
  /** How many observations. */
  count = 0;

  /**
   * Makes an empty histogram.
   *
   * @param bounds Upper bounds of the buckets, ascending.
   * @default bounds DEFAULT_BUCKETS
   */
  constructor(bounds: readonly number[] = DEFAULT_BUCKETS) {
    this.bounds = bounds;
    this.counts = new Array(bounds.length + 1).fill(0);
  }

  /**
   * Records one observation.
   *
   * @param value The value, e.g. a duration in milliseconds.
   */
  record(value: number): void {
    const bounds = this.bounds;
    let i = 0;
    while (i < bounds.length && value > bounds[i]) i++;
    this.counts[i]++;
    this.sum += value;
    this.count++;
  }

  /** The current values, as plain data. */
  snapshot(): HistogramSnapshot {
    return {
      bounds: [...this.bounds],
      counts: [...this.counts],
      sum: this.sum,
      count: this.count,
    };
  }
}

/**
 * Estimates a quantile from bucket counts, interpolating inside the bucket it falls in
 * (as Prometheus' `histogram_quantile`).
 *
 * @param h The histogram (or the difference of two snapshots).
 * @param q The quantile, from 0 to 1.
 * @returns The estimate; NaN when there are no observations.
 *
 * @example
 * ```ts
 * import { quantile } from "./histogram.ts";
 *
 * quantile({ bounds: [1, 10], counts: [0, 4, 0], sum: 20, count: 4 }, 0.5); // 5.5
 * ```
 */
export function quantile(h: HistogramSnapshot, q: number): number {
  if (h.count <= 0) return NaN;
  const rank = q * h.count;
  let seen = 0;
  for (let i = 0; i < h.counts.length; i++) {
    const n = h.counts[i];
    if (n > 0 && seen + n >= rank) {
      const lower = i === 0 ? 0 : h.bounds[i - 1];
      // Above the last bound there is no upper edge: answer the last bound.
      if (i >= h.bounds.length) return lower;
      const upper = h.bounds[i];
      return lower + (upper - lower) * Math.max(0, rank - seen) / n;
    }
    seen += n;
  }
  return h.bounds[h.bounds.length - 1];
}

/**
 * Adds `b` into `a` bucket by bucket (the same bounds); used to sum workers.
 *
 * @param a The sum so far; changed in place.
 * @param b A histogram with the same bounds.
 */
export function addHistogram(a: HistogramSnapshot, b: HistogramSnapshot): void {
  for (let i = 0; i < a.counts.length && i < b.counts.length; i++) a.counts[i] += b.counts[i];
  a.sum += b.sum;
  a.count += b.count;
}
