/**
 * The load benchmark's other shapes, each Mosaic against nginx in the same run (run it with
 * `deno task bench:scenarios`, which installs the tools first):
 *
 * - `big`: one 1 GiB response streamed through the proxy (curl to /dev/null): MB/s and the
 *   proxy's peak RSS;
 * - `c1000`: wrk with 1,000 keep-alive connections: req/s, p99 and the proxy's RSS after;
 * - `h2`: h2load over h2c (prior knowledge), 50 connections × 10 streams: req/s.
 *
 * Environment: `BENCH_SCENARIOS` (comma-separated; default all), `BENCH_DURATION` (wrk's,
 * default `10s`). Every process it started is stopped before it exits.
 *
 * @module
 */

import { loadAverage, ProcessGroup, stopOnSignal, warnIfBusy } from "./load/processes.ts";
import {
  type BenchContext,
  bigFilePath,
  type Started,
  startMosaic,
  startNginxProxy,
  startUpstream,
} from "./load/servers.ts";
import { runWrk } from "./load/wrk.ts";

const GIB = 1024 ** 3;
const DEMO = [{ type: "demo", config: { User: "admin" } }];

/** One proxy's figures in one scenario. */
interface Row {
  scenario: string;
  proxy: string;
  figure: string;
  rssMb: number | undefined;
  /** The number the proxies are compared by (higher is better). */
  value: number;
}

/** Peak (`VmHWM`) or current (`VmRSS`) resident memory of a process and its children, MB. */
async function residentMb(pid: number, field: "VmHWM" | "VmRSS"): Promise<number | undefined> {
  let total = 0;
  const pids = [pid];
  try {
    const children = await Deno.readTextFile(`/proc/${pid}/task/${pid}/children`);
    pids.push(...children.trim().split(/\s+/).filter((p) => p !== "").map(Number));
    for (const p of pids) {
      const status = await Deno.readTextFile(`/proc/${p}/status`);
      const match = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(status);
      if (match !== null) total += Number(match[1]) / 1024;
    }
  } catch {
    return undefined;
  }
  return total;
}

async function run(command: string, args: string[]): Promise<string> {
  const output = await new Deno.Command(command, { args, stdout: "piped", stderr: "piped" })
    .output();
  const text = new TextDecoder().decode(output.stdout);
  if (!output.success) {
    throw new Error(`${command} failed: ${new TextDecoder().decode(output.stderr).trim()}`);
  }
  return text;
}

async function big(proxy: string, started: Started): Promise<Row> {
  const out = await run("curl", [
    "-s",
    "-o",
    "/dev/null",
    "--max-time",
    "120",
    "-H",
    "User: admin",
    "-w",
    "%{speed_download} %{size_download} %{http_code}",
    `${started.url}big`,
  ]);
  const [speed, size, code] = out.trim().split(" ").map(Number);
  if (code !== 200 || size !== GIB) {
    throw new Error(`${proxy} answered ${code} with ${size} bytes instead of 1 GiB`);
  }
  const mbPerSec = speed / 1e6;
  return {
    scenario: "big",
    proxy,
    figure: `${mbPerSec.toFixed(0)} MB/s`,
    rssMb: await residentMb(started.child.process.pid, "VmHWM"),
    value: mbPerSec,
  };
}

async function c1000(
  context: BenchContext,
  proxy: string,
  started: Started,
  duration: string,
): Promise<Row> {
  await runWrk(context.processes, context.root, started.url, "2s", 1000);
  const result = await runWrk(context.processes, context.root, started.url, duration, 1000);
  const errors = result.socketErrors + result.non2xx;
  return {
    scenario: "c1000",
    proxy,
    figure: `${Math.round(result.requestsPerSec).toLocaleString("en-US")} req/s, p99 ${
      result.p99Ms.toFixed(1)
    } ms${errors > 0 ? `, ${errors} errors` : ""}`,
    rssMb: await residentMb(started.child.process.pid, "VmRSS"),
    value: result.requestsPerSec,
  };
}

