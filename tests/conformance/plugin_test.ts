/**
 * The conformance suite's behaviours through the `plugin` filter, backed by a TypeScript
 * plugin built with the SDK and run under Node.js (`conformance_plugin.ts`).
 *
 * `defineConformanceSuite` cannot be called as is: the `plugin` filter speaks MOSN's
 * plugin convention (one stateless call per phase; returned headers set on the request,
 * a status >= 100 answers, an error follows the filter's own `failure_mode`), and the
 * plugin's behaviour is chosen by which plugin the config names, not by a free-form
 * config. So this file defines the subset that convention can express, case by case with
 * the suite's assertions:
 *
 * - adds a request header the upstream sees: as in the suite;
 * - respond() denies with the filter's status and body: as in the suite (status 403);
 * - reads and replaces the request body: as in the suite (`body: true`);
 * - per_filter_config overrides the listener config: the route's override names another
 *   plugin (the same program started with tag `route`), the one field of the filter's
 *   config that a plugin's behaviour hangs on;
 * - a failure under failure_mode closed: **503**, not the suite's 500. The plugin filter
 *   handles a failed call itself, as MOSN's does, and answers 503 `plugin <name>
 *   unavailable`; it never throws to the chain;
 * - a failure under failure_mode open: as in the suite (the request goes through).
 *
 * Not defined, because MOSN's plugin protocol cannot express them:
 *
 * - "metadata set on the request reaches the sender": a plugin call carries headers,
 *   trailers and a body, nothing per stream; the `before_send` call cannot see what the
 *   request's call saw.
 * - "onDestroy runs exactly once per stream": a plugin has no per-stream instances and
 *   is told nothing when a stream ends (MOSN's protocol has no such call), so there is
 *   nothing to count.
 *
 * @module
 */

import assert from "node:assert/strict";
import { registerStreamFilter } from "../../mod.ts";
import { createStreamFilterFactory } from "../../extensions/filters/plugin/mod.ts";
import type { PluginConfig } from "../../src/config/types.ts";
import { PluginManager } from "../../src/plugin/manager.ts";
import { createInProcessProxy } from "../../src/proxy/in_process.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const PLUGIN = new URL("./conformance_plugin.ts", import.meta.url).pathname;
const LABEL = "plugin filter, TypeScript plugin under Node.js";

registerStreamFilter("plugin_conformance", createStreamFilterFactory);

/** What the upstream saw of a request (the suite's echo upstream). */
interface Seen {
  method: string;
  headers: Record<string, string>;
  body: string;
}

async function echo(request: Request): Promise<Response> {
  const seen: Seen = {
    method: request.method,
    headers: Object.fromEntries(request.headers),
    body: await request.text(),
  };
  return Response.json(seen);
}

/**
 * Bundles the plugin into one JavaScript file for Node.js, as the SDK docs recommend,
 * cached under `.tmp/` by the source's modification time (test files run in parallel,
 * so it is written under a private name, then renamed).
 */
async function bundledPlugin(): Promise<string> {
  const stat = await Deno.stat(PLUGIN);
  const dir = `${ROOT}.tmp/plugin-bundles`;
  await Deno.mkdir(dir, { recursive: true });
  const out = `${dir}/conformance_plugin-${stat.mtime?.getTime() ?? 0}.mjs`;
  try {
    await Deno.stat(out);
  } catch {
    const tmp = `${out}.${crypto.randomUUID()}.mjs`;
    const { success, stderr } = await new Deno.Command(Deno.execPath(), {
      args: ["bundle", "--platform", "deno", "--quiet", "-o", tmp, PLUGIN],
      cwd: ROOT,
      stdout: "null",
      stderr: "piped",
    }).output();
    if (!success) throw new Error(`deno bundle failed: ${new TextDecoder().decode(stderr)}`);
    await Deno.rename(tmp, out);
  }
  return out;
}

function pluginConfig(name: string, bundle: string, tag: string): PluginConfig {
  return {
    name,
    command: ["node", bundle, tag],
    args: [],
    env: {},
    cwd: undefined,
    network: "unix",
    startTimeoutMs: 15_000,
    maxProcs: 1,
    position: { file: "<conformance>", line: 0, path: `plugins.${name}` },
  };
}

async function withProxy(
  options: { failureMode?: "open" | "closed"; perRoute?: boolean },
  body: (request: (path: string, init?: RequestInit) => Promise<Response>) => Promise<void>,
): Promise<void> {
  const bundle = await bundledPlugin();
  const plugins = new PluginManager(
    new Map([
      ["conformance-listener", pluginConfig("conformance-listener", bundle, "listener")],
      ["conformance-route", pluginConfig("conformance-route", bundle, "route")],
    ]),
    { healthIntervalMs: 0 },
  );
  try {
    await plugins.start();
    const failureMode = options.failureMode ?? "closed";
    const proxy = await createInProcessProxy({
      plugins,
      streamFilters: [{
        type: "plugin_conformance",
        name: "conformance",
        failureMode,
        config: {
          plugin: "conformance-listener",
          body: true,
          timeout: "5s",
          failure_mode: failureMode,
        },
      }],
      routes: [
        ...(options.perRoute
          ? [{
            match: { prefix: "/special", headers: [] },
            perFilterConfig: {
              conformance: { plugin: "conformance-route", body: true, timeout: "5s" },
            },
          }]
          : []),
        {},
      ],
      upstream: echo,
    });
    try {
      await body((path, init) => proxy.request(path, init));
    } finally {
      await proxy.close();
    }
  } finally {
    await plugins.stop();
  }
}

Deno.test(`conformance (${LABEL}): a filter adds a request header the upstream sees`, () =>
  withProxy({}, async (request) => {
    const response = await request("/");
    assert.equal(response.status, 200);
    const seen: Seen = await response.json();
    assert.equal(seen.headers["x-conformance"], "listener");
  }));

Deno.test(`conformance (${LABEL}): respond() denies with the filter's status and body`, () =>
  withProxy({}, async (request) => {
    const response = await request("/", { headers: { "x-deny": "1" } });
    assert.equal(response.status, 403);
    assert.equal(await response.text(), "denied by conformance filter");
  }));

Deno.test(`conformance (${LABEL}): a filter reads and replaces the request body`, () =>
  withProxy({}, async (request) => {
    const response = await request("/", {
      method: "POST",
      headers: { "x-upper-body": "1" },
      body: "hello body",
    });
    const seen: Seen = await response.json();
    assert.equal(seen.body, "HELLO BODY");
    assert.equal(seen.headers["content-length"], "10");
  }));

Deno.test(`conformance (${LABEL}): per_filter_config on the route overrides the listener config`, () =>
  withProxy({ perRoute: true }, async (request) => {
    const special: Seen = await (await request("/special/x")).json();
    assert.equal(special.headers["x-conformance"], "route");
    const plain: Seen = await (await request("/other")).json();
    assert.equal(plain.headers["x-conformance"], "listener");
  }));

Deno.test(`conformance (${LABEL}): a failure answers 503 under failure_mode closed (MOSN's plugin convention)`, () =>
  withProxy({ failureMode: "closed" }, async (request) => {
    const response = await request("/", { headers: { "x-throw": "1" } });
    assert.equal(response.status, 503);
    assert.equal(await response.text(), "plugin conformance-listener unavailable\n");
  }));

Deno.test(`conformance (${LABEL}): a failure lets the request through under failure_mode open`, () =>
  withProxy({ failureMode: "open" }, async (request) => {
    const response = await request("/", { headers: { "x-throw": "1" } });
    assert.equal(response.status, 200);
    await response.body?.cancel();
  }));
