import assert from "node:assert/strict";
import { parseConfig } from "../../src/config/load.ts";
import { formatReport, goals, medianRound, mosaicRatios, type TargetResult } from "./report.ts";
import { mosaicConfig } from "./servers.ts";
import { durationSeconds, parseWrkOutput, type WrkResult } from "./wrk.ts";

const WRK_OUTPUT = `Running 5s test @ http://127.0.0.1:1234/
  2 threads and 50 connections
  10000 requests in 5.00s, 1.00MB read
Requests/sec:   2000.00
MOSAIC_WRK {"requests":10000,"duration_us":5000000,"bytes":1000000,"p50_us":250.5,` +
  `"p90_us":800.0,"p99_us":2500.0,"max_us":9000.0,"mean_us":300.0,"connect_errors":0,` +
  `"read_errors":1,"write_errors":0,"status_errors":3,"timeouts":2}
`;

Deno.test("parseWrkOutput reads the lua summary line", () => {
  const result = parseWrkOutput(WRK_OUTPUT);
  assert.equal(result.requests, 10000);
  assert.equal(result.requestsPerSec, 2000);
  assert.equal(result.p50Ms, 0.2505);
  assert.equal(result.p99Ms, 2.5);
  assert.equal(result.socketErrors, 3);
  assert.equal(result.non2xx, 3);
});

Deno.test("parseWrkOutput rejects output without the summary", () => {
  assert.throws(() => parseWrkOutput("unable to connect to 127.0.0.1:1\n"), {
    name: "WrkError",
  });
});

Deno.test("durationSeconds reads wrk durations", () => {
  assert.equal(durationSeconds("10s"), 10);
  assert.equal(durationSeconds("2m"), 120);
  assert.equal(durationSeconds("30"), 30);
  assert.throws(() => durationSeconds("ten"), RangeError);
});

function measured(requestsPerSec: number, p99Ms: number): WrkResult {
  return {
    requests: requestsPerSec,
    requestsPerSec,
    p50Ms: p99Ms / 4,
    p90Ms: p99Ms / 2,
    p99Ms,
    maxMs: p99Ms * 2,
    socketErrors: 0,
    non2xx: 0,
  };
}

const RESULTS: TargetResult[] = [
  { target: "nginx", description: "", result: measured(100_000, 1) },
  { target: "floor", description: "", result: measured(50_000, 2) },
  { target: "http-proxy", description: "", result: measured(10_000, 8) },
  { target: "mosaic", description: "", error: "exited with code 1" },
  { target: "mosaic-demo", description: "", result: measured(40_000, 2.5) },
];

Deno.test("ratios compare each measured Mosaic target to nginx and http-proxy", () => {
  assert.deepEqual(mosaicRatios(RESULTS), [
    { target: "mosaic-demo", toNginx: 0.4, toHttpProxy: 4, toFloor: 0.8 },
  ]);
  assert.deepEqual(goals(RESULTS).map((g) => g.met), [false, false, true]);
});

Deno.test("the report shows the table, the goals and why a target failed", () => {
  const report = formatReport(RESULTS);
  assert.match(
    report,
    /\| mosaic-demo \|\s+40,000 \|\s+625 µs \|\s+2\.50 ms \|\s+0 \|\s+0\.80 \|\s+0\.40 \|\s+4\.00 \|/,
  );
  assert.match(report, /req\/s ≥ 0\.5 × nginx: 0\.40 × nginx \(missed\)/);
  assert.match(report, /- mosaic: exited with code 1/);
});

Deno.test("the bench's Mosaic config loads: no access log, warn level, demo filter", () => {
  const text = mosaicConfig(18080, "http://127.0.0.1:18081/", [
    { type: "demo", config: { User: "admin" } },
  ]);
  const { config, warnings } = parseConfig(text, "bench.yaml");
  assert.deepEqual(warnings, []);
  assert.equal(config.logLevel, "warning");
  const listener = config.listeners[0];
  assert.deepEqual(listener.accessLogs, []);
  assert.equal(listener.streamFilters[0].type, "demo");
  assert.equal(
    config.clusters.get("upstream")?.hosts[0].address,
    "127.0.0.1:18081",
  );
});

Deno.test("medianRound reports the median round, or a failed one", () => {
  const round = (rps: number): TargetResult => ({
    target: "nginx",
    description: "",
    result: measured(rps, 1),
  });
  const three = medianRound([round(30), round(10), round(20)]);
  assert.equal(three.result?.requestsPerSec, 20);
  assert.deepEqual(three.rounds, [30, 10, 20]);
  assert.equal(medianRound([round(30), round(10)]).result?.requestsPerSec, 10);
  const failed = medianRound([round(30), { target: "nginx", description: "", error: "boom" }]);
  assert.equal(failed.error, "round 2 of 2: boom");
  assert.equal(medianRound([round(5)]).rounds, undefined);
});
