/**
 * The plugin filter's cost (run it with `bash bench/plugin_bench.sh`, which installs wrk
 * and nginx, bundles the TypeScript checker and builds the Go one first).
 *
 * Part 1, the client alone: Mosaic's gRPC client (src/plugin/client.ts, its own HTTP/2 on
 * `Deno.connect`) against `@grpc/grpc-js` (src/plugin/grpcjs_client.ts) in the same run,
 * each calling the Go go-plugin checker and the Node.js SDK checker directly with 1 and 50
 * calls in flight: calls/s, median latency, and the CPU each side spends per call (from
 * /proc, so the plugin's own cost is not taken for ours).
 *
 * Part 2, the real proxy: Mosaic (the `main.ts` process) in front of the load benchmark's
 * nginx upstream, in rounds over:
 *
 * - `mosaic`: no stream filter, the baseline;
 * - `in-process`: the built-in `demo` filter (the same header check, in process);
 * - `plugin-unix-node` / `plugin-tcp-node`: the `plugin` filter calling the TypeScript
 *   header checker of `examples/plugin_filter` (Mosaic's SDK, bundled, run by Node.js),
 *   which requires `User: admin` (every request carries it), over a unix socket or tcp;
 * - `plugin-unix-go`: the `plugin` filter calling the Go checker of
 *   `examples/module_with_plugin` (hashicorp/go-plugin from Debian's packages, which
 *   listens on a unix socket only on Linux), asked about the `user` header;
 * - `process-sandbox` (only when named in `BENCH_TARGETS`): the `demo` filter in a
 *   process sandbox.
 *
 * Each is loaded by wrk with 50 connections and with 1. The report gives each target's
 * median over rounds of req/s, p50 and p99, the p50 added over the baseline and the
 * req/s as a fraction of it. Goals (issue 14, against the Go plugin): at most 2 ms added
 * at 50 connections with at least 10,000 req/s, at most 0.3 ms added at 1. Results go to
 * stdout (Markdown) and `bench/results/plugin-<date>.json`, with the load average before
 * and after (the machine is shared: read the ratios).
 *
 * Environment: `BENCH_DURATION` (default `10s`), `BENCH_WARMUP` (default `2s`),
 * `BENCH_ROUNDS` (default 3), `BENCH_TARGETS` (comma-separated; default all but
 * process-sandbox), `BENCH_CLIENT` (`0` skips part 1; `BENCH_CLIENT_MS`, default 3000,
 * per measurement), `PLUGIN_BUNDLE` (the checker bundle; default
 * `examples/plugin_filter/build/checker.mjs`), `GO_CHECKER` (default
 * `examples/module_with_plugin/build/checker`).
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
import { getLogger } from "@logtape/logtape";
import { PluginClient } from "../src/plugin/client.ts";
import { GrpcJsPluginClient } from "../src/plugin/grpcjs_client.ts";
import { PluginProcess } from "../src/plugin/process.ts";

/** The goals of issue 14 (against the Go plugin): p50 added at 50 and at 1 connection. */
const GOAL_ADDED_P50_MS: Record<number, number> = { 50: 2, 1: 0.3 };
/** And the proxy's req/s with the plugin filter at 50 connections. */
const GOAL_RPS_50 = 10_000;
const CONNECTIONS = [50, 1] as const;

/** Where the plugins are. */
interface Binaries {
  bundle: string;
  goChecker: string;
}

interface Target {
  name: string;
  description: string;
  filters(context: BenchContext): unknown[];
  plugins?: (context: BenchContext, binaries: Binaries) => Record<string, unknown>;
  /** Measured only when BENCH_TARGETS names it. */
  optIn?: boolean;
}

function nodeChecker(network: "unix" | "tcp") {
  return (context: BenchContext, binaries: Binaries) => ({
    checker: {
      command: ["node", binaries.bundle, "-c", `${context.dir}/checkconf.json`],
      network,
    },
  });
}

function goChecker(context: BenchContext, binaries: Binaries) {
  return {
    checker: {
      command: [binaries.goChecker, "-keys", `${context.dir}/keys.json`, "-header", "user"],
      network: "unix",
    },
  };
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
    name: "in-process",
    description: "the built-in demo filter (the same header check, in process)",
    filters: () => [{ type: "demo", config: { User: "admin" } }],
  },
  {
    name: "plugin-unix-go",
    description: "plugin filter → Go go-plugin checker, unix socket",
    filters: () => PLUGIN_FILTER,
    plugins: goChecker,
  },
  {
    name: "plugin-unix-node",
    description: "plugin filter → TypeScript header checker (Node.js SDK), unix socket",
    filters: () => PLUGIN_FILTER,
    plugins: nodeChecker("unix"),
  },
  {
    name: "plugin-tcp-node",
    description: "plugin filter → TypeScript header checker (Node.js SDK), tcp",
    filters: () => PLUGIN_FILTER,
    plugins: nodeChecker("tcp"),
  },
  {
    name: "process-sandbox",
    optIn: true,
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
  /** CPU the proxy process spent per request (µs). */
  proxyCpuUs?: number;
  /** CPU the plugin process spent per request (µs), for plugin targets. */
  pluginCpuUs?: number;
  error?: string;
}