async function h2(proxy: string, started: Started): Promise<Row> {
  const out = await run("h2load", [
    "-c50",
    "-m10",
    "-n200000",
    "-H",
    "User: admin",
    started.url,
  ]);
  const match = /finished in [\d.]+\w+, ([\d.]+) req\/s/.exec(out);
  const done = /requests: \d+ total, \d+ started, (\d+) done, (\d+) succeeded/.exec(out);
  if (match === null || done === null) throw new Error(`h2load printed no summary:\n${out}`);
  const failed = Number(done[1]) - Number(done[2]);
  return {
    scenario: "h2",
    proxy,
    figure: `${Math.round(Number(match[1])).toLocaleString("en-US")} req/s${
      failed > 0 ? `, ${failed} failed` : ""
    }`,
    rssMb: await residentMb(started.child.process.pid, "VmRSS"),
    value: Number(match[1]),
  };
}

/** Runs the scenarios; returns the exit code (1 when one failed). */
export async function main(): Promise<number> {
  const root = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
  const duration = Deno.env.get("BENCH_DURATION") ?? "10s";
  const wanted = (Deno.env.get("BENCH_SCENARIOS") ?? "big,c1000,h2").split(",").map((s) =>
    s.trim()
  );
  const processes = new ProcessGroup();
  const dir = await Deno.makeTempDir({ prefix: "mosaic-bench-" });
  const context: BenchContext = { processes, dir, root };
  const signals = stopOnSignal("bench", processes, dir);
  const loadBefore = await warnIfBusy("bench", "other work will lower every figure");
  const rows: Row[] = [];
  const failures: string[] = [];
  const attempt = async (label: string, measure: () => Promise<Row>) => {
    console.error(`bench: ${label}`);
    try {
      rows.push(await measure());
    } catch (error) {
      failures.push(`${label}: ${error instanceof Error ? error.message : String(error)}`);
    }
  };
  try {
    if (wanted.includes("big")) {
      // Sparse: the upstream reads zeros from the page cache, so the proxy is what is timed.
      const file = await Deno.open(bigFilePath(context), { create: true, write: true });
      await file.truncate(GIB);
      file.close();
      // nginx's worker runs as another user when started by root: let it read the file.
      await Deno.chmod(dir, 0o755);
      await Deno.chmod(bigFilePath(context), 0o644);
    }
    const upstream = await startUpstream(context);
    const proxies: [string, (http2: boolean) => Promise<Started>][] = [
      ["nginx", (http2) => startNginxProxy(context, upstream.url, 1, http2)],
      [
        "mosaic-demo",
        (http2) =>
          startMosaic(context, `mosaic-${http2 ? "h2" : "h1"}`, upstream.url, DEMO, {
            downstreamProtocol: http2 ? "Http2" : "Http1",
          }),
      ],
    ];
    for (const scenario of ["big", "c1000", "h2"].filter((s) => wanted.includes(s))) {
      for (const [proxy, start] of proxies) {
        if (signals.interrupted) break;
        let started: Started | undefined;
        await attempt(`${scenario}: ${proxy}`, async () => {
          started = await start(scenario === "h2");
          if (scenario === "big") return await big(proxy, started);
          if (scenario === "c1000") return await c1000(context, proxy, started, duration);
          return await h2(proxy, started);
        });
        if (started !== undefined) await processes.stop(started.child);
      }
    }
  } finally {
    await processes.stopAll();
    signals.remove();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
  if (signals.interrupted) return await new Promise<number>(() => {});

  console.log("| scenario | proxy | figure | RSS | ÷ nginx |");
  console.log("| --- | --- | ---: | ---: | ---: |");
  for (const row of rows) {
    const nginx = rows.find((r) => r.scenario === row.scenario && r.proxy === "nginx");
    const ratio = row.proxy === "nginx" || nginx === undefined
      ? ""
      : (row.value / nginx.value).toFixed(2);
    const rss = row.rssMb === undefined ? "–" : `${row.rssMb.toFixed(0)} MB`;
    console.log(`| ${row.scenario} | ${row.proxy} | ${row.figure} | ${rss} | ${ratio} |`);
  }
  console.log(`\nload average before ${loadBefore ?? "?"}, after ${await loadAverage() ?? "?"}`);
  for (const failure of failures) console.log(`failed: ${failure}`);
  return failures.length > 0 ? 1 : 0;
}

if (import.meta.main) Deno.exit(await main());
