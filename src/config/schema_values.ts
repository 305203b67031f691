/**
 * Zod schemas for the config's small values (durations, addresses, counts, header
 * lists) and for MOSN's `tls_context`, shared by the listener, route and cluster schemas.
 *
 * Every schema here produces a message in the form `expected …, got …`, because that is
 * what the user sees after the file, line and field path.
 *
 * @module
 */

import { z } from "zod";
import {
  describeValue,
  durationProblem,
  formatHostPort,
  hostPortProblem,
  parseDuration,
  parseHostPort,
} from "./values.ts";

/** A Go duration string (`"2s"`, `"500ms"`, `"1m30s"`), parsed into milliseconds. */
export const durationMs = z.unknown().transform((value, ctx) => {
  const ms = parseDuration(value);
  if (ms !== undefined) return ms;
  ctx.issues.push({ code: "custom", input: value, message: durationProblem(value) });
  return z.NEVER;
});

/** A parsed `host:port` with the text it came from. */
export interface ParsedAddress {
  /** The address as written. */
  address: string;
  /** Host without brackets. */
  hostname: string;
  /** Port number. */
  port: number;
}

/**
 * A `host:port` string (`[::1]:80` for IPv6).
 *
 * @param allowPortZero Whether port 0 (let the OS choose) is allowed: for binds, not for
 * upstream hosts.
 * @returns The schema.
 */
export function hostPort(allowPortZero: boolean): z.ZodType<ParsedAddress, unknown> {
  return z.unknown().transform((value, ctx) => {
    const parsed = typeof value === "string" ? parseHostPort(value) : undefined;
    if (parsed === undefined || (!allowPortZero && parsed.port === 0)) {
      const hint = parsed === undefined ? "" : " with a port from 1 to 65535";
      const why = parsed === undefined && typeof value === "string"
        ? hostPortProblem(value)
        : undefined;
      ctx.issues.push({
        code: "custom",
        input: value,
        message: `expected host:port${hint}, got ${describeValue(value)}` +
          (why === undefined ? "" : `: ${why}`),
      });
      return z.NEVER;
    }
    return { address: value as string, ...parsed };
  });
}

/** MOSN's admin `socket_address`: `{ address, port_value }`. */
export const socketAddress = z.object({
  address: z.string().min(1),
  port_value: z.unknown(),
}).transform((value, ctx): ParsedAddress | never => {
  const port = value.port_value;
  if (!Number.isInteger(port) || (port as number) < 0 || (port as number) > 65535) {
    ctx.issues.push({
      code: "custom",
      input: port,
      path: ["port_value"],
      message: `expected a port from 0 to 65535, got ${describeValue(port)}`,
    });
    return z.NEVER;
  }
  const address = formatHostPort(value.address, port as number);
  const parsed = parseHostPort(address);
  if (parsed === undefined) {
    ctx.issues.push({
      code: "custom",
      input: value.address,
      path: ["address"],
      message: `expected a host name or IP address, got ${describeValue(value.address)}`,
    });
    return z.NEVER;
  }
  return { address, ...parsed };
});

/**
 * An integer in a range, with a message that names the range.
 *
 * @param min Smallest allowed value.
 * @param max Largest allowed value; unbounded by default.
 * @returns The schema.
 */
export function intIn(min: number, max = Number.MAX_SAFE_INTEGER): z.ZodType<number, unknown> {
  const expected = max === Number.MAX_SAFE_INTEGER
    ? `an integer of at least ${min}`
    : `an integer from ${min} to ${max}`;
  return z.custom<number>(
    (value) => Number.isInteger(value) && (value as number) >= min && (value as number) <= max,
    { error: (issue) => `expected ${expected}, got ${describeValue(issue.input)}` },
  );
}

/** A string, or a number or boolean taken as its text (YAML reads `value: 1` as a number). */
export const scalarString = z.union([z.string(), z.number(), z.boolean()], {
  error: (issue) => `expected a string, got ${describeValue(issue.input)}`,
}).transform(String);

/** A string that must compile as a regular expression. */
export const regexString = z.string().check((ctx) => {
  try {
    new RegExp(ctx.value);
  } catch (cause) {
    ctx.issues.push({
      code: "custom",
      input: ctx.value,
      message: `expected a valid regular expression, got ${describeValue(ctx.value)}: ` +
        (cause as Error).message,
    });
  }
});

/** MOSN's `HeaderValueOption`: `{ header: { key, value }, append }`. */
export const headerValueOption = z.object({
  header: z.object({ key: z.string().min(1), value: scalarString }),
  append: z.boolean().default(false),
});

/** A list of headers to add; empty by default. */
export const headersToAdd = z.array(headerValueOption).optional();

/** A list of header names to remove; empty by default. */
export const headersToRemove = z.array(z.string().min(1)).optional();

/** `per_filter_config`: filter name → that filter's own config. */
export const perFilterConfig = z.record(z.string(), z.unknown()).default({});

/** ALPN protocols: a list, or MOSN's comma-separated string. */
export const alpnList = z.union([z.array(z.string().min(1)), z.string()], {
  error: (issue) =>
    `expected a list of protocols or a comma-separated string, got ` +
    describeValue(issue.input),
}).transform((value) =>
  typeof value === "string" ? value.split(",").map((s) => s.trim()).filter((s) => s !== "") : value
);

/** MOSN's `tls_context`, with MOSN's keys. */
export const tlsContext = z.object({
  status: z.boolean().default(false),
  type: z.string().min(1).default("file"),
  cert_chain: z.string().optional(),
  private_key: z.string().optional(),
  ca_cert: z.string().optional(),
  server_name: z.string().optional(),
  min_version: z.string().optional(),
  max_version: z.string().optional(),
  alpn: alpnList.default([]),
  extend_verify: z.unknown().optional(),
  insecure_skip: z.boolean().default(false),
  require_client_cert: z.boolean().default(false),
  verify_client: z.boolean().default(false),
  serve_mode: z.enum(["auto", "bridge", "direct"]).optional(),
});

/** The parsed (not yet normalized) `tls_context`. */
export type RawTlsContext = z.output<typeof tlsContext>;
