/**
 * Mosaic's load benchmark (run it with `deno task bench`, which installs the tools first).
 *
 * Starts an nginx upstream on 127.0.0.1, then measures each target in turn with wrk
 * (2 threads, 50 connections, after a warm-up): the upstream direct, nginx as a proxy,
 * haproxy, node http-proxy, Mosaic without a stream filter, and Mosaic with `demo`.
 * Prints a Markdown table with Mosaic's ratios to nginx and to http-proxy and writes the
 * same as JSON to `bench/results/`. Every process it started is stopped before it exits.
 *
 * Environment: `BENCH_DURATION` (default `10s`), `BENCH_WARMUP` (default `2s`),
 * `BENCH_TARGETS` (comma-separated names; default all), `BENCH_ROUNDS` (default 1: with
 * more, every target is measured once per round and its median round is reported).
 *
 * @module
 */

import { loadAverage, ProcessGroup, stopOnSignal, warnIfBusy } from "./load/processes.ts";
import {
  formatReport,
  goals,
  medianRound,
  mosaicRatios,
  type TargetResult,
} from "./load/report.ts";
import {
  type BenchContext,
  type Started,
  startFloor,
  startHaproxy,
  startMosaic,
  startNginxProxy,
  startNodeHttpProxy,
  startUpstream,
} from "./load/servers.ts";
import { durationSeconds, runWrk, WRK_CONNECTIONS, WRK_THREADS } from "./load/wrk.ts";

interface Target {
  name: string;
  description: string;
  /** Starts the target in front of `upstream`; undefined child means nothing to start. */
  start(context: BenchContext, upstream: Started): Promise<Started>;
}

const TARGETS: Target[] = [
  {
    name: "direct",
    description: "wrk straight to the nginx upstream (return 200, 1 worker)",
    start: (_context, upstream) => Promise.resolve(upstream),
  },
  {
    name: "nginx",
    description: "nginx reverse proxy, 1 worker, upstream keepalive",
    start: (context, upstream) => startNginxProxy(context, upstream.url),
  },
  {
    name: "nginx-2w",
    description: "nginx reverse proxy, 2 workers, upstream keepalive",
    start: (context, upstream) => startNginxProxy(context, upstream.url, 2),
  },
  {
    name: "haproxy",
    description: "haproxy, http mode, nbthread 1, http-reuse always",
    start: (context, upstream) => startHaproxy(context, upstream.url),
  },
  {
    name: "http-proxy",
    description: "node http-proxy 1.18.1, keep-alive agent",
    start: (context, upstream) => startNodeHttpProxy(context, upstream.url),
  },
  {
    name: "floor",
    description: "the floor: Deno.serve + a minimal keep-alive Deno.connect pool (bench/floor)",
    start: (context, upstream) => startFloor(context, upstream.url),
  },
  {
    name: "mosaic",
    description: "Mosaic, no stream filter, no access log",
    start: (context, upstream) => startMosaic(context, "mosaic", upstream.url, []),
  },
  {
    name: "mosaic-demo",
    description: "Mosaic with the demo filter (User: admin), no access log",
    start: (context, upstream) =>
      startMosaic(context, "mosaic-demo", upstream.url, [{
        type: "demo",
        config: { User: "admin" },
      }]),
  },
  {
    name: "mosaic-2w",
    description: "Mosaic with the demo filter and workers: 2",
    start: (context, upstream) =>
      startMosaic(context, "mosaic-2w", upstream.url, [{
        type: "demo",
        config: { User: "admin" },
      }], { workers: 2 }),
  },
];

async function version(command: string, args: string[]): Promise<string> {
  try {
    const out = await new Deno.Command(command, {
      args,
      stdout: "piped",
      stderr: "piped",
    })
      .output();
    const text = new TextDecoder().decode(out.stdout) +
      new TextDecoder().decode(out.stderr);
    return text.trim().split("\n")[0];
  } catch {
    return "not found";
  }
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
  return TARGETS.filter((t) => names.includes(t.name));
}

