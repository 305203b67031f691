/**
 * What loading a filter by URL and sandboxing it cost.
 *
 * ```sh
 * ./node_modules/.bin/deno bench --allow-all bench/module_bench.ts      # per request, in process
 * ./node_modules/.bin/deno run --allow-all bench/module_bench.ts load   # 1 and 50 connections
 * ```
 *
 * `deno bench` sends whole requests through the in-process proxy (no sockets) with the
 * same filter two ways: the built-in `demo` and `examples/so_filter/auth_filter.ts` (the
 * same logic) loaded by URL. They should cost the same: both end up as the same kind of
 * function call. A timed loop after the benches then prints the median latency of each,
 * and of that module in a Worker sandbox, the ways taking turns request by request; the
 * sandbox adds one message round trip per request (its filter has one receiver, no
 * sender).
 *
 * `load` starts nginx as the upstream and Mosaic once per way of running the same auth
 * filter (`examples/so_filter/auth_filter.ts`, `User: admin`): no filter, in process (by
 * URL), in a Worker sandbox, in a process sandbox. It measures each with wrk at 1 and at
 * 50 connections (`-t1 -c1`, `-t2 -c50`) and prints req/s, p50, p99 and what each sandbox
 * adds to the in-process median, the CPU the Mosaic process spent per request (all its
 * threads, and its main thread alone: on a shared machine these move far less than
 * latency does) and each round's p50, with the load average before and after the run
 * (the machine is shared: compare rows of one run). Targets at 50 connections: Worker
 * at most 150 µs, process at most 1 ms. `BENCH_DURATION` (10s), `BENCH_WARMUP` (2s),
 * `BENCH_ROUNDS` (1; with more, targets take turns round after round and each reports
 * its median round), `BENCH_CONNECTIONS` (`1,50`), `BENCH_TARGETS` (`no filter,in
 * process,Worker,process`) and `BENCH_VARIANTS` (`label=/path,…`: the sandboxed
 * targets again from other copies of Mosaic, to measure a change against the code
 * before it in the same run). It needs `wrk` and `nginx` (`bash bench/run.sh
 * --install-only` installs them).
 *
 * @module
 */

import { createStreamFilterFactory as createDemo } from "../extensions/filters/demo/mod.ts";
import { isKnownFilterType, registerStreamFilter } from "../src/filter/registry.ts";
import { configureLogging } from "../src/log/logger.ts";
import { loadFilterModule } from "../src/module/loader.ts";
import {
  createInProcessProxy,
  type InProcessFilter,
  type InProcessProxy,
} from "../src/proxy/in_process.ts";
import {
  type Child,
  freePort,
  loadAverage,
  ProcessGroup,
  waitUntilReady,
} from "./load/processes.ts";
import { BENCH_HEADERS, mosaicConfig, startUpstream } from "./load/servers.ts";
import { parseWrkOutput, type WrkResult } from "./load/wrk.ts";

const AUTH_FILTER = new URL("../examples/so_filter/auth_filter.ts", import.meta.url).href;
const CONFIG = { User: "admin" };
const HEADERS = { user: "admin" };

const SANDBOXED = "module by URL in a Worker sandbox";
const FILTERS: Record<string, InProcessFilter> = {
  "built-in demo": { type: "demo", config: CONFIG },
  "module by URL (in process)": { type: "module", module: AUTH_FILTER, config: CONFIG },
  [SANDBOXED]: {
    type: "module",
    module: AUTH_FILTER,
    config: CONFIG,
    sandbox: { isolation: "worker", permissions: {}, timeoutMs: 1000 },
  },
};

function proxyWith(filter: InProcessFilter | undefined): Promise<InProcessProxy> {
  return createInProcessProxy({
    streamFilters: filter === undefined ? [] : [filter],
    resolveModule: loadFilterModule,
    upstream: () => new Response("ok"),
  });
}

async function send(proxy: InProcessProxy): Promise<void> {
  const response = await proxy.request("/", { headers: HEADERS });
  if (response.status !== 200) throw new Error(`Expected 200, got ${response.status}`);
  await response.arrayBuffer();
}

/**
 * Median latency of each proxy over `rounds` requests, in microseconds. The proxies take
 * turns request by request, so load from other work on the machine hits all alike.
 */
async function interleavedMedians(
  proxies: Map<string, InProcessProxy>,
  rounds: number,
): Promise<Map<string, number>> {
  const times = new Map([...proxies.keys()].map((name) => [name, [] as number[]]));
  for (let i = 0; i < rounds; i++) {
    for (const [name, proxy] of proxies) {
      const start = performance.now();
      await send(proxy);
      times.get(name)!.push((performance.now() - start) * 1000);
    }
  }
  return new Map(
    [...times].map(([name, list]) => [name, list.sort((a, b) => a - b)[list.length >> 1]]),
  );
}

