// End to end: the real proxy (`deno run main.ts config.yaml`) with narrow flags, a real
// upstream and `type: proxywasm` filters: the example filter (AssemblyScript,
// @gcoredev/proxy-wasm-sdk-as, ABI 0.2.1), the conformance guest (http_call, tick,
// shared data, metrics, a trap) and a hand-written ABI 0.1.0 module; start-up errors for
// a bad pin and a module that lacks exports; memory over 10,000 requests.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import {
  type ProxyProcess,
  startProxy,
  startUpstream,
  type Upstream,
  writeConfig,
} from "../../helpers/proxy_process.ts";
import { buildGuests } from "../../fixtures/wasm/build.ts";
import { type FilterListener, filterListenersYaml } from "../fixtures/mosaic_yaml.ts";

const guests = await buildGuests();
const MAIN = new URL("../../../main.ts", import.meta.url).pathname;
const FLAGS = ["--allow-net", "--allow-read", "--allow-env=LOG_TOKENS,LOG_STREAM"];

function config(listeners: FilterListener[], upstream: Upstream): string {
  return filterListenersYaml(listeners, upstream.address);
}

function echoUpstream(): Upstream {
  return startUpstream(async (request) => {
    const url = new URL(request.url);
    if (url.pathname === "/callout") return new Response("from callout", { status: 202 });
    const body = await request.text();
    return Response.json({
      path: url.pathname,
      headers: Object.fromEntries(request.headers),
      body,
      text: "hello from upstream",
    });
  });
}

async function send(
  proxy: ProxyProcess,
  listener: string,
  path: string,
  init?: RequestInit,
): Promise<Response> {
  return await fetch(`http://${proxy.listeners.get(listener)}${path}`, init);
}

/** Runs the proxy expecting it to refuse to start; returns its output. */
async function failedStart(yaml: string): Promise<string> {
  const file = await writeConfig(yaml);
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["run", ...FLAGS, MAIN, file],
    stdin: "null",
    env: { NO_COLOR: "1" },
  }).output();
  assert.notEqual(output.code, 0);
  return new TextDecoder().decode(output.stdout) + new TextDecoder().decode(output.stderr);
}

Deno.test("proxywasm e2e: SDK filters, ABI 0.1.0, http_call, tick and a trap, through the real proxy", async () => {
  const upstream = echoUpstream();
  const yaml = config([
    {
      name: "example",
      filters: `- type: proxywasm
  config:
    vm_config: { engine: wasmer, path: "${guests.example}" }
    instance_num: 2
    greeting: bonjour`,
    },
    {
      name: "conformance",
      filters: `- type: proxywasm
  failure_mode: open
  config:
    vm_config: { path: "${guests.conformance}" }
    root_id: conformance_root
    tag: e2e
    tick: "on"
    http_call_clusters: { callout: "${upstream.address}" }`,
    },
    {
      name: "abi010",
      filters: `- type: proxywasm
  config:
    vm_config: { path: "${guests.abi010}" }
    configuration: "raw config bytes"`,
    },
  ], upstream);
  const proxy = await startProxy(await writeConfig(yaml), { flags: FLAGS });
  try {
    // The example filter: a header with the plugin config's greeting, on the way up and back.
    let response = await send(proxy, "example", "/hello");
    assert.equal(response.status, 200);
    const seen = await response.json();
    assert.equal(seen.headers["x-greeting"], "bonjour");
    assert.equal(response.headers.get("x-wasm"), "bonjour");
    // A local response, without reaching the upstream.
    const before = upstream.requests;
    response = await send(proxy, "example", "/admin/users");
    assert.equal(response.status, 403);
    assert.equal(await response.text(), "blocked by wasm\n");
    assert.equal(upstream.requests, before);
    // A response body rewritten.
    response = await send(proxy, "example", "/shout");
    const text = await response.text();
    assert.match(text, /"TEXT":"HELLO FROM UPSTREAM"/);
    assert.equal(
      response.headers.get("content-length"),
      String(new TextEncoder().encode(text).length),
    );

    // The conformance guest: request body, http_call, properties, shared data, metrics.
    response = await send(proxy, "conformance", "/up", {
      method: "POST",
      headers: { "x-upper-body": "1", "x-call": "1" },
      body: "quiet please",
    });
    const called = await response.json();
    assert.equal(called.body, "QUIET PLEASE");
    assert.equal(called.headers["x-conformance"], "e2e");
    assert.equal(called.headers["x-call-status"], "202");
    assert.equal(called.headers["x-call-body"], "from callout");
    assert.equal(response.headers.get("x-plugin-root-id"), "conformance_root");
    assert.equal(response.headers.get("x-request-path"), "/up");
    const shared = Number(response.headers.get("x-shared"));
    const metric = Number(response.headers.get("x-metric"));
    response = await send(proxy, "conformance", "/again");
    await response.body?.cancel();
    assert.equal(Number(response.headers.get("x-shared")), shared + 1);
    assert.equal(Number(response.headers.get("x-metric")), metric + 1);
    // The tick (every 20 ms): a bounded number of tries, no timing assert.
    let ticks = 0;
    for (let i = 0; i < 200 && ticks === 0; i++) {
      response = await send(proxy, "conformance", "/tick");
      await response.body?.cancel();
      ticks = Number(response.headers.get("x-ticks"));
      if (ticks === 0) await new Promise((r) => setTimeout(r, 10));
    }
    assert.ok(ticks > 0, "proxy_on_tick never ran");
    // A trap under failure_mode open: the request goes through, the instance is replaced.
    response = await send(proxy, "conformance", "/", { headers: { "x-throw": "1" } });
    assert.equal(response.status, 200);
    await response.body?.cancel();
    response = await send(proxy, "conformance", "/");
    assert.equal(response.status, 200);
    assert.equal(response.headers.get("x-created"), "1", "a fresh instance after the trap");
    await response.body?.cancel();

    // ABI 0.1.0: header, local response, proxy_get_configuration, a trap (closed → 500).
    response = await send(proxy, "abi010", "/");
    assert.equal((await response.json()).headers["x-abi"], "0.1.0");
    assert.equal(response.headers.get("x-config"), "raw config bytes");
    response = await send(proxy, "abi010", "/", { headers: { "x-deny": "1" } });
    assert.equal(response.status, 401);
    assert.equal(await response.text(), "abi010 says no");
    response = await send(proxy, "abi010", "/trap");
    assert.equal(response.status, 500);
    await response.body?.cancel();
    response = await send(proxy, "abi010", "/");
    assert.equal(response.status, 200, "the proxy keeps serving after a trap");
    await response.body?.cancel();
    assert.match(proxy.output(), /trapped/);
  } finally {
    await proxy.stop();
    await upstream.close();
  }
});

