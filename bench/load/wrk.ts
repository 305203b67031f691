/**
 * Runs wrk against one URL and reads its summary (printed by `bench/wrk_report.lua`).
 *
 * @module
 */

import type { ProcessGroup } from "./processes.ts";
import { BENCH_HEADERS } from "./servers.ts";

/** wrk's load shape: the same for every target. */
export const WRK_THREADS = 2;
/** Connections kept open by wrk. */
export const WRK_CONNECTIONS = 50;

/** One wrk measurement. */
export interface WrkResult {
  /** Requests completed. */
  requests: number;
  /** Requests per second. */
  requestsPerSec: number;
  /** Median latency, ms. */
  p50Ms: number;
  /** 90th percentile latency, ms. */
  p90Ms: number;
  /** 99th percentile latency, ms. */
  p99Ms: number;
  /** Slowest request, ms. */
  maxMs: number;
  /** Socket errors (connect, read, write) and timeouts. */
  socketErrors: number;
  /** Responses that were not 2xx/3xx. */
  non2xx: number;
}

/** wrk failed or printed no summary. */
export class WrkError extends Error {
  /** Names the error. */
  override name = "WrkError";
}

interface WrkSummary {
  requests: number;
  duration_us: number;
  p50_us: number;
  p90_us: number;
  p99_us: number;
  max_us: number;
  connect_errors: number;
  read_errors: number;
  write_errors: number;
  status_errors: number;
  timeouts: number;
}

/** Seconds in a wrk duration such as `10s`, `1m` or `30` (seconds). */
export function durationSeconds(text: string): number {
  const match = /^(\d+(?:\.\d+)?)\s*(s|m|h)?$/.exec(text.trim());
  if (match === null) {
    throw new RangeError(
      `A duration must look like 10s, 2m or 30, got "${text}"`,
    );
  }
  const factor = { s: 1, m: 60, h: 3600 }[match[2] as "s" | "m" | "h" ?? "s"];
  return Number(match[1]) * factor;
}

/** Reads the summary line of `wrk_report.lua` out of wrk's output. */
export function parseWrkOutput(output: string): WrkResult {
  const line = output.split("\n").find((l) => l.startsWith("MOSAIC_WRK "));
  if (line === undefined) {
    throw new WrkError(`wrk printed no summary:\n${output.trim()}`);
  }
  const s = JSON.parse(line.slice("MOSAIC_WRK ".length)) as WrkSummary;
  return {
    requests: s.requests,
    requestsPerSec: s.duration_us > 0 ? s.requests / (s.duration_us / 1e6) : 0,
    p50Ms: s.p50_us / 1000,
    p90Ms: s.p90_us / 1000,
    p99Ms: s.p99_us / 1000,
    maxMs: s.max_us / 1000,
    socketErrors: s.connect_errors + s.read_errors + s.write_errors +
      s.timeouts,
    non2xx: s.status_errors,
  };
}

/**
 * Loads `url` for `duration` (a wrk duration) with {@linkcode WRK_THREADS} threads and
 * `connections` connections (default {@linkcode WRK_CONNECTIONS}), every request
 * carrying `User: admin`.
 *
 * @throws {WrkError} when wrk fails, hangs, or prints no summary.
 */
export async function runWrk(
  processes: ProcessGroup,
  root: string,
  url: string,
  duration: string,
  connections = WRK_CONNECTIONS,
): Promise<WrkResult> {
  const args = [
    `-t${WRK_THREADS}`,
    `-c${connections}`,
    `-d${duration}`,
    "--latency",
    "-s",
    `${root}/bench/wrk_report.lua`,
  ];
  for (const [name, value] of Object.entries(BENCH_HEADERS)) args.push("-H", `${name}: ${value}`);
  args.push(url);
  // Started through the group so an interrupted run stops wrk too.
  const child = processes.spawn("wrk", "wrk", args);
  // wrk stops itself after `duration`; the guard only catches a wedged run.
  const guard = setTimeout(() => child.stop(), (durationSeconds(duration) + 30) * 1000);
  try {
    const status = await child.exited;
    await processes.stop(child);
    if (!status.success) {
      throw new WrkError(`wrk exited with code ${status.code} on ${url}:\n${child.tail()}`);
    }
    return parseWrkOutput(child.tail());
  } finally {
    clearTimeout(guard);
  }
}
