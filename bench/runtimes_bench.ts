/**
 * What a filter costs per request in each runtime, through the real proxy under load.
 *
 * ```sh
 * ./node_modules/.bin/deno run --allow-all bench/runtimes_bench.ts
 * ```
 *
 * nginx (`return 200`) is the upstream; one Mosaic process (`main.ts`) per target runs the
 * same filter, which adds the request header `x-greeting` and the response header
 * `x-wasm`:
 * - TypeScript: a module filter (`type: module`, this very file, which exports
 *   `createStreamFilterFactory`), the baseline;
 * - wasm: `examples/wasm_filter` (AssemblyScript, `@gcoredev/proxy-wasm-sdk-as`, ABI
 *   0.2.1; on `/` it only adds those two headers), built by the test set-up;
 * - wasm (WAT): `tests/fixtures/wasm/bench_header.wat`, the same two headers by hand, so
 *   that what the host adds shows apart from what the SDK's guest code costs;
 * - Lua: the same two headers from an Envoy Lua script;
 * - no filter, for reference.
 *
 * wrk (`-t2 -c50`, `bench/load/wrk.ts`) loads each in turn, round after round (the
 * targets interleaved so that load from other work on the machine hits all alike); each
 * round's p50 of wasm and Lua minus the TypeScript p50 of the same round is what the
 * runtime adds, and the median of the rounds is printed, with the load average before
 * and after (the machine may be shared: compare rows of one run). The proxy is saturated at
 * 50 connections, so its p50 is mostly queueing (about 50 times the time a request
 * costs): the time per request, 1 / throughput, added to TypeScript's is printed too, and
 * the proxy's CPU time per request (from `/proc`), which other work on the machine
 * disturbs least. Targets: wasm at most
 * 10 µs, Lua at most 20 µs added to the median. `BENCH_DURATION` (5s), `BENCH_WARMUP`
 * (1s), `BENCH_ROUNDS` (3). Needs `wrk`, `nginx`, `node` and `npm` (`bash bench/run.sh
 * --install-only` installs wrk and nginx).
 *
 * @module
 */

import type { CreateStreamFilterFactory, RequestStream, ResponseStream } from "../mod.ts";
import { buildGuests } from "../tests/fixtures/wasm/build.ts";
import { type Child, loadAverage, ProcessGroup } from "./load/processes.ts";
import { startMosaic, startUpstream } from "./load/servers.ts";
import { runWrk, type WrkResult } from "./load/wrk.ts";

/** The TypeScript target: a module filter that adds the two headers the others add. */
export const createStreamFilterFactory: CreateStreamFilterFactory = () => {
  const filter = {
    onReceive(s: RequestStream) {
      s.headers.append("x-greeting", "bench");
      return "continue" as const;
    },
    append(s: ResponseStream) {
      s.headers.append("x-wasm", "bench");
      return "continue" as const;
    },
  };
  return {
    createFilterChain(chain) {
      chain.addReceiver(filter, "before_route");
      chain.addSender(filter);
    },
  };
};

const LUA = `
function envoy_on_request(handle)
  handle:headers():add("x-greeting", "bench")
end
function envoy_on_response(handle)
  handle:headers():add("x-wasm", "bench")
end
`;

interface Target {
  name: string;
  filters: unknown[];
}

