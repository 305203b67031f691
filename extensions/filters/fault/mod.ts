/**
 * `fault`: injects delays and aborts by percentage, as MOSN's fault injection filter.
 *
 * ```yaml
 * - type: fault
 *   config:
 *     fixed_delay: 200ms     # Go duration or milliseconds
 *     delay_percent: 50      # 0..100
 *     abort_percent: 10      # 0..100
 *     abort_status: 503
 * ```
 *
 * Status: stable. For tests and chaos drills; not a security control.
 *
 * @module
 */

import type { CreateStreamFilterFactory, RequestStream } from "../../../mod.ts";

interface FaultConfig {
  delayMs: number;
  delayPercent: number;
  abortPercent: number;
  abortStatus: number;
}

/** Creates the fault filter's factory. */
export const createStreamFilterFactory: CreateStreamFilterFactory = (config) => {
  const parsed = parseFaultConfig(config);
  const filter = {
    onReceive(stream: RequestStream) {
      const fault = stream.config === config ? parsed : parseFaultConfig(stream.config);
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

function parseFaultConfig(config: unknown): FaultConfig {
  const c = (config ?? {}) as Record<string, unknown>;
  if (typeof c !== "object" || Array.isArray(c)) throw new TypeError("fault: config must be a map");
  const known = ["fixed_delay", "delay_percent", "abort_percent", "abort_status"];
  for (const key of Object.keys(c)) {
    if (!known.includes(key)) {
      throw new TypeError(`fault: unknown key "${key}"; expected one of ${known.join(", ")}`);
    }
  }
  return {
    delayMs: durationMs(c.fixed_delay ?? 0, "fixed_delay"),
    delayPercent: percent(c.delay_percent ?? (c.fixed_delay ? 100 : 0), "delay_percent"),
    abortPercent: percent(c.abort_percent ?? 0, "abort_percent"),
    abortStatus: status(c.abort_status ?? 503),
  };
}

function percent(value: unknown, key: string): number {
  if (typeof value !== "number" || value < 0 || value > 100) {
    throw new TypeError(
      `fault: ${key} must be a number from 0 to 100, got ${JSON.stringify(value)}`,
    );
  }
  return value;
}

function status(value: unknown): number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < 200 || value > 599) {
    throw new TypeError(`fault: abort_status must be an HTTP status from 200 to 599, got ${value}`);
  }
  return value;
}

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

function durationMs(value: unknown, key: string): number {
  if (typeof value === "number" && value >= 0) return value;
  if (typeof value === "string") {
    const match = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/.exec(value);
    if (match) return Number(match[1]) * UNIT_MS[match[2]];
  }
  throw new TypeError(`fault: ${key} must be a duration such as "200ms" or "1s", got ${value}`);
}
