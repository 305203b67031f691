/**
 * Zod schemas of a cluster's health and resilience keys: MOSN's `health_check`, Envoy's
 * `outlier_detection`, and `healthy_panic_threshold`.
 *
 * @module
 */

import { z } from "zod";
import { durationMs, intIn } from "./schema_values.ts";
import { describeValue } from "./values.ts";

/**
 * One range of expected statuses, MOSN's `CodeRange` (`{ start, end }`; Go's JSON reads
 * `Start`/`End` too); a bare status is shorthand for `{ start: n, end: n }`.
 */
const codeRange = z.unknown().transform((value, ctx) => {
  const status = (v: unknown) =>
    Number.isInteger(v) && (v as number) >= 100 && (v as number) <= 599;
  if (status(value)) return { start: value as number, end: value as number };
  if (typeof value === "object" && value !== null && !Array.isArray(value)) {
    const range = value as Record<string, unknown>;
    const start = range.start ?? range.Start;
    const end = range.end ?? range.End ?? start;
    if (status(start) && status(end) && (end as number) >= (start as number)) {
      return { start: start as number, end: end as number };
    }
    ctx.issues.push({
      code: "custom",
      input: value,
      message: `expected { start, end } with statuses from 100 to 599 and start <= end, got ${
        describeValue(value)
      }`,
    });
    return z.NEVER;
  }
  ctx.issues.push({
    code: "custom",
    input: value,
    message: `expected a status or { start, end } (e.g. { start: 200, end: 299 }), got ${
      describeValue(value)
    }`,
  });
  return z.NEVER;
});

/** MOSN's `http_check_config` (pkg/upstream/healthcheck/httpdial.go). */
const httpCheckConfig = z.object({
  path: z.string().regex(/^\//, {
    error: (issue) => `expected a path starting with "/", got ${describeValue(issue.input)}`,
  }).default("/"),
  method: z.string().regex(/^[A-Z]+$/, {
    error: (issue) => `expected an HTTP method such as "GET", got ${describeValue(issue.input)}`,
  }).default("GET"),
  scheme: z.literal("http", {
    error: (issue) => `only "http" health checks are supported, got ${describeValue(issue.input)}`,
  }).default("http"),
  domain: z.string().min(1).optional(),
  port: intIn(1, 65535).optional(),
  timeout: durationMs.optional(),
  codes: z.array(codeRange).default([]),
});

/**
 * MOSN's `health_check` (`HealthCheckConfig` in MOSN's config/v2). The protocol names the
 * check: `http` (MOSN's `Http1`) or `tcp`.
 */
export const healthCheck = z.object({
  protocol: z.string().transform((value, ctx) => {
    const name = value.toLowerCase();
    if (name === "http" || name === "http1") return "http" as const;
    if (name === "tcp") return "tcp" as const;
    ctx.issues.push({
      code: "custom",
      input: value,
      message: `expected health check protocol "http" (or MOSN's "Http1") or "tcp", got ${
        describeValue(value)
      }`,
    });
    return z.NEVER;
  }),
  timeout: durationMs.optional(),
  interval: durationMs.optional(),
  interval_jitter: durationMs.optional(),
  healthy_threshold: intIn(0).optional(),
  unhealthy_threshold: intIn(0).optional(),
  service_name: z.string().optional(),
  check_config: z.object({ http_check_config: httpCheckConfig.optional() }).optional(),
});

const percent = intIn(0, 100);

/** Envoy's `outlier_detection` (consecutive 5xx and gateway failures). */
export const outlierDetection = z.object({
  consecutive_5xx: intIn(1).optional(),
  consecutive_gateway_failure: intIn(1).optional(),
  enforcing_consecutive_5xx: percent.optional(),
  enforcing_consecutive_gateway_failure: percent.optional(),
  interval: durationMs.optional(),
  base_ejection_time: durationMs.optional(),
  max_ejection_time: durationMs.optional(),
  max_ejection_percent: percent.optional(),
});

/** Envoy's `healthy_panic_threshold`: a percentage, or `{ value }` as Envoy writes it. */
export const panicThreshold = z.union([
  z.number().min(0).max(100),
  z.object({ value: z.number().min(0).max(100) }).transform((v) => v.value),
], {
  error: (issue) => `expected a percentage from 0 to 100, got ${describeValue(issue.input)}`,
});

/** A parsed `health_check`. */
export type RawHealthCheck = z.output<typeof healthCheck>;
/** A parsed `outlier_detection`. */
export type RawOutlierDetection = z.output<typeof outlierDetection>;