async function benches(): Promise<void> {
  // A failing filter answers 500 and says why here.
  configureLogging("warning", "stderr");
  if (!isKnownFilterType("demo")) registerStreamFilter("demo", createDemo);
  const none = await proxyWith(undefined);
  const proxies = new Map<string, InProcessProxy>();
  for (const [name, filter] of Object.entries(FILTERS)) {
    proxies.set(name, await proxyWith(filter));
  }
  Deno.bench("no filter", { group: "module", baseline: true }, () => send(none));
  for (const [name, proxy] of proxies) {
    // deno bench's per-iteration times of the Worker round trip came out below the bare
    // postMessage round trip on our machine: only the interleaved median is reported.
    if (name !== SANDBOXED) Deno.bench(name, { group: "module" }, () => send(proxy));
  }

  // deno bench reports means and percentiles from p75 up; the target is on the median.
  let printed = false;
  Deno.bench({
    name: "median per request, 3000 interleaved rounds (printed)",
    group: "median",
    n: 1,
    warmup: 0,
    async fn() {
      if (printed) return; // deno bench may call a function more than once
      printed = true;
      const all = new Map([["no filter", none], ...proxies]);
      await interleavedMedians(all, 300); // warm-up
      const medians = await interleavedMedians(all, 3000);
      const lines = [...medians].map(([name, us]) => `  ${name.padEnd(36)} ${us.toFixed(1)} µs`);
      const added = medians.get(SANDBOXED)! -
        medians.get("module by URL (in process)")!;
      lines.push(
        `  the sandbox adds to the median: ${added.toFixed(1)} µs (target: at most 150 µs)`,
      );
      console.log(`\nmedian latency, in process:\n${lines.join("\n")}`);
    },
  });
}

/** One way of running the auth filter under load, and the flags Mosaic needs for it. */
interface LoadTarget {
  name: string;
  filters: unknown[];
  flags: string[];
  /** The Mosaic tree to run (a copy of another version, to compare it in the same run). */
  root?: string;
}

/**
 * The sandboxed targets again, run from other copies of Mosaic: `BENCH_VARIANTS` is
 * `label=/path/to/tree,…` (e.g. a copy of the last commit), and each adds `Worker
 * [label]` and `process [label]` (filtered by `BENCH_TARGETS` like the others), so a
 * change is measured against the code before it in one run, rounds interleaved.
 */
function variantTargets(targets: LoadTarget[]): LoadTarget[] {
  const spec = Deno.env.get("BENCH_VARIANTS");
  if (spec === undefined || spec === "") return [];
  return spec.split(",").flatMap((entry) => {
    const [label, root] = entry.split("=");
    return targets
      .filter((target) => target.name === "Worker" || target.name === "process")
      .map((target) => ({ ...target, name: `${target.name} [${label}]`, root }));
  });
}

function loadTargets(modulePath: string): LoadTarget[] {
  const base = ["--allow-net", "--allow-read", "--allow-env"];
  const module = { type: "module", module: modulePath, config: CONFIG };
  return [
    { name: "no filter", filters: [], flags: base },
    { name: "in process", filters: [module], flags: base },
    { name: "Worker", filters: [{ ...module, sandbox: {} }], flags: base },
    {
      name: "process",
      filters: [{ ...module, sandbox: { isolation: "process" } }],
      flags: [...base, "--allow-run"],
    },
  ];
}

async function startMosaicWith(
  context: { processes: ProcessGroup; dir: string; root: string },
  upstream: string,
  target: LoadTarget,
): Promise<{ url: string; child: Child }> {
  const port = freePort();
  const file = `${context.dir}/${target.name.replaceAll(" ", "-")}.json`;
  await Deno.writeTextFile(file, mosaicConfig(port, upstream, target.filters));
  const child = context.processes.spawn(`mosaic ${target.name}`, Deno.execPath(), [
    "run",
    ...target.flags,
    "main.ts",
    file,
  ], { cwd: target.root ?? context.root, env: { NO_COLOR: "1" } });
  const url = `http://127.0.0.1:${port}/`;
  await waitUntilReady(child, url, BENCH_HEADERS, 200, 120_000);
  return { url, child };
}

/** wrk at `connections` (one thread per connection up to two, as `-t` must not exceed `-c`). */
async function wrk(
  processes: ProcessGroup,
  root: string,
  url: string,
  duration: string,
  connections: number,
): Promise<WrkResult> {
  const args = [
    `-t${Math.min(2, connections)}`,
    `-c${connections}`,
    `-d${duration}`,
    "--latency",
    "-s",
    `${root}/bench/wrk_report.lua`,
  ];
  for (const [name, value] of Object.entries(BENCH_HEADERS)) args.push("-H", `${name}: ${value}`);
  const child = processes.spawn("wrk", "wrk", [...args, url]);
  const status = await child.exited;
  await processes.stop(child);
  if (!status.success) throw new Error(`wrk exited with code ${status.code}:\n${child.tail()}`);
  return parseWrkOutput(child.tail());
}

