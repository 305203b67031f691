/**
 * `fault`: injects delays and aborts by percentage, as MOSN's fault injection filter.
 *
 * ```yaml
 * - type: fault
 *   config:
 *     fixed_delay: 200ms     # a Go duration
 *     delay_percent: 50      # 0..100
 *     abort_percent: 10      # 0..100
 *     abort_status: 503
 * ```
 *
 * Status: stable. For tests and chaos drills; not a security control.
 *
 * @module
 */

import {
  checkConfigKeys,
  type CreateStreamFilterFactory,
  FilterConfigError,
  parseDuration,
  type RequestStream,
} from "../../../mod.ts";

/** The parsed config. */
export interface FaultConfig {
  readonly delayMs: number;
  readonly delayPercent: number;
  readonly abortPercent: number;
  readonly abortStatus: number;
}

const KEYS = ["fixed_delay", "delay_percent", "abort_percent", "abort_status"];
const parsed = new WeakSet<object>();

/** Parses the fault filter's config, once at load. */
export function parseFaultConfig(config: unknown): FaultConfig {
  const c = checkConfigKeys(config ?? {}, KEYS);
  let delayMs = 0;
  if (c.fixed_delay !== undefined) {
    const ms = parseDuration(c.fixed_delay);
    if (ms === undefined) {
      throw new FilterConfigError(
        ["fixed_delay"],
        `expected a duration such as "2s" or "500ms", got ${JSON.stringify(c.fixed_delay)}`,
      );
    }
    delayMs = ms;
  }
  const result: FaultConfig = Object.freeze({
    delayMs,
    delayPercent: percent(c.delay_percent ?? (delayMs > 0 ? 100 : 0), "delay_percent"),
    abortPercent: percent(c.abort_percent ?? 0, "abort_percent"),
    abortStatus: status(c.abort_status ?? 503),
  });
  parsed.add(result);
  return result;
}

function faultOf(config: unknown): FaultConfig {
  return parsed.has(config as object) ? config as FaultConfig : parseFaultConfig(config);
}

/** Creates the fault filter's factory. */
export const createStreamFilterFactory: CreateStreamFilterFactory = (config) => {
  const own = faultOf(config);
  const filter = {
    onReceive(stream: RequestStream) {
      const current = stream.config;
      const fault = current === own || current === undefined ? own : faultOf(current);
      if (fault.abortPercent > 0 && Math.random() * 100 < fault.abortPercent) {
        stream.respond(fault.abortStatus, { body: "fault filter abort\n" });
        return "stop" as const;
      }
      if (fault.delayMs > 0 && Math.random() * 100 < fault.delayPercent) {
        return new Promise<"continue">((resolve) =>
          setTimeout(() => resolve("continue"), fault.delayMs)
        );
      }
      return "continue" as const;
    },
  };
  return {
    createFilterChain(chain) {
      chain.addReceiver(filter, "before_route");
    },
  };
};
createStreamFilterFactory.parseConfig = parseFaultConfig;

function percent(value: unknown, key: string): number {
  if (typeof value !== "number" || value < 0 || value > 100) {
    throw new FilterConfigError(
      [key],
      `expected a number from 0 to 100, got ${JSON.stringify(value)}`,
    );
  }
  return value;
}

function status(value: unknown): number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < 200 || value > 599) {
    throw new FilterConfigError(
      ["abort_status"],
      `expected an HTTP status from 200 to 599, got ${JSON.stringify(value)}`,
    );
  }
  return value;
}
