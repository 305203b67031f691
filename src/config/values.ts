/**
 * Parsers for the small value types of the config: durations and `host:port`
 * addresses, plus how messages describe a value that is wrong.
 *
 * @module
 */

const UNIT_MS: Record<string, number> = {
  ns: 1e-6,
  us: 1e-3,
  "µs": 1e-3,
  "μs": 1e-3,
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
};
// Go's time.ParseDuration: digits with an optional fraction ("1.5", "1.", ".5"), a unit.
const DURATION_PART = /(\d+\.?\d*|\.\d+)(ns|us|µs|μs|ms|s|m|h)/y;

/**
 * Parses a duration the way MOSN's configs write them: a Go duration string (`"1s"`,
 * `"500ms"`, `"1m30s"`, `"1.5h"`, `"0"`), as Go's `time.ParseDuration` reads it. A bare
 * number is not a duration: it has no unit, and reading it as milliseconds (or Go's
 * nanoseconds) silently would cut responses off. Negative durations are refused.
 *
 * This is the one duration parser of Mosaic; extensions reach it through `mod.ts`.
 *
 * @param value A value from the config.
 * @returns Milliseconds (fractions kept), or undefined when `value` is not a
 * non-negative Go duration string.
 *
 * @example
 * ```ts
 * import { parseDuration } from "./values.ts";
 *
 * parseDuration("1m30s"); // 90000
 * parseDuration("1.s"); // 1000, as in Go
 * parseDuration(250); // undefined: a number has no unit
 * parseDuration("10"); // undefined: Go needs a unit
 * parseDuration("-5s"); // undefined: negative
 * ```
 */
export function parseDuration(value: unknown): number | undefined {
  if (typeof value !== "string") return undefined;
  let text = value;
  if (text.startsWith("+")) text = text.slice(1);
  if (text === "0") return 0;
  if (text === "") return undefined;
  let total = 0;
  DURATION_PART.lastIndex = 0;
  while (DURATION_PART.lastIndex < text.length) {
    const match = DURATION_PART.exec(text);
    if (match === null) return undefined;
    total += Number(match[1]) * UNIT_MS[match[2]];
  }
  return Number.isFinite(total) ? total : undefined;
}

/**
 * The message for a value that is not a duration.
 *
 * @param value The value from the config.
 * @returns E.g. `expected a duration such as "2s" or "500ms", got 2`.
 */
export function durationProblem(value: unknown): string {
  const negative = typeof value === "string" && /^-/.test(value) ? " (negative)" : "";
  const bare =
    typeof value === "number" || (typeof value === "string" && /^\d+(\.\d*)?$/.test(value))
      ? " (a number needs a unit: ns, us, ms, s, m or h)"
      : "";
  return `expected a duration such as "2s" or "500ms", got ${
    describeValue(value)
  }${negative}${bare}`;
}

/** A parsed `host:port`. */
export interface HostPort {
  /** The host without brackets: a name, an IPv4 or an IPv6 address. */
  hostname: string;
  /** The port, 0 to 65535. */
  port: number;
}

const HOST_NAME = /^[A-Za-z0-9_]([A-Za-z0-9_.-]*[A-Za-z0-9_.])?$/;
const IPV6 = /^[0-9A-Fa-f:.]+(%[A-Za-z0-9_.-]+)?$/;

/**
 * Parses `host:port`, `[ipv6]:port` or `ipv4:port`.
 *
 * @param text The address from the config.
 * @returns The parts, or undefined when `text` is not such an address.
 *
 * @example
 * ```ts
 * import { parseHostPort } from "./values.ts";
 *
 * parseHostPort("[::1]:80"); // { hostname: "::1", port: 80 }
 * parseHostPort("2046x"); // undefined
 * ```
 */
export function parseHostPort(text: string): HostPort | undefined {
  let hostname: string;
  let portText: string;
  if (text.startsWith("[")) {
    const close = text.indexOf("]");
    if (close < 0 || text[close + 1] !== ":") return undefined;
    hostname = text.slice(1, close);
    portText = text.slice(close + 2);
    if (!hostname.includes(":") || !IPV6.test(hostname)) return undefined;
  } else {
    const colon = text.lastIndexOf(":");
    if (colon < 0) return undefined;
    hostname = text.slice(0, colon);
    portText = text.slice(colon + 1);
    // A bare IPv6 address with a port is ambiguous ("::1:80"): brackets are required.
    if (!HOST_NAME.test(hostname)) return undefined;
    // All digits and dots: an IPv4 address, whose four parts are 0 to 255.
    if (/^[\d.]+$/.test(hostname) && !isIpv4(hostname)) return undefined;
  }
  if (!/^\d{1,5}$/.test(portText)) return undefined;
  const port = Number(portText);
  if (port > 65535) return undefined;
  return { hostname, port };
}

function isIpv4(text: string): boolean {
  const parts = text.split(".");
  return parts.length === 4 && parts.every((p) => /^\d{1,3}$/.test(p) && Number(p) <= 255);
}

/**
 * Why `text` is not a `host:port`, when a reason can be told.
 *
 * @param text The address from the config.
 * @returns E.g. `"127.0.0.300" is not an IPv4 address (each part is 0 to 255)`.
 */
export function hostPortProblem(text: string): string | undefined {
  const colon = text.lastIndexOf(":");
  if (colon < 0) return undefined;
  const host = text.slice(0, colon);
  const port = text.slice(colon + 1);
  if (/^\d+$/.test(port) && Number(port) > 65535) return `port ${port} is above 65535`;
  if (/^[\d.]+$/.test(host) && !isIpv4(host)) {
    return `${JSON.stringify(host)} is not an IPv4 address (four parts, each 0 to 255)`;
  }
  return undefined;
}

/**
 * Formats a host and port back into `host:port`, bracketing IPv6 addresses.
 *
 * @param hostname The host.
 * @param port The port.
 * @returns `host:port` or `[v6]:port`.
 */
export function formatHostPort(hostname: string, port: number): string {
  return hostname.includes(":") ? `[${hostname}]:${port}` : `${hostname}:${port}`;
}

/**
 * Describes a config value for a message's "got …" part.
 *
 * @param value Any value from the parsed file.
 * @returns E.g. `"2046x"`, `12`, `a list`, `a mapping`, `nothing`.
 */
export function describeValue(value: unknown): string {
  if (value === undefined) return "nothing";
  if (value === null) return "null";
  if (Array.isArray(value)) return "a list";
  if (typeof value === "object") return "a mapping";
  if (typeof value === "string") {
    const shown = value.length > 60 ? `${value.slice(0, 57)}...` : value;
    return JSON.stringify(shown);
  }
  return String(value);
}