/** The pids of a process's children (Linux). */
function childPids(pid: number): number[] {
  try {
    return Deno.readTextFileSync(`/proc/${pid}/task/${pid}/children`).trim().split(/\s+/)
      .filter((p) => p !== "").map(Number);
  } catch {
    return [];
  }
}

async function startMosaicWith(
  context: BenchContext,
  target: Target,
  upstream: string,
  binaries: Binaries,
): Promise<Started> {
  const port = freePort();
  const config = JSON.parse(mosaicConfig(port, upstream, target.filters(context)));
  if (target.plugins !== undefined) config.plugins = target.plugins(context, binaries);
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
  /** req/s as a fraction of the baseline's at the same connection count. */
  ratio: number | undefined;
  p50Ms: number;
  p99Ms: number;
  addedP50Ms: number | undefined;
  addedP99Ms: number | undefined;
  proxyCpuUs: number | undefined;
  pluginCpuUs: number | undefined;
  errors: number;
  rounds: number;
  failed?: string;
}

function medianOf(values: (number | undefined)[]): number | undefined {
  const known = values.filter((v): v is number => v !== undefined && Number.isFinite(v));
  return known.length === 0 ? undefined : median(known);
}

function summarize(measurements: Measurement[], targets: Target[]): Row[] {
  const rows: Row[] = [];
  for (const connections of CONNECTIONS) {
    let baseline: { p50: number; p99: number; rps: number } | undefined;
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
          ratio: undefined,
          p50Ms: NaN,
          p99Ms: NaN,
          addedP50Ms: undefined,
          addedP99Ms: undefined,
          proxyCpuUs: undefined,
          pluginCpuUs: undefined,
          errors: 0,
          rounds: 0,
          failed: failed ?? "not measured",
        });
        continue;
      }
      const p50 = median(ok.map((r) => r.p50Ms));
      const p99 = median(ok.map((r) => r.p99Ms));
      const rps = median(ok.map((r) => r.requestsPerSec));
      const isBase = target.name === "mosaic";
      if (isBase) baseline = { p50, p99, rps };
      rows.push({
        target: target.name,
        connections,
        requestsPerSec: rps,
        ratio: baseline === undefined || isBase ? undefined : rps / baseline.rps,
        p50Ms: p50,
        p99Ms: p99,
        addedP50Ms: baseline === undefined || isBase ? undefined : p50 - baseline.p50,
        addedP99Ms: baseline === undefined || isBase ? undefined : p99 - baseline.p99,
        proxyCpuUs: medianOf(own.map((m) => m.proxyCpuUs)),
        pluginCpuUs: medianOf(own.map((m) => m.pluginCpuUs)),
        errors: ok.reduce((n, r) => n + r.socketErrors + r.non2xx, 0),
        rounds: ok.length,
        failed,
      });
    }
  }
  return rows;
}

function goalMark(r: Row): string {
  if (r.target !== "plugin-unix-go" || r.addedP50Ms === undefined) return "";
  const ok = r.addedP50Ms <= GOAL_ADDED_P50_MS[r.connections] &&
    (r.connections !== 50 || r.requestsPerSec >= GOAL_RPS_50);
  return ok ? " ✓" : " ✗";
}

function formatRows(rows: Row[]): string {
  const lines = [
    "| target | conns | req/s | ÷ no filter | p50 ms | p99 ms | p50 added ms | p99 added ms | proxy CPU µs/req | plugin CPU µs/req | errors | rounds |",
    "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
  ];
  const fixed = (v: number | undefined, digits: number) =>
    v === undefined || Number.isNaN(v) ? "—" : v.toFixed(digits);
  for (const r of rows) {
    lines.push(
      `| ${r.target} | ${r.connections} | ${Math.round(r.requestsPerSec)} | ${
        fixed(r.ratio, 2)
      } | ${fixed(r.p50Ms, 3)} | ${fixed(r.p99Ms, 3)} | ${fixed(r.addedP50Ms, 3)}${goalMark(r)} | ${
        fixed(r.addedP99Ms, 3)
      } | ${fixed(r.proxyCpuUs, 0)} | ${fixed(r.pluginCpuUs, 0)} | ${r.errors} | ${r.rounds}${
        r.failed ? ` (failed: ${r.failed.split("\n")[0]})` : ""
      } |`,
    );
  }
  lines.push(
    "",
    `Goals for plugin-unix-go (✓/✗): p50 added at most ${GOAL_ADDED_P50_MS[50]} ms with at ` +
      `least ${GOAL_RPS_50} req/s at 50 connections, at most ${GOAL_ADDED_P50_MS[1]} ms at 1.`,
  );
  return lines.join("\n");
}