async function measure(
  context: BenchContext,
  upstream: Started,
  target: Target,
  duration: string,
  warmup: string,
): Promise<TargetResult> {
  let started: Started | undefined;
  try {
    started = await target.start(context, upstream);
    if (durationSeconds(warmup) > 0) {
      await runWrk(context.processes, context.root, started.url, warmup);
    }
    const result = await runWrk(context.processes, context.root, started.url, duration);
    return { target: target.name, description: target.description, result };
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    return {
      target: target.name,
      description: target.description,
      error: message,
    };
  } finally {
    if (started !== undefined && started !== upstream) {
      await context.processes.stop(started.child);
    }
  }
}

/** Runs the benchmark; returns the exit code (1 when a target failed). */
export async function main(): Promise<number> {
  const root = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
  const duration = Deno.env.get("BENCH_DURATION") ?? "10s";
  const warmup = Deno.env.get("BENCH_WARMUP") ?? "2s";
  durationSeconds(duration);
  durationSeconds(warmup);
  const targets = selectTargets();
  const rounds = Number(Deno.env.get("BENCH_ROUNDS") ?? "1");
  if (!Number.isInteger(rounds) || rounds < 1 || rounds > 100) {
    throw new RangeError(`BENCH_ROUNDS must be a whole number from 1 to 100, got ${rounds}`);
  }

  const processes = new ProcessGroup();
  const dir = await Deno.makeTempDir({ prefix: "mosaic-bench-" });
  const context: BenchContext = { processes, dir, root };
  const signals = stopOnSignal("bench", processes, dir);

  // wrk, the upstream and the proxy need the cores to themselves: say when they don't.
  const loadBefore = await warnIfBusy("bench", "other work will lower every figure and widen p99");

  // Rounds go over every target in turn, so a burst of other work hits one round of
  // several targets rather than every round of one.
  const outcomes = new Map<string, TargetResult[]>(targets.map((t) => [t.name, []]));
  try {
    const upstream = await startUpstream(context);
    console.error(
      `bench: upstream ${upstream.url}; ${duration} per target after ${warmup}, ` +
        `${rounds} round(s)`,
    );
    for (let round = 1; round <= rounds && !signals.interrupted; round++) {
      for (const target of targets) {
        console.error(`bench: round ${round}: ${target.name} (${target.description})`);
        const outcome = await measure(context, upstream, target, duration, warmup);
        if (signals.interrupted) break;
        if (outcome.error !== undefined) console.error(`bench: ${target.name} failed`);
        outcomes.get(target.name)!.push(outcome);
      }
    }
  } finally {
    await processes.stopAll();
    signals.remove();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }

  // The signal handler exits once its cleanup is done; a cut-short run reports nothing.
  if (signals.interrupted) return await new Promise<number>(() => {});
  const results = targets.map((t) => medianRound(outcomes.get(t.name)!));
  console.log(formatReport(results));

  const record = {
    date: new Date().toISOString(),
    duration,
    warmup,
    rounds,
    wrk: {
      threads: WRK_THREADS,
      connections: WRK_CONNECTIONS,
      headers: { User: "admin" },
    },
    machine: {
      cpus: navigator.hardwareConcurrency,
      os: Deno.build.os,
      arch: Deno.build.arch,
      loadAverageBefore: loadBefore,
      loadAverageAfter: await loadAverage(),
    },
    versions: {
      deno: Deno.version.deno,
      wrk: await version("wrk", ["-v"]),
      nginx: await version("nginx", ["-v"]),
      haproxy: await version("haproxy", ["-v"]),
      node: await version("node", ["--version"]),
    },
    results,
    ratios: mosaicRatios(results),
    goals: goals(results),
  };
  await Deno.mkdir(`${root}/bench/results`, { recursive: true });
  const stamp = record.date.replace(/[-:]/g, "").replace(/\..*$/, "");
  const file = `${root}/bench/results/load-${stamp}.json`;
  await Deno.writeTextFile(file, JSON.stringify(record, null, 2) + "\n");
  console.error(`bench: wrote ${file}`);
  return results.some((r) => r.error !== undefined) ? 1 : 0;
}

if (import.meta.main) Deno.exit(await main());
