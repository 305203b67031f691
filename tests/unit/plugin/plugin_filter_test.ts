import assert from "node:assert/strict";
import { registerStreamFilter } from "../../../mod.ts";
import {
  createStreamFilterFactory,
  parseDurationMs,
  parsePluginFilterConfig,
} from "../../../extensions/filters/plugin/mod.ts";
import { PluginManager } from "../../../src/plugin/manager.ts";
import { createInProcessProxy } from "../../../src/proxy/in_process.ts";
import { nodeCommand, pluginConfig } from "./helpers.ts";

// The filter under test, registered the way main.ts registers built-ins.
registerStreamFilter("plugin_under_test", createStreamFilterFactory);

/** Echoes what reached the upstream. */
async function upstream(request: Request): Promise<Response> {
  return Response.json({
    added: request.headers.get("x-added"),
    remove: request.headers.get("x-remove"),
    body: await request.text(),
  });
}

async function withPlugin(
  fn: (plugins: PluginManager) => Promise<void>,
): Promise<void> {
  const plugins = new PluginManager(
    new Map([["filter", pluginConfig("filter", await nodeCommand("filter_plugin.ts"))]]),
  );
  try {
    await plugins.start();
    await fn(plugins);
  } finally {
    await plugins.stop();
  }
}

async function proxyWith(plugins: PluginManager, config: Record<string, unknown>) {
  return await createInProcessProxy({
    streamFilters: [{ type: "plugin_under_test", config: { plugin: "filter", ...config } }],
    upstream,
    plugins,
  });
}

Deno.test("plugin filter: returned headers are set or deleted and a returned body replaces it", async () => {
  await withPlugin(async (plugins) => {
    const proxy = await proxyWith(plugins, { body: true });
    try {
      const res = await proxy.request("/a?b=1", {
        method: "POST",
        headers: { "x-remove": "please" },
        body: "hello",
      });
      assert.equal(res.status, 200);
      assert.deepEqual(await res.json(), {
        added: "POST /a?b=1 before_route",
        remove: null,
        body: "HELLO",
      });
    } finally {
      await proxy.close();
    }
  });
});

Deno.test("plugin filter: status -1 answers 403 and status >= 100 answers with the plugin's reply", async () => {
  await withPlugin(async (plugins) => {
    const proxy = await proxyWith(plugins, { phase: "after_route" });
    try {
      const denied = await proxy.request("/", { headers: { "x-deny": "1" } });
      assert.equal(denied.status, 403);
      await denied.body?.cancel();
      const answered = await proxy.request("/", { headers: { "x-answer": "201" } });
      assert.equal(answered.status, 201);
      assert.equal(answered.headers.get("x-from-plugin"), "yes");
      assert.equal(await answered.text(), "answered by plugin in after_route");
      const bad = await proxy.request("/", { headers: { "x-answer": "150" } });
      assert.equal(bad.status, 503);
      await bad.body?.cancel();
    } finally {
      await proxy.close();
    }
  });
});

Deno.test("plugin filter: a timeout answers 503 when closed and goes on when open", async () => {
  await withPlugin(async (plugins) => {
    const closed = await proxyWith(plugins, { timeout: "100ms" });
    const open = await proxyWith(plugins, { timeout: "100ms", failure_mode: "open" });
    try {
      const t0 = Date.now();
      const r1 = await closed.request("/", { headers: { "x-sleep": "5000" } });
      assert.equal(r1.status, 503);
      assert.equal(await r1.text(), "plugin filter unavailable\n");
      assert.ok(Date.now() - t0 < 3000, "the filter did not wait for the plugin's answer");
      const r2 = await open.request("/", { headers: { "x-sleep": "5000" } });
      assert.equal(r2.status, 200);
      assert.deepEqual(await r2.json(), { added: null, remove: null, body: "" });
    } finally {
      await closed.close();
      await open.close();
    }
  });
});

Deno.test("plugin filter: a disabled plugin fails fast and follows failure_mode", async () => {
  await withPlugin(async (plugins) => {
    const closed = await proxyWith(plugins, {});
    const open = await proxyWith(plugins, { failure_mode: "open" });
    try {
      await plugins.disable("filter");
      const t0 = Date.now();
      const r1 = await closed.request("/");
      assert.equal(r1.status, 503);
      await r1.body?.cancel();
      const r2 = await open.request("/");
      assert.equal(r2.status, 200);
      await r2.body?.cancel();
      assert.ok(Date.now() - t0 < 2000, "no waiting for a disabled plugin");
    } finally {
      await closed.close();
      await open.close();
    }
  });
});

Deno.test("plugin filter: with response: true the plugin also sees the response", async () => {
  await withPlugin(async (plugins) => {
    const proxy = await proxyWith(plugins, { response: true });
    try {
      const res = await proxy.request("/");
      assert.equal(res.status, 200);
      assert.equal(res.headers.get("x-response-seen"), "200");
      assert.equal(res.headers.get("x-phase"), "before_send");
      await res.body?.cancel();
    } finally {
      await proxy.close();
    }
  });
});

Deno.test("plugin filter: bad configs are rejected with the field and the reason", () => {
  const bad: [unknown, RegExp][] = [
    [undefined, /config must be a map with at least "plugin"/],
    [{}, /config\.plugin: must name a plugin/],
    [
      { plugin: "x", timout: "1s" },
      /config\.timout: unknown field; the fields are plugin, timeout/,
    ],
    [
      { plugin: "x", timeout: "1 second" },
      /config\.timeout: expected a positive duration such as "2s"/,
    ],
    [{ plugin: "x", timeout: 0 }, /config\.timeout/],
    [{ plugin: "x", failure_mode: "ajar" }, /config\.failure_mode: must be "closed" or "open"/],
    [{ plugin: "x", phase: "before_send" }, /config\.phase: must be one of before_route/],
    [{ plugin: "x", body: "yes" }, /config\.body: must be true or false/],
    [{ plugin: "x", trailers: true }, /config\.trailers: sending trailers is not supported/],
  ];
  for (const [config, message] of bad) {
    assert.throws(() => parsePluginFilterConfig(config), message);
  }
  assert.deepEqual(parsePluginFilterConfig({ plugin: "x" }), {
    plugin: "x",
    timeoutMs: 1000,
    failureMode: "closed",
    phase: "before_route",
    response: false,
    body: false,
  });
  assert.ok(Object.isFrozen(parsePluginFilterConfig({ plugin: "x" })));
});

Deno.test("plugin filter: timeouts read as Go durations or milliseconds", () => {
  assert.equal(parseDurationMs("1s"), 1000);
  assert.equal(parseDurationMs("250ms"), 250);
  assert.equal(parseDurationMs("1m30s"), 90_000);
  assert.equal(parseDurationMs("1.5s"), 1500);
  assert.equal(parseDurationMs("500us"), 0.5);
  assert.equal(parseDurationMs(200), undefined); // a number has no unit
  assert.equal(parseDurationMs("1"), undefined);
  assert.equal(parseDurationMs("s"), undefined);
  assert.equal(parseDurationMs("1s "), undefined);
});
