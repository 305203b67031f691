/**
 * One active health check of one host: a TCP connect, or an HTTP/1.1 request whose
 * status must fall in the expected ranges (MOSN's `http_check_config`).
 *
 * @module
 */

import type { HealthCheckConfig } from "../../config/types.ts";

/**
 * What a probe found: `healthy`; `unhealthy` (the host answered, with a status outside
 * the expected ones); `network` (no answer: connect refused or failed, reset, malformed
 * head, or the timeout).
 */
export type ProbeResult = "healthy" | "unhealthy" | "network";

/** The largest response head a probe reads before calling the host unhealthy. */
const MAX_HEAD_BYTES = 8192;
const CRLF = new Uint8Array([0x0d, 0x0a]);
const encoder = new TextEncoder();

/** A probe of one host, with the request it sends made once. */
export class HostProbe {
  readonly #hostname: string;
  readonly #port: number;
  readonly #request: Uint8Array | undefined;
  readonly #codes: readonly { start: number; end: number }[];

  /**
   * Prepares the probe of a host.
   *
   * @param host Where the host is: `hostname`, `port` and `address` (`host:port`).
   * @param check The cluster's health check.
   */
  constructor(
    host: { hostname: string; port: number; address: string },
    check: HealthCheckConfig,
  ) {
    const http = check.http;
    this.#hostname = host.hostname;
    this.#port = http?.port ?? host.port;
    this.#codes = http?.codes ?? [];
    if (http !== undefined) {
      const authority = http.domain ??
        (http.port === undefined
          ? host.address
          : `${host.hostname.includes(":") ? `[${host.hostname}]` : host.hostname}:${http.port}`);
      this.#request = encoder.encode(
        `${http.method} ${http.path} HTTP/1.1\r\nHost: ${authority}\r\n` +
          `User-Agent: Mosaic-Health-Check\r\nAccept: */*\r\nConnection: close\r\n` +
          (check.serviceName === ""
            ? ""
            : `x-envoy-upstream-service-name: ${check.serviceName}\r\n`) +
          `\r\n`,
      );
    }
  }

  /**
   * Checks the host once.
   *
   * @param signal Aborts the check (its timeout, or the checker stopping).
   * @returns What the check found; it never throws.
   */
  async run(signal: AbortSignal): Promise<ProbeResult> {
    let conn: Deno.TcpConn;
    try {
      conn = await Deno.connect({ hostname: this.#hostname, port: this.#port, signal });
    } catch {
      return "network";
    }
    const request = this.#request;
    if (request === undefined || signal.aborted) {
      closeQuietly(conn);
      return signal.aborted ? "network" : "healthy";
    }
    const onAbort = () => closeQuietly(conn);
    signal.addEventListener("abort", onAbort, { once: true });
    try {
      await writeAll(conn, request);
      const status = await readStatus(conn);
      if (status === undefined) return "network";
      for (const range of this.#codes) {
        if (status >= range.start && status <= range.end) return "healthy";
      }
      return "unhealthy";
    } catch {
      return "network";
    } finally {
      signal.removeEventListener("abort", onAbort);
      closeQuietly(conn);
    }
  }
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  for (let written = 0; written < bytes.length;) {
    written += await conn.write(bytes.subarray(written));
  }
}

/** Reads up to the end of the status line; the status, or undefined when malformed. */
async function readStatus(conn: Deno.Conn): Promise<number | undefined> {
  const buffer = new Uint8Array(MAX_HEAD_BYTES);
  let length = 0;
  while (length < buffer.length) {
    const n = await conn.read(buffer.subarray(length));
    if (n === null) return undefined;
    const from = Math.max(0, length - 1);
    length += n;
    const end = indexOf(buffer.subarray(0, length), CRLF, from);
    if (end < 0) continue;
    // "HTTP/1.1 200 OK": the status is the three digits after the first space.
    const line = new TextDecoder().decode(buffer.subarray(0, end));
    const match = /^HTTP\/1\.[01] (\d{3})(?: |$)/.exec(line);
    return match === null ? undefined : Number(match[1]);
  }
  return undefined;
}

function indexOf(haystack: Uint8Array, needle: Uint8Array, from: number): number {
  outer: for (let i = from; i <= haystack.length - needle.length; i++) {
    for (let j = 0; j < needle.length; j++) {
      if (haystack[i + j] !== needle[j]) continue outer;
    }
    return i;
  }
  return -1;
}

function closeQuietly(conn: Deno.Conn): void {
  try {
    conn.close();
  } catch {
    // already closed
  }
}
