/**
 * The metrics a filter defines for itself (`FactoryContext.metrics`): counters, gauges
 * and histograms, kept in this thread's stats under the filter's listener and name, and
 * served by the admin API with Mosaic's own (`mosaic_custom_<name>{listener,filter}` in
 * Prometheus, `custom.<listener>.<filter>.<name>` in `/stats`).
 *
 * A filter resolves its metrics once, in its factory, and updates them per request: an
 * update is one addition on a plain object.
 *
 * @module
 */

import type { FilterMetrics, MetricCounter, MetricGauge } from "../filter/api.ts";
import { type CustomMetric, type StatsRegistry, threadStats } from "./scopes.ts";

const NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

class Counter implements MetricCounter {
  constructor(readonly metric: CustomMetric) {}
  inc(n = 1): void {
    if (n >= 0 && n !== Infinity) this.metric.value += n;
  }
  get value(): number {
    return this.metric.value;
  }
}

class Gauge implements MetricGauge {
  constructor(readonly metric: CustomMetric) {}
  set(value: number): void {
    this.metric.value = value;
  }
  inc(n = 1): void {
    this.metric.value += n;
  }
  dec(n = 1): void {
    this.metric.value -= n;
  }
  get value(): number {
    return this.metric.value;
  }
}

/**
 * Makes the metrics of one filter.
 *
 * @param listener The listener the filter is declared on.
 * @param filter The filter's name.
 * @param registry Where the values live.
 * @default registry threadStats
 * @returns The filter's {@linkcode FilterMetrics}.
 */
export function filterMetrics(
  listener: string,
  filter: string,
  registry: StatsRegistry = threadStats,
): FilterMetrics {
  const check = (name: string) => {
    if (typeof name !== "string" || !NAME.test(name)) {
      throw new TypeError(
        `Metric name ${
          JSON.stringify(name)
        } of filter "${filter}" must be letters, digits and _, not starting with a digit`,
      );
    }
  };
  return {
    counter(name) {
      check(name);
      return new Counter(registry.custom(listener, filter, name, "counter"));
    },
    gauge(name) {
      check(name);
      return new Gauge(registry.custom(listener, filter, name, "gauge"));
    },
    histogram(name, options = {}) {
      check(name);
      const bounds = options.buckets;
      if (
        bounds !== undefined &&
        (!Array.isArray(bounds) || bounds.length === 0 ||
          bounds.some((b, i) => typeof b !== "number" || (i > 0 && b <= bounds[i - 1])))
      ) {
        throw new TypeError(`Histogram "${name}" of filter "${filter}": buckets must ascend`);
      }
      const histogram = registry.custom(listener, filter, name, "histogram", bounds).histogram!;
      return { record: (value: number) => histogram.record(value) };
    },
  };
}
