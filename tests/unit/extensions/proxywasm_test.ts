// Unit tests of the proxywasm filter's pieces: config parsing (MOSN's and Envoy's shapes),
// the export check, shared data with CAS, queues and metrics, and the 0.1.0 module in
// process.
import assert from "node:assert/strict";
import { parseProxyWasmConfig } from "../../../extensions/filters/proxywasm/config.ts";
import { isDataPause, isPause, missingExports } from "../../../extensions/filters/proxywasm/abi.ts";
import * as shared from "../../../extensions/filters/proxywasm/shared.ts";
import { createStreamFilterFactory } from "../../../extensions/filters/proxywasm/mod.ts";
import { getStreamFilter } from "../../../src/filter/registry.ts";
import { registerStreamFilter } from "../../../mod.ts";
import { createInProcessProxy } from "../../../src/proxy/in_process.ts";
import { buildWat } from "../../fixtures/wasm/build.ts";

const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
const at = { source: "config" as const, configFile: "/etc/mosaic/config.yaml" };

Deno.test("proxywasm config: MOSN's shape makes every other string key the plugin configuration", () => {
  const config = parseProxyWasmConfig({
    vm_config: { engine: "wasmer", path: "filters/f.wasm", md5: "A".repeat(32) },
    instance_num: 3,
    root_context_id: 7,
    User: "admin",
    count: 2,
  }, at);
  assert.equal(config.vm?.location, "/etc/mosaic/filters/f.wasm");
  assert.equal(config.vm?.md5, "a".repeat(32));
  assert.equal(config.instanceNum, 3);
  assert.equal(config.rootContextId, 7);
  assert.equal(text(config.pluginConfiguration), '{"User":"admin"}');
});

Deno.test("proxywasm config: Envoy's shape gives configuration, root_id and code.local.filename", () => {
  const config = parseProxyWasmConfig({
    root_id: "my_root",
    vm_config: { vm_id: "vm1", code: { local: { filename: "/w/f.wasm" } }, configuration: "vm" },
    configuration: { "@type": "type.googleapis.com/google.protobuf.StringValue", value: "raw" },
  }, at);
  assert.equal(config.vm?.location, "/w/f.wasm");
  assert.equal(config.rootId, "my_root");
  assert.equal(config.vmId, "vm1");
  assert.equal(text(config.vmConfiguration), "vm");
  assert.equal(text(config.pluginConfiguration), "raw");
  const object = parseProxyWasmConfig(
    { vm_config: { path: "/f.wasm" }, configuration: { a: 1 } },
    at,
  );
  assert.equal(text(object.pluginConfiguration), '{"a":1}');
});

Deno.test("proxywasm config: bad fields are named", () => {
  assert.throws(() => parseProxyWasmConfig({}, at), /vm_config/);
  assert.throws(
    () => parseProxyWasmConfig({ vm_config: { path: "/f.wasm", sha256: "xyz" } }, at),
    (e: Error & { path?: unknown }) => JSON.stringify(e.path) === '["vm_config","sha256"]',
  );
  assert.throws(
    () => parseProxyWasmConfig({ vm_config: { path: "/f.wasm" }, instance_num: 0 }, at),
    /positive integer/,
  );
  // A per_filter_config may leave vm_config out: it keeps the listener's module.
  const route = parseProxyWasmConfig({ tag: "x" }, { ...at, source: "per_filter_config" });
  assert.equal(route.vm, undefined);
});

Deno.test("proxywasm: a module without the required exports lists each missing one", async () => {
  const path = await buildWat(
    new URL("../../fixtures/wasm/missing_exports.wat", import.meta.url),
    new URL("../../fixtures/wasm/build/missing_exports.wasm", import.meta.url),
  );
  const module = await WebAssembly.compile(await Deno.readFile(path));
  assert.deepEqual(missingExports(module), [
    "memory",
    "proxy_on_memory_allocate (or malloc)",
    "proxy_abi_version_0_2_1 (or _0_2_0, _0_1_0)",
    "proxy_on_context_create",
  ]);
});

Deno.test("proxywasm shared data: compare-and-swap refuses a stale cas", () => {
  const enc = new TextEncoder();
  assert.equal(shared.setSharedData("unit", "k", enc.encode("1"), 0), 0);
  const first = shared.getSharedData("unit", "k")!;
  assert.equal(shared.setSharedData("unit", "k", enc.encode("2"), first.cas), 0);
  assert.equal(shared.setSharedData("unit", "k", enc.encode("3"), first.cas), 8);
  assert.equal(text(shared.getSharedData("unit", "k")!.value), "2");
  assert.equal(shared.getSharedData("other-vm", "k"), undefined);
});

Deno.test("proxywasm shared queues: enqueue tells the owner, dequeue takes in order", async () => {
  const ready: number[] = [];
  const token = shared.registerQueue("unit", "q", (t) => ready.push(t));
  assert.equal(shared.resolveQueue("unit", "q"), token);
  shared.enqueue(token, new Uint8Array([1]));
  shared.enqueue(token, new Uint8Array([2]));
  await Promise.resolve();
  assert.deepEqual(ready, [token, token]);
  assert.deepEqual(shared.dequeue(token), new Uint8Array([1]));
  assert.deepEqual(shared.dequeue(token), new Uint8Array([2]));
  assert.equal(shared.dequeue(token), 7);
});

Deno.test("proxywasm metrics: the same name and type give the same id", () => {
  const id = shared.defineMetric(0, "unit_requests")!;
  assert.equal(shared.defineMetric(0, "unit_requests"), id);
  assert.notEqual(shared.defineMetric(1, "unit_requests"), id);
  shared.metricById(id)!.value += 2n;
  assert.equal(shared.wasmMetrics().find((m) => m.name === "unit_requests")?.value, 2n);
});

Deno.test("proxywasm in process: an ABI 0.1.0 module adds a header, answers locally and reads its configuration", async () => {
  if (getStreamFilter("proxywasm") === undefined) {
    registerStreamFilter("proxywasm", createStreamFilterFactory);
  }
  const path = await buildWat(
    new URL("../../fixtures/wasm/abi010.wat", import.meta.url),
    new URL("../../fixtures/wasm/build/abi010.wasm", import.meta.url),
  );
  const proxy = await createInProcessProxy({
    streamFilters: [{
      type: "proxywasm",
      config: { vm_config: { path }, configuration: "cfg" },
    }],
    upstream: (request) => new Response(request.headers.get("x-abi")),
  });
  try {
    let response = await proxy.request("/");
    assert.equal(await response.text(), "0.1.0");
    assert.equal(response.headers.get("x-config"), "cfg");
    response = await proxy.request("/", { headers: { "x-deny": "1" } });
    assert.equal(response.status, 401);
    assert.equal(await response.text(), "abi010 says no");
    response = await proxy.request("/trap");
    assert.equal(response.status, 500);
    await response.body?.cancel();
    response = await proxy.request("/");
    assert.equal(response.status, 200);
    await response.body?.cancel();
  } finally {
    await proxy.close();
  }
});

Deno.test("proxywasm: header status 2 goes on (ContinueAndEndStream), data status 2 pauses (StopIterationAndWatermark)", () => {
  assert.deepEqual([0, 1, 2, 3, 4].map(isPause), [false, true, false, true, true]);
  assert.deepEqual([0, 1, 2, 3].map(isDataPause), [false, true, true, true]);
});