function selectTargets(): Target[] {
  const wanted = Deno.env.get("BENCH_TARGETS");
  if (wanted === undefined || wanted.trim() === "") return TARGETS.filter((t) => !t.optIn);
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

/** One client measurement of part 1. */
interface ClientRow {
  client: "mosaic" | "grpc-js";
  plugin: "go" | "node";
  inFlight: number;
  callsPerSec: number;
  p50Ms: number;
  p99Ms: number;
  /** CPU the calling process spent per call. */
  hostCpuUs: number;
  /** CPU the plugin process spent per call. */
  pluginCpuUs: number;
}

/** CPU time (user + system) of a process so far, in µs (from /proc, 100 Hz ticks). */
function cpuMicros(pid: number | "self"): number {
  const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) * 10_000;
}

interface UnaryClient {
  ready(timeoutMs: number): Promise<void>;
  call(request: { header: Record<string, string>; type: string }, timeoutMs: number): Promise<
    unknown
  >;
  close(): void;
}

/** Part 1: each client against each plugin, directly, 1 and 50 calls in flight. */
async function measureClients(context: BenchContext, binaries: Binaries): Promise<ClientRow[]> {
  const ms = Number(Deno.env.get("BENCH_CLIENT_MS") ?? 3000);
  const rows: ClientRow[] = [];
  const logger = getLogger(["mosaic", "bench"]);
  // What the plugin filter sends for a wrk request.
  const request = {
    header: {
      host: "127.0.0.1",
      user: "admin",
      ":method": "GET",
      ":path": "/",
    },
    type: "before_route",
  };
  for (const plugin of ["go", "node"] as const) {
    const command = plugin === "go"
      ? goChecker(context, binaries).checker.command
      : nodeChecker("unix")(context, binaries).checker.command;
    const proc = await PluginProcess.start({
      name: plugin,
      command,
      args: [],
      env: {},
      cwd: undefined,
      network: "unix",
      startTimeoutMs: 20_000,
      maxProcs: 1,
      position: { file: "plugin_bench.ts", line: 1, path: `plugins.${plugin}` },
    }, { logger, logBase: context.dir });
    try {
      for (const inFlight of [1, 50]) {
        for (const client of ["mosaic", "grpc-js"] as const) {
          const target = proc.handshake.target;
          const c: UnaryClient = client === "mosaic"
            ? new PluginClient(plugin, target)
            : new GrpcJsPluginClient(plugin, target);
          try {
            await c.ready(5000);
            for (let i = 0; i < 200; i++) await c.call(request, 1000); // warm up
            const latencies: number[] = [];
            const host0 = cpuMicros("self");
            const plugin0 = cpuMicros(proc.pid);
            const end = Date.now() + ms;
            await Promise.all(Array.from({ length: inFlight }, async () => {
              while (Date.now() < end) {
                const t0 = performance.now();
                await c.call(request, 1000);
                latencies.push(performance.now() - t0);
              }
            }));
            const n = latencies.length;
            latencies.sort((a, b) => a - b);
            rows.push({
              client,
              plugin,
              inFlight,
              callsPerSec: n / (ms / 1000),
              p50Ms: latencies[Math.floor(n / 2)],
              p99Ms: latencies[Math.floor(n * 0.99)],
              hostCpuUs: (cpuMicros("self") - host0) / n,
              pluginCpuUs: (cpuMicros(proc.pid) - plugin0) / n,
            });
          } finally {
            c.close();
          }
        }
      }
    } finally {
      await proc.stop(2000);
    }
  }
  return rows;
}

function formatClientRows(rows: ClientRow[]): string {
  const lines = [
    "| client | plugin | in flight | calls/s | p50 ms | p99 ms | host CPU µs/call | plugin CPU µs/call |",
    "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
  ];
  for (const r of rows) {
    lines.push(
      `| ${r.client} | ${r.plugin} | ${r.inFlight} | ${Math.round(r.callsPerSec)} | ${
        r.p50Ms.toFixed(3)
      } | ${r.p99Ms.toFixed(3)} | ${Math.round(r.hostCpuUs)} | ${Math.round(r.pluginCpuUs)} |`,
    );
  }
  return lines.join("\n");
}

