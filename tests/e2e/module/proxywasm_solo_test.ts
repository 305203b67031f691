// End to end: the real proxy with a `type: proxywasm` filter built from
// `@solo-io/proxy-runtime` (ABI 0.2.0, assemblyscript 0.14), a SDK Mosaic did not write:
// a request header from the plugin configuration, a local response, the `plugin_root_id`
// property (the SDK picks its root context by it) and a response body rewritten.
import assert from "node:assert/strict";
import {
  type ProxyProcess,
  startProxy,
  startUpstream,
  type Upstream,
  writeConfig,
} from "../../helpers/proxy_process.ts";
import { buildSolo } from "../../fixtures/wasm/build.ts";
import { filterListenersYaml } from "../fixtures/mosaic_yaml.ts";

const solo = await buildSolo();
const FLAGS = ["--allow-net", "--allow-read", "--allow-env=LOG_TOKENS,LOG_STREAM"];

function config(upstream: Upstream, filter: string): string {
  // The callers indent their filter items for the listener already.
  return filterListenersYaml(
    [{ name: "solo", filters: filter.replace(/^ {10}/gm, "") }],
    upstream.address,
  );
}

async function send(proxy: ProxyProcess, path: string, init?: RequestInit): Promise<Response> {
  return await fetch(`http://${proxy.listeners.get("solo")}${path}`, init);
}

Deno.test("proxywasm e2e: a @solo-io/proxy-runtime guest (ABI 0.2.0) through the real proxy", async () => {
  const upstream = startUpstream((request) =>
    Response.json({
      headers: Object.fromEntries(request.headers),
      text: "hello from upstream",
    })
  );
  const proxy = await startProxy(
    await writeConfig(config(
      upstream,
      `          - type: proxywasm
            config:
              vm_config: { engine: v8, path: "${solo}" }
              root_id: solo_root
              configuration: "from the plugin configuration"`,
    )),
    { flags: FLAGS },
  );
  try {
    // A request header with the plugin configuration; the root id read back as a property.
    let response = await send(proxy, "/hello");
    assert.equal(response.status, 200);
    const seen = await response.json();
    assert.equal(seen.headers["x-solo"], "from the plugin configuration");
    assert.equal(response.headers.get("x-solo-root"), "solo_root");
    // A local response with its own header, without reaching the upstream.
    const before = upstream.requests;
    response = await send(proxy, "/", { headers: { "x-deny": "1" } });
    assert.equal(response.status, 403);
    assert.equal(response.headers.get("x-denied-by"), "solo");
    assert.equal(await response.text(), "denied by solo");
    assert.equal(upstream.requests, before);
    // A response body rewritten, its length following.
    response = await send(proxy, "/", { headers: { "x-shout": "1" } });
    assert.equal(response.status, 200);
    const text = await response.text();
    assert.match(text, /"TEXT":"HELLO FROM UPSTREAM"/);
    assert.match(text, /"X-SOLO":"FROM THE PLUGIN CONFIGURATION"/);
    const length = response.headers.get("content-length");
    if (length !== null) assert.equal(length, String(new TextEncoder().encode(text).length));
    // Many requests on one instance: the SDK's context map and heap stay sound.
    for (let i = 0; i < 200; i++) {
      response = await send(proxy, `/n${i}`);
      assert.equal((await response.json()).headers["x-solo"], "from the plugin configuration");
    }
  } finally {
    await proxy.stop();
    await upstream.close();
  }
});
