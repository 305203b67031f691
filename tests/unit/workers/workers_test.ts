import assert from "node:assert/strict";
import { compileAccessLogFormat } from "../../../src/log/access_log.ts";
import { parseConfig } from "../../../src/config/load.ts";
import { narrowestPermissionFlags } from "../../../src/config/permissions.ts";
import {
  parseWorkersFlag,
  resolveWorkerCount,
  takeWorkersFlag,
} from "../../../src/workers/count.ts";
import { Counters, sumCounters } from "../../../src/workers/counters.ts";
import type { FromWorker } from "../../../src/workers/protocol.ts";
import { RemotePluginCaller } from "../../../src/workers/remote_plugins.ts";

Deno.test("--workers takes a count or auto, anywhere on the command line", () => {
  assert.deepEqual(takeWorkersFlag(["--workers", "4", "c.yaml"]), { args: ["c.yaml"], workers: 4 });
  assert.deepEqual(takeWorkersFlag(["check", "--workers=auto", "c.yaml"]), {
    args: ["check", "c.yaml"],
    workers: "auto",
  });
  assert.deepEqual(takeWorkersFlag(["c.yaml"]), { args: ["c.yaml"], workers: undefined });
  for (const bad of ["0", "-1", "1.5", "two", undefined]) {
    assert.throws(() => parseWorkersFlag(bad), /--workers expects a number/);
  }
});

Deno.test("workers: auto is the number of cores", () => {
  assert.equal(resolveWorkerCount("auto"), navigator.hardwareConcurrency);
  assert.equal(resolveWorkerCount(3), 3);
});

Deno.test("the config's workers key defaults to 1 and refuses what is not a count or auto", () => {
  assert.equal(parseConfig("{}", "c.yaml").config.workers, 1);
  assert.equal(parseConfig("workers: auto", "c.yaml").config.workers, "auto");
  assert.equal(parseConfig("workers: 8", "c.yaml").config.workers, 8);
  assert.throws(
    () => parseConfig("workers: 0", "c.yaml"),
    /c\.yaml:1: workers: expected at least 1/,
  );
  assert.throws(() => parseConfig("workers: many", "c.yaml"), /c\.yaml:1: workers: expected/);
});

Deno.test("more than one worker needs read of Mosaic's folder, and --unstable-net unless on", () => {
  const { config } = parseConfig("workers: 2", "/tmp/c.yaml");
  const root = new URL("../../..", import.meta.url).pathname.replace(/\/$/, "");
  const one = narrowestPermissionFlags(config, { workers: 1 });
  assert.ok(!one.join(" ").includes(root));
  assert.ok(!one.includes("--unstable-net"));
  const two = narrowestPermissionFlags(config, { workers: 2 });
  assert.ok(two.some((f) => f.startsWith("--allow-read=") && f.includes(root)), two.join(" "));
  assert.ok(two.includes("--unstable-net"));
  assert.ok(
    !narrowestPermissionFlags(config, { workers: 2, unstableNet: true })
      .includes("--unstable-net"),
  );
});

Deno.test("%worker% prints the index of the runtime's worker, 0 by default", () => {
  const record = {
    startTime: 0,
    durationMs: 1,
    method: "GET",
    path: "/",
    protocol: "HTTP/1.1",
    status: 200,
    flag: "",
    bytesSent: 2,
    remoteAddr: { hostname: "127.0.0.1", port: 1 },
    upstreamHost: "",
    requestHeaders: new Headers(),
    listener: "l",
  };
  assert.equal(
    compileAccessLogFormat("w%worker% %response_code%", { worker: 3 })(record),
    "w3 200",
  );
  assert.equal(compileAccessLogFormat("w%worker%")(record), "w0");
});

Deno.test("counters of several workers are summed by name", () => {
  const a = new Counters();
  a.add("plugin_calls", 2);
  a.add("reloads");
  const b = new Counters();
  b.add("plugin_calls");
  assert.deepEqual(sumCounters([a.snapshot(), b.snapshot(), {}]), { plugin_calls: 3, reloads: 1 });
});

Deno.test("a worker's plugin call goes to the main thread by id and gets its answer or error", async () => {
  const sent: FromWorker[] = [];
  const caller = new RemotePluginCaller((m) => sent.push(m), { graceMs: 10 });
  const first = caller.call("checker", { header: { a: "1" } }, { timeoutMs: 1000 });
  const second = caller.call("checker", {});
  assert.equal(sent.length, 2);
  const [one, two] = sent as Extract<FromWorker, { type: "plugin_call" }>[];
  assert.equal(one.name, "checker");
  assert.equal(one.timeoutMs, 1000);
  assert.notEqual(one.id, two.id);
  // Answers may come in any order.
  caller.answer(two.id, undefined, { name: "PluginUnavailableError", message: "down" });
  caller.answer(one.id, { header: {}, trailer: {}, body: new Uint8Array(), status: 0 }, undefined);
  assert.equal((await first).status, 0);
  await assert.rejects(
    second,
    (e: Error) => e.name === "PluginUnavailableError" && e.message === "down",
  );
  // A late answer to a settled call is ignored.
  caller.answer(one.id, undefined, { name: "Error", message: "late" });
});

Deno.test("a worker's plugin call that gets no answer times out", async () => {
  const caller = new RemotePluginCaller(() => {}, { graceMs: 0 });
  await assert.rejects(caller.call("slow", {}, { timeoutMs: 10 }), /did not answer this worker/);
});
