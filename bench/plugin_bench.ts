/**
 * The plugin filter's added latency (run it with `bash bench/plugin_bench.sh`, which
 * installs wrk and nginx and builds the plugin first).
 *
 * Starts the load benchmark's nginx upstream, then measures, in rounds, Mosaic (the real
 * `main.ts` process) in front of it:
 *
 * - `mosaic`: no stream filter, the baseline;
 * - `plugin-unix` / `plugin-tcp`: the `plugin` filter calling the TypeScript header
 *   checker of `examples/plugin_filter` (Mosaic's SDK, bundled, run by Node.js), which
 *   requires `User: admin` (every request carries it), over a unix socket or tcp;
 * - `process-sandbox`: the `demo` filter loaded as a module in a process sandbox, for
 *   comparison (frames over pipes instead of gRPC).
 *
 * Each is loaded by wrk with 50 connections (the issue's measure) and with 1 (the cost of
 * one request with nothing queued). The report gives each target's median over rounds of
 * req/s and p50, and the p50 added over the baseline at the same connection count; the
 * goal is at most 0.5 ms added at 50 connections. Results go to stdout (Markdown) and
 * `bench/results/plugin-<date>.json`.
 *
 * Environment: `BENCH_DURATION` (default `10s`), `BENCH_WARMUP` (default `2s`),
 * `BENCH_ROUNDS` (default 3), `BENCH_TARGETS` (comma-separated; default all),
 * `PLUGIN_BUNDLE` (the checker bundle; default `examples/plugin_filter/build/checker.mjs`).
 *
 * @module
 */

import {
  type Child,
  freePort,
  loadAverage,
  ProcessGroup,
  stopOnSignal,
  waitUntilReady,
  warnIfBusy,
} from "./load/processes.ts";
import {
  BENCH_HEADERS,
  type BenchContext,
  mosaicConfig,
  type Started,
  startUpstream,
} from "./load/servers.ts";
import { durationSeconds, parseWrkOutput, type WrkResult } from "./load/wrk.ts";

/** The latency goal of the issue: at most this much added at 50 connections. */
const GOAL_ADDED_P50_MS = 0.5;
const CONNECTIONS = [50, 1] as const;

interface Target {
  name: string;
  description: string;
  filters(context: BenchContext): unknown[];
  plugins?: (context: BenchContext, bundle: string) => Record<string, unknown>;
}

function checkerPlugins(network: "unix" | "tcp") {
  return (context: BenchContext, bundle: string) => ({
    checker: {
      command: ["node", bundle, "-c", `${context.dir}/checkconf.json`],
      network,
    },
  });
}

const PLUGIN_FILTER = [{
  type: "plugin",
  config: { plugin: "checker", timeout: "1s", failure_mode: "closed" },
}];

const TARGETS: Target[] = [
  {
    name: "mosaic",
    description: "Mosaic, no stream filter (baseline)",
    filters: () => [],
  },
  {
    name: "plugin-unix",
    description: "plugin filter → TypeScript header checker (Node.js), unix socket",
    filters: () => PLUGIN_FILTER,
    plugins: checkerPlugins("unix"),
  },
  {
    name: "plugin-tcp",
    description: "plugin filter → TypeScript header checker (Node.js), tcp",
    filters: () => PLUGIN_FILTER,
    plugins: checkerPlugins("tcp"),
  },
  {
    name: "process-sandbox",
    description: "demo filter as a module in a process sandbox (pipes)",
    filters: (context) => [{
      type: "module",
      module: `${context.root}/extensions/filters/demo/mod.ts`,
      config: { User: "admin" },
      sandbox: { isolation: "process", permissions: {}, timeout: "1s" },
    }],
  },
];

/** One measurement of one target at one connection count. */
interface Measurement {
  target: string;
  connections: number;
  round: number;
  result?: WrkResult;
  error?: string;
}

async function startMosaicWith(
  context: BenchContext,
  target: Target,
  upstream: string,
  bundle: string,
): Promise<Started> {
  const port = freePort();
  const config = JSON.parse(mosaicConfig(port, upstream, target.filters(context)));
  if (target.plugins !== undefined) config.plugins = target.plugins(context, bundle);
  const file = `${context.dir}/${target.name}.yaml`;
  await Deno.writeTextFile(file, JSON.stringify(config, null, 2) + "\n");
  const child: Child = context.processes.spawn(target.name, Deno.execPath(), [
    "run",
    "--allow-net",
    "--allow-read",
    "--allow-env",
    "--allow-run",
    // Deno needs write access to a unix socket's path to connect to it; a plugin's
    // socket is made in a fresh temp dir, so the path is not known in advance.
    "--allow-write",
    "main.ts",
    file,
  ], { cwd: context.root, env: { NO_COLOR: "1" } });
  const url = `http://127.0.0.1:${port}/`;
  await waitUntilReady(child, url, BENCH_HEADERS, 200, 120_000);
  return { url, child };
}