/** CPU time (user + system) so far, in µs (100 Hz ticks): a process, or one of its threads. */
function cpuMicros(pid: number, thread?: number): number {
  const path = thread === undefined ? `/proc/${pid}/stat` : `/proc/${pid}/task/${thread}/stat`;
  const stat = Deno.readTextFileSync(path);
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) * 10_000;
}

/** One measured wrk run and what the Mosaic process spent on it. */
interface LoadResult extends WrkResult {
  /** CPU of the whole Mosaic process (every thread, Workers' included) per request, µs. */
  cpuUs: number;
  /** CPU of its main thread (the one that serves the sockets) per request, µs. */
  mainCpuUs: number;
}

/** Runs wrk against Mosaic `pid` and takes the CPU the process spent meanwhile. */
async function measured(pid: number, run: () => Promise<WrkResult>): Promise<LoadResult> {
  const [all, main] = [cpuMicros(pid), cpuMicros(pid, pid)];
  const result = await run();
  const requests = Math.max(1, result.requests);
  return {
    ...result,
    cpuUs: (cpuMicros(pid) - all) / requests,
    mainCpuUs: (cpuMicros(pid, pid) - main) / requests,
  };
}

async function load(): Promise<void> {
  const processes = new ProcessGroup();
  const dir = await Deno.makeTempDir({ prefix: "mosaic-module-bench-" });
  const root = new URL("../", import.meta.url).pathname;
  const context = { processes, dir, root };
  const duration = Deno.env.get("BENCH_DURATION") ?? "10s";
  const warmup = Deno.env.get("BENCH_WARMUP") ?? "2s";
  const rounds = Number(Deno.env.get("BENCH_ROUNDS") ?? 1);
  const only = Deno.env.get("BENCH_TARGETS")?.split(",");
  const connections = (Deno.env.get("BENCH_CONNECTIONS") ?? "1,50").split(",").map(Number);
  const all = loadTargets(new URL(AUTH_FILTER).pathname);
  const targets = [...all, ...variantTargets(all)]
    .filter((target) => only === undefined || only.includes(target.name));
  const loadBefore = await loadAverage();
  try {
    const upstream = await startUpstream(context);
    const results = new Map<string, LoadResult[]>();
    const key = (name: string, c: number) => `${name} @${c}`;
    // Round after round, so a burst of other work spoils one round, not one target.
    for (let round = 0; round < rounds; round++) {
      for (const target of targets) {
        const mosaic = await startMosaicWith(context, upstream.url, target);
        for (const c of connections) {
          await wrk(processes, root, mosaic.url, warmup, c);
          const result = await measured(
            mosaic.child.process.pid,
            () => wrk(processes, root, mosaic.url, duration, c),
          );
          const list = results.get(key(target.name, c)) ?? [];
          list.push(result);
          results.set(key(target.name, c), list);
        }
        await processes.stop(mosaic.child);
      }
    }
    const loadAfter = await loadAverage();
    const median = (values: number[]) => values.sort((a, b) => a - b)[values.length >> 1];
    const p50 = (name: string, c: number) =>
      median((results.get(key(name, c)) ?? []).map((r) => r.p50Ms));
    const rows: string[] = [];
    for (const c of connections) {
      for (const target of targets) {
        const list = results.get(key(target.name, c))!;
        const added = target.name === "no filter" || target.name === "in process"
          ? "—"
          : `${((p50(target.name, c) - p50("in process", c)) * 1000).toFixed(0)} µs`;
        const rounds = list.map((r) => r.p50Ms.toFixed(2)).join(" ");
        rows.push(
          `| ${c} | ${target.name} | ${Math.round(median(list.map((r) => r.requestsPerSec)))} | ${
            median(list.map((r) => r.p50Ms)).toFixed(3)
          } | ${median(list.map((r) => r.p99Ms)).toFixed(3)} | ${added} | ${
            median(list.map((r) => r.cpuUs)).toFixed(0)
          } | ${median(list.map((r) => r.mainCpuUs)).toFixed(0)} | ${rounds} | ${
            list.reduce((n, r) => n + r.non2xx + r.socketErrors, 0)
          } |`,
        );
      }
    }
    console.log(
      [
        `wrk -t2 -d${duration}, ${rounds} round(s), medians over rounds; Mosaic in front of nginx (return 200); the auth filter (User: admin) by URL; load average ${loadBefore} before, ${loadAfter} after, ${navigator.hardwareConcurrency} cores`,
        "",
        "| connections | filter runs | req/s | p50 ms | p99 ms | added to p50 vs in process | CPU µs/req | main thread µs/req | p50 ms of each round | errors |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
        ...rows,
        "",
        "Targets at 50 connections: Worker at most 150 µs, process at most 1 ms added to the median.",
      ].join("\n"),
    );
  } finally {
    await processes.stopAll();
    await Deno.remove(dir, { recursive: true });
  }
}

if (Deno.args[0] === "load") await load();
else await benches();