/** CPU time (user + system) a process has used so far, in µs (Linux `/proc`). */
function cpuMicros(pid: number): number {
  const fields = Deno.readTextFileSync(`/proc/${pid}/stat`).split(") ")[1].split(" ");
  const ticks = Number(fields[11]) + Number(fields[12]);
  return ticks * 10_000; // USER_HZ is 100 on Linux
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

async function main(): Promise<void> {
  const duration = Deno.env.get("BENCH_DURATION") ?? "5s";
  const warmup = Deno.env.get("BENCH_WARMUP") ?? "1s";
  const rounds = Number(Deno.env.get("BENCH_ROUNDS") ?? "3");
  const { example, benchHeader } = await buildGuests();
  const targets: Target[] = [
    { name: "no filter", filters: [] },
    { name: "TypeScript", filters: [{ type: "module", module: import.meta.url }] },
    {
      name: "wasm",
      filters: [{
        type: "proxywasm",
        config: { vm_config: { path: example }, greeting: "bench" },
      }],
    },
    {
      name: "wasm (WAT)",
      filters: [{ type: "proxywasm", config: { vm_config: { path: benchHeader } } }],
    },
    { name: "Lua", filters: [{ type: "lua", config: { inline_code: LUA } }] },
  ];
  const processes = new ProcessGroup();
  const dir = await Deno.makeTempDir({ prefix: "mosaic-runtimes-bench-" });
  const root = new URL("../", import.meta.url).pathname;
  const context = { processes, dir, root };
  const results = new Map<string, WrkResult[]>(targets.map((t) => [t.name, []]));
  const cpu = new Map<string, number[]>(targets.map((t) => [t.name, []]));
  try {
    const upstream = await startUpstream(context);
    const started = new Map<string, { url: string; child: Child }>();
    for (const target of targets) {
      const name = `mosaic-${target.name.replaceAll(" ", "-")}`;
      started.set(target.name, await startMosaic(context, name, upstream.url, target.filters));
    }
    const loadBefore = await loadAverage();
    for (let round = 1; round <= rounds; round++) {
      for (const target of targets) {
        const { url, child } = started.get(target.name)!;
        if (round === 1) await runWrk(processes, root, url, warmup);
        const cpuBefore = cpuMicros(child.process.pid);
        const result = await runWrk(processes, root, url, duration);
        cpu.get(target.name)!.push((cpuMicros(child.process.pid) - cpuBefore) / result.requests);
        if (result.non2xx > 0 || result.socketErrors > 0) {
          throw new Error(
            `${target.name}: ${result.non2xx} non-2xx answers, ${result.socketErrors} socket errors`,
          );
        }
        results.get(target.name)!.push(result);
        console.error(
          `round ${round} ${target.name}: p50 ${(result.p50Ms * 1000).toFixed(0)} µs, ${
            result.requestsPerSec.toFixed(0)
          } req/s`,
        );
      }
    }
    const loadAfter = await loadAverage();
    const ts = results.get("TypeScript")!;
    const added = (name: string) =>
      median(results.get(name)!.map((r, i) => (r.p50Ms - ts[i].p50Ms) * 1000));
    // The proxy is saturated at 50 connections: a request's p50 is mostly its wait behind
    // the 49 others, so the p50 grows by about 50 times the time each request costs. That
    // time itself is 1 / throughput.
    const service = (name: string) =>
      median(
        results.get(name)!.map((r, i) => 1e6 / r.requestsPerSec - 1e6 / ts[i].requestsPerSec),
      );
    const tsCpu = cpu.get("TypeScript")!;
    const cpuAdded = (name: string) => median(cpu.get(name)!.map((c, i) => c - tsCpu[i]));
    const rows = targets.map((target) => {
      const runs = results.get(target.name)!;
      return {
        target: target.name,
        "req/s": Math.round(median(runs.map((r) => r.requestsPerSec))),
        "p50 µs": Math.round(median(runs.map((r) => r.p50Ms * 1000))),
        "p99 µs": Math.round(median(runs.map((r) => r.p99Ms * 1000))),
        "p50 added to TypeScript, µs": target.name === "TypeScript"
          ? 0
          : Math.round(added(target.name)),
        "1/throughput added, µs": target.name === "TypeScript"
          ? 0
          : Math.round(service(target.name)),
        "proxy CPU µs/req": Math.round(median(cpu.get(target.name)!)),
        "CPU added, µs": Math.round(cpuAdded(target.name)),
      };
    });
    console.log(
      `wrk -t2 -c50 -d${duration}, ${rounds} interleaved rounds, medians over rounds; Mosaic in front of nginx (return 200); load average ${loadBefore} before, ${loadAfter} after, ${navigator.hardwareConcurrency} cores`,
    );
    console.table(rows);
    const wasm = added("wasm");
    const wat = added("wasm (WAT)");
    const lua = added("Lua");
    console.log(
      `added p50: wasm ${wasm.toFixed(0)} µs, hand-written wasm ${
        wat.toFixed(0)
      } µs (target ≤ 10 µs: ${Math.min(wasm, wat) <= 10 ? "met" : "missed"}), Lua ${
        lua.toFixed(0)
      } µs (target ≤ 20 µs: ${
        lua <= 20 ? "met" : "missed"
      }); time per request (1/throughput) added: wasm ${
        service("wasm").toFixed(0)
      } µs, hand-written wasm ${service("wasm (WAT)").toFixed(0)} µs, Lua ${
        service("Lua").toFixed(0)
      } µs; proxy CPU per request added: wasm ${
        cpuAdded("wasm").toFixed(0)
      } µs, hand-written wasm ${cpuAdded("wasm (WAT)").toFixed(0)} µs, Lua ${
        cpuAdded("Lua").toFixed(0)
      } µs`,
    );
  } finally {
    await processes.stopAll();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

if (import.meta.main) await main();