/** wrk with `connections` connections (2 threads, or 1 for one connection). */
async function wrk(
  context: BenchContext,
  url: string,
  duration: string,
  connections: number,
): Promise<WrkResult> {
  const threads = Math.min(2, connections);
  const args = [`-t${threads}`, `-c${connections}`, `-d${duration}`, "--latency", "-s"];
  args.push(`${context.root}/bench/wrk_report.lua`);
  for (const [name, value] of Object.entries(BENCH_HEADERS)) args.push("-H", `${name}: ${value}`);
  args.push(url);
  const child = context.processes.spawn("wrk", "wrk", args);
  const guard = setTimeout(() => child.stop(), (durationSeconds(duration) + 30) * 1000);
  try {
    const status = await child.exited;
    await context.processes.stop(child);
    if (!status.success) throw new Error(`wrk exited with code ${status.code}:\n${child.tail()}`);
    return parseWrkOutput(child.tail());
  } finally {
    clearTimeout(guard);
  }
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

interface Row {
  target: string;
  connections: number;
  requestsPerSec: number;
  p50Ms: number;
  p99Ms: number;
  addedP50Ms: number | undefined;
  errors: number;
  rounds: number;
  failed?: string;
}

function summarize(measurements: Measurement[], targets: Target[]): Row[] {
  const rows: Row[] = [];
  for (const connections of CONNECTIONS) {
    let baseline: number | undefined;
    for (const target of targets) {
      const own = measurements.filter((m) =>
        m.target === target.name && m.connections === connections
      );
      const ok = own.filter((m) => m.result !== undefined).map((m) => m.result!);
      const failed = own.find((m) => m.error !== undefined)?.error;
      if (ok.length === 0) {
        rows.push({
          target: target.name,
          connections,
          requestsPerSec: 0,
          p50Ms: NaN,
          p99Ms: NaN,
          addedP50Ms: undefined,
          errors: 0,
          rounds: 0,
          failed: failed ?? "not measured",
        });
        continue;
      }
      const p50 = median(ok.map((r) => r.p50Ms));
      if (target.name === "mosaic") baseline = p50;
      rows.push({
        target: target.name,
        connections,
        requestsPerSec: median(ok.map((r) => r.requestsPerSec)),
        p50Ms: p50,
        p99Ms: median(ok.map((r) => r.p99Ms)),
        addedP50Ms: baseline === undefined || target.name === "mosaic" ? undefined : p50 - baseline,
        errors: ok.reduce((n, r) => n + r.socketErrors + r.non2xx, 0),
        rounds: ok.length,
        failed,
      });
    }
  }
  return rows;
}

function formatRows(rows: Row[]): string {
  const lines = [
    "| target | conns | req/s | p50 ms | p99 ms | p50 added ms | errors | rounds |",
    "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
  ];
  for (const r of rows) {
    const added = r.addedP50Ms === undefined ? "—" : r.addedP50Ms.toFixed(3);
    const goal = r.addedP50Ms !== undefined && r.connections === 50
      ? (r.addedP50Ms <= GOAL_ADDED_P50_MS ? " ✓" : " ✗")
      : "";
    lines.push(
      `| ${r.target} | ${r.connections} | ${Math.round(r.requestsPerSec)} | ${
        r.p50Ms.toFixed(3)
      } | ${r.p99Ms.toFixed(3)} | ${added}${goal} | ${r.errors} | ${r.rounds}${
        r.failed ? ` (failed: ${r.failed.split("\n")[0]})` : ""
      } |`,
    );
  }
  lines.push(
    "",
    `Goal: at most ${GOAL_ADDED_P50_MS} ms p50 added by the plugin filter at 50 connections (✓/✗).`,
  );
  return lines.join("\n");
}

function selectTargets(): Target[] {
  const wanted = Deno.env.get("BENCH_TARGETS");
  if (wanted === undefined || wanted.trim() === "") return TARGETS;
  const names = wanted.split(",").map((n) => n.trim()).filter((n) => n !== "");
  for (const name of names) {
    if (!TARGETS.some((t) => t.name === name)) {
      throw new RangeError(
        `BENCH_TARGETS names "${name}", which is not one of ${TARGETS.map((t) => t.name)}`,
      );
    }
  }
  // The baseline is always measured: the added latency is relative to it.
  return TARGETS.filter((t) => t.name === "mosaic" || names.includes(t.name));
}

/** Runs the benchmark; returns the exit code (1 when a measurement failed). */
export async function main(): Promise<number> {
  const root = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
  const duration = Deno.env.get("BENCH_DURATION") ?? "10s";
  const warmup = Deno.env.get("BENCH_WARMUP") ?? "2s";
  const rounds = Number(Deno.env.get("BENCH_ROUNDS") ?? "3");
  const bundle = Deno.env.get("PLUGIN_BUNDLE") ??
    `${root}/examples/plugin_filter/build/checker.mjs`;
  durationSeconds(duration);
  durationSeconds(warmup);
  if (!Number.isInteger(rounds) || rounds < 1 || rounds > 100) {
    throw new RangeError(`BENCH_ROUNDS must be a whole number from 1 to 100, got ${rounds}`);
  }
  await Deno.stat(bundle).catch(() => {
    throw new Error(
      `No plugin bundle at ${bundle}: run examples/plugin_filter/setup.sh typescript`,
    );
  });
  const targets = selectTargets();

  const processes = new ProcessGroup();
  const dir = await Deno.makeTempDir({ prefix: "mosaic-plugin-bench-" });
  const context: BenchContext = { processes, dir, root };
  await Deno.writeTextFile(`${dir}/checkconf.json`, JSON.stringify(BENCH_HEADERS));
  const signals = stopOnSignal("plugin bench", processes, dir);

  const loadBefore = await warnIfBusy("plugin bench", "other work will raise every latency");

  const measurements: Measurement[] = [];
  try {
    const upstream = await startUpstream(context);
    console.error(
      `plugin bench: upstream ${upstream.url}; ${duration} per measurement after ${warmup}, ` +
        `${rounds} round(s)`,
    );
    // Rounds go over every target in turn, so a burst of other work hits one round of
    // several targets rather than every round of one.
    for (let round = 1; round <= rounds && !signals.interrupted; round++) {
      for (const target of targets) {
        if (signals.interrupted) break;
        console.error(`plugin bench: round ${round}: ${target.name} (${target.description})`);
        let started: Started | undefined;
        try {
          started = await startMosaicWith(context, target, upstream.url, bundle);
          if (durationSeconds(warmup) > 0) await wrk(context, started.url, warmup, 50);
          for (const connections of CONNECTIONS) {
            const result = await wrk(context, started.url, duration, connections);
            measurements.push({ target: target.name, connections, round, result });
          }
        } catch (error) {
          const message = error instanceof Error ? error.message : String(error);
          console.error(`plugin bench: ${target.name} failed: ${message}`);
          for (const connections of CONNECTIONS) {
            measurements.push({ target: target.name, connections, round, error: message });
          }
        } finally {
          if (started !== undefined) await processes.stop(started.child);
        }
      }
    }
  } finally {
    await processes.stopAll();
    signals.remove();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
  if (signals.interrupted) return await new Promise<number>(() => {});

  const rows = summarize(measurements, targets);
  console.log(formatRows(rows));
  const record = {
    date: new Date().toISOString(),
    duration,
    warmup,
    rounds,
    goalAddedP50Ms: GOAL_ADDED_P50_MS,
    machine: {
      cpus: navigator.hardwareConcurrency,
      os: Deno.build.os,
      arch: Deno.build.arch,
      loadAverageBefore: loadBefore,
      loadAverageAfter: await loadAverage(),
    },
    versions: { deno: Deno.version.deno },
    targets: targets.map((t) => ({ name: t.name, description: t.description })),
    summary: rows,
    measurements,
  };
  await Deno.mkdir(`${root}/bench/results`, { recursive: true });
  const stamp = record.date.replace(/[:.]/g, "").replace(/-/g, "").slice(0, 15);
  const out = `${root}/bench/results/plugin-${stamp}.json`;
  await Deno.writeTextFile(out, JSON.stringify(record, null, 2) + "\n");
  console.error(`plugin bench: results written to ${out}`);
  return measurements.some((m) => m.error !== undefined) ? 1 : 0;
}

if (import.meta.main) Deno.exit(await main());
