/**
 * The load benchmark's results: a Markdown table for the terminal (and the README), the
 * ratios of Mosaic to nginx and to http-proxy, the goals, and the JSON record.
 *
 * @module
 */

import type { WrkResult } from "./wrk.ts";

/** One target's outcome: a measurement or the reason there is none. */
export interface TargetResult {
  /** The target's short name (`nginx`, `mosaic-demo`, …). */
  target: string;
  /** What the target is. */
  description: string;
  /** The measurement, when the target ran. */
  result?: WrkResult;
  /** Why the target was not measured. */
  error?: string;
  /** req/s of every round, in order, when there was more than one. */
  rounds?: number[];
}

/**
 * The round to report of one target's rounds: a failure if any round failed, else the
 * round with the median req/s (the lower middle one for an even count).
 */
export function medianRound(outcomes: TargetResult[]): TargetResult {
  if (outcomes.length === 0) throw new RangeError("A target needs at least one round");
  if (outcomes.length === 1) return outcomes[0];
  const failed = outcomes.findIndex((o) => o.result === undefined);
  const rounds = outcomes.map((o) => o.result?.requestsPerSec ?? 0);
  if (failed !== -1) {
    const first = outcomes[failed];
    return { ...first, error: `round ${failed + 1} of ${outcomes.length}: ${first.error}`, rounds };
  }
  const sorted = [...outcomes].sort((a, b) => a.result!.requestsPerSec - b.result!.requestsPerSec);
  return { ...sorted[Math.floor((sorted.length - 1) / 2)], rounds };
}

/** Mosaic's req/s divided by another target's. */
export interface Ratios {
  /** Mosaic target name. */
  target: string;
  /** Versus nginx as a proxy; undefined when either was not measured. */
  toNginx: number | undefined;
  /** Versus node http-proxy. */
  toHttpProxy: number | undefined;
  /** Versus the floor (`bench/floor/proxy.ts`): the share of Deno's own limit Mosaic reaches. */
  toFloor: number | undefined;
}

/** One of the goals for Mosaic with `demo`. */
export interface Goal {
  /** What is asked. */
  goal: string;
  /** What was measured, formatted. */
  measured: string;
  /** Whether the goal was met; undefined when it could not be judged. */
  met: boolean | undefined;
}

const MOSAIC_TARGETS = ["mosaic", "mosaic-demo", "mosaic-2w"];

function rps(results: TargetResult[], target: string): number | undefined {
  const found = results.find((r) => r.target === target)?.result;
  return found === undefined || found.requestsPerSec === 0 ? undefined : found.requestsPerSec;
}

/** Mosaic's ratios to nginx and to http-proxy, for each Mosaic target measured. */
export function mosaicRatios(results: TargetResult[]): Ratios[] {
  const nginx = rps(results, "nginx");
  const httpProxy = rps(results, "http-proxy");
  const floor = rps(results, "floor");
  return MOSAIC_TARGETS.flatMap((target) => {
    const mosaic = rps(results, target);
    if (mosaic === undefined) return [];
    // Two workers are compared with two nginx workers when that target ran.
    const nginxPeer = target === "mosaic-2w" ? rps(results, "nginx-2w") ?? nginx : nginx;
    return [{
      target,
      toNginx: nginxPeer === undefined ? undefined : mosaic / nginxPeer,
      toHttpProxy: httpProxy === undefined ? undefined : mosaic / httpProxy,
      toFloor: floor === undefined ? undefined : mosaic / floor,
    }];
  });
}

/** The speed issue's targets for Mosaic with `demo`: 0.9 × floor, 0.5 × nginx, p99 ≤ 4 ms. */
export function goals(results: TargetResult[]): Goal[] {
  const demo = results.find((r) => r.target === "mosaic-demo")?.result;
  const ratios = mosaicRatios(results).find((r) => r.target === "mosaic-demo");
  const judge = (
    value: number | undefined,
    ok: (v: number) => boolean,
    format: string,
  ) => ({
    measured: value === undefined ? "not measured" : format,
    met: value === undefined ? undefined : ok(value),
  });
  return [
    {
      goal: "req/s ≥ 0.9 × floor",
      ...judge(ratios?.toFloor, (v) => v >= 0.9, `${ratio(ratios?.toFloor)} × floor`),
    },
    {
      goal: "req/s ≥ 0.5 × nginx",
      ...judge(
        ratios?.toNginx,
        (v) => v >= 0.5,
        `${ratio(ratios?.toNginx)} × nginx`,
      ),
    },
    {
      goal: "p99 ≤ 4 ms",
      ...judge(demo?.p99Ms, (v) => v <= 4, `${ms(demo?.p99Ms)}`),
    },
  ];
}

function ratio(value: number | undefined): string {
  return value === undefined ? "–" : value.toFixed(2);
}

function ms(value: number | undefined): string {
  if (value === undefined) return "–";
  return value < 1 ? `${(value * 1000).toFixed(0)} µs` : `${value.toFixed(2)} ms`;
}

function count(value: number): string {
  return Math.round(value).toLocaleString("en-US");
}

function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) =>
    `| ${
      cells.map((
        c,
        i,
      ) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join(" | ")
    } |`;
  const rule = `| ${
    widths.map((w, i) => (i === 0 ? "-".repeat(w) : "-".repeat(w - 1) + ":"))
      .join(" | ")
  } |`;
  return [line(header), rule, ...rows.map(line)].join("\n");
}

/** The results as Markdown: the table, then the goals, then any failures. */
export function formatReport(results: TargetResult[]): string {
  const ratios = new Map(mosaicRatios(results).map((r) => [r.target, r]));
  const rows = results.map((r) => {
    const m = r.result;
    const q = ratios.get(r.target);
    const errors = m === undefined ? "failed" : String(m.socketErrors + m.non2xx);
    return [
      r.target,
      m === undefined ? "–" : count(m.requestsPerSec),
      ms(m?.p50Ms),
      ms(m?.p99Ms),
      errors,
      q === undefined ? "" : ratio(q.toFloor),
      q === undefined ? "" : ratio(q.toNginx),
      q === undefined ? "" : ratio(q.toHttpProxy),
    ];
  });
  const parts = [
    table([
      "target",
      "req/s",
      "p50",
      "p99",
      "errors",
      "÷ floor",
      "÷ nginx",
      "÷ http-proxy",
    ], rows),
    "",
    "Goals for mosaic-demo (the benchmark's figures, not a CI gate):",
    ...goals(results).map((g) =>
      `- ${g.goal}: ${g.measured} (${
        g.met === undefined ? "not judged" : g.met ? "met" : "missed"
      })`
    ),
  ];
  const failed = results.filter((r) => r.error !== undefined);
  if (failed.length > 0) {
    parts.push("", "Failed targets:");
    for (const r of failed) parts.push(`- ${r.target}: ${r.error}`);
  }
  const bad = results.filter((r) => r.result && r.result.socketErrors + r.result.non2xx > 0);
  for (const r of bad) {
    parts.push(
      `warning: ${r.target} had ${r.result!.socketErrors} socket errors and ` +
        `${r.result!.non2xx} non-2xx responses`,
    );
  }
  return parts.join("\n");
}