/** Runs the benchmark; returns the exit code (1 when a measurement failed). */
export async function main(): Promise<number> {
  const root = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
  const duration = Deno.env.get("BENCH_DURATION") ?? "10s";
  const warmup = Deno.env.get("BENCH_WARMUP") ?? "2s";
  const rounds = Number(Deno.env.get("BENCH_ROUNDS") ?? "3");
  const binaries: Binaries = {
    bundle: Deno.env.get("PLUGIN_BUNDLE") ?? `${root}/examples/plugin_filter/build/checker.mjs`,
    goChecker: Deno.env.get("GO_CHECKER") ?? `${root}/examples/module_with_plugin/build/checker`,
  };
  durationSeconds(duration);
  durationSeconds(warmup);
  if (!Number.isInteger(rounds) || rounds < 1 || rounds > 100) {
    throw new RangeError(`BENCH_ROUNDS must be a whole number from 1 to 100, got ${rounds}`);
  }
  await Deno.stat(binaries.bundle).catch(() => {
    throw new Error(
      `No plugin bundle at ${binaries.bundle}: run examples/plugin_filter/setup.sh typescript`,
    );
  });
  await Deno.stat(binaries.goChecker).catch(() => {
    throw new Error(
      `No Go checker at ${binaries.goChecker}: run examples/module_with_plugin/build.sh`,
    );
  });
  const targets = selectTargets();

  const processes = new ProcessGroup();
  const dir = await Deno.makeTempDir({ prefix: "mosaic-plugin-bench-" });
  const context: BenchContext = { processes, dir, root };
  await Deno.writeTextFile(`${dir}/checkconf.json`, JSON.stringify(BENCH_HEADERS));
  await Deno.writeTextFile(`${dir}/keys.json`, JSON.stringify({ admin: "bench" }));
  const signals = stopOnSignal("plugin bench", processes, dir);

  const loadBefore = await warnIfBusy("plugin bench", "other work will raise every latency");

  const measurements: Measurement[] = [];
  let clientRows: ClientRow[] = [];
  let loadAfterClients: number | undefined;
  try {
    if (Deno.env.get("BENCH_CLIENT") !== "0") {
      console.error("plugin bench: part 1, the gRPC clients against the plugins directly");
      clientRows = await measureClients(context, binaries);
      loadAfterClients = await loadAverage();
    }
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
          started = await startMosaicWith(context, target, upstream.url, binaries);
          if (durationSeconds(warmup) > 0) await wrk(context, started.url, warmup, 50);
          for (const connections of CONNECTIONS) {
            const proxyPid = started.child.process.pid;
            const pluginPid = target.plugins ? childPids(proxyPid)[0] : undefined;
            const proxy0 = cpuMicros(proxyPid);
            const plugin0 = pluginPid ? cpuMicros(pluginPid) : 0;
            const result = await wrk(context, started.url, duration, connections);
            const requests = result.requestsPerSec * durationSeconds(duration);
            measurements.push({
              target: target.name,
              connections,
              round,
              result,
              proxyCpuUs: (cpuMicros(proxyPid) - proxy0) / requests,
              pluginCpuUs: pluginPid ? (cpuMicros(pluginPid) - plugin0) / requests : undefined,
            });
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
  const loadAfter = await loadAverage();
  const load = (v: number | undefined) => v === undefined ? "?" : v.toFixed(2);
  if (clientRows.length > 0) {
    console.log(formatClientRows(clientRows));
    console.log(
      `\nLoad average (1 min) before part 1: ${load(loadBefore)}, after: ${
        load(loadAfterClients)
      }.\n`,
    );
  }
  console.log(formatRows(rows));
  console.log(
    `\nLoad average (1 min) before: ${load(loadBefore)}, after: ${load(loadAfter)}; ` +
      `${navigator.hardwareConcurrency} CPUs.`,
  );
  const record = {
    date: new Date().toISOString(),
    duration,
    warmup,
    rounds,
    goalAddedP50Ms: GOAL_ADDED_P50_MS,
    goalRequestsPerSec50: GOAL_RPS_50,
    machine: {
      cpus: navigator.hardwareConcurrency,
      os: Deno.build.os,
      arch: Deno.build.arch,
      loadAverageBefore: loadBefore,
      loadAverageAfterClients: loadAfterClients,
      loadAverageAfter: loadAfter,
    },
    versions: { deno: Deno.version.deno },
    targets: targets.map((t) => ({ name: t.name, description: t.description })),
    clients: clientRows,
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