Deno.test("proxywasm e2e: a module whose hash does not match its pin stops the start-up", async () => {
  const upstream = echoUpstream();
  try {
    const bytes = await Deno.readFile(guests.example);
    const right = createHash("sha256").update(bytes).digest("hex");
    const wrong = "0".repeat(64);
    const output = await failedStart(config([{
      name: "pinned",
      filters: `- type: proxywasm
  config: { vm_config: { path: "${guests.example}", sha256: "${wrong}" } }`,
    }], upstream));
    assert.match(output, new RegExp(`has sha256 ${right}, but vm_config.sha256 pins ${wrong}`));
    const md5 = await failedStart(config([{
      name: "pinned",
      filters: `- type: proxywasm
  config: { vm_config: { path: "${guests.example}", md5: "${"f".repeat(32)}" } }`,
    }], upstream));
    assert.match(md5, /but vm_config.md5 pins f{32}/);
  } finally {
    await upstream.close();
  }
});

Deno.test("proxywasm e2e: a module without the required exports stops the start-up listing them", async () => {
  const upstream = echoUpstream();
  try {
    const output = await failedStart(config([{
      name: "missing",
      filters: `- type: proxywasm
  config: { vm_config: { path: "${guests.missingExports}" } }`,
    }], upstream));
    assert.match(
      output,
      /lacks the exports memory, proxy_on_memory_allocate \(or malloc\), proxy_abi_version_0_2_1 \(or _0_2_0, _0_1_0\), proxy_on_context_create/,
    );
  } finally {
    await upstream.close();
  }
});

function rssKiB(pid: number): number {
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  return Number(/VmRSS:\s+(\d+)/.exec(status)![1]);
}

Deno.test("proxywasm e2e: 10,000 requests through one wasm filter grow the proxy's RSS by under 128 MiB", async () => {
  const upstream = startUpstream(() => new Response("ok"));
  const yaml = config([{
    name: "load",
    filters: `- type: proxywasm
  config: { vm_config: { path: "${guests.example}" }, greeting: load }`,
  }], upstream);
  const proxy = await startProxy(await writeConfig(yaml), { flags: FLAGS });
  try {
    const url = `http://${proxy.listeners.get("load")}/shout`;
    const run = async (count: number) => {
      let next = 0;
      await Promise.all(Array.from({ length: 50 }, async () => {
        while (next < count) {
          next++;
          const response = await fetch(url);
          assert.equal(await response.text(), "OK");
        }
      }));
    };
    await run(1_000); // warm up: JIT, pools, the instance's heap
    const before = rssKiB(proxy.pid);
    await run(10_000);
    const growth = rssKiB(proxy.pid) - before;
    assert.ok(growth < 128 * 1024, `RSS grew by ${growth} KiB`);
  } finally {
    await proxy.stop();
    await upstream.close();
  }
});
