/**
 * The one runner of the conformance suite: every runtime a filter can run in, in one
 * table, each through the same {@linkcode defineConformanceSuite}. A runtime that cannot
 * express a case skips it with the reason, in its `skip` map; none forks the suite.
 *
 * | runtime | how the conformance filter runs |
 * | --- | --- |
 * | built in | `conformance_filter.ts` registered as a filter type |
 * | module by URL | the same file loaded by URL, in process |
 * | Worker sandbox | the same module in a Worker (`sandbox: {}`) |
 * | process sandbox | the same module in a child process (`isolation: process`) |
 * | Lua | the filter as an Envoy Lua script, run by the built-in `lua` filter |
 * | proxy-wasm | the filter built with `@gcoredev/proxy-wasm-sdk-as`, run by `proxywasm` |
 *
 * (The `plugin` filter speaks MOSN's plugin convention, not the filter API, and answers a
 * failure 503 itself: `plugin_test.ts` runs the subset that convention can express.)
 *
 * Lua: the suite configures its filter with `{ tag }` on the listener and per route.
 * Envoy's Lua filter has no free-form config for a script; the closest is the route's
 * metadata, which a script reads with `handle:metadata()`. So the runner's parser maps
 * `{ tag }` to `metadata: { tag }` (listener: with the script; per route: a `LuaPerRoute`
 * that keeps the filter's script and gives its own metadata).
 *
 * @module
 */

import { registerStreamFilter } from "../../mod.ts";
import { createLuaFilterFactory, parseLuaConfig } from "../../extensions/filters/lua/mod.ts";
import { createStreamFilterFactory as createProxyWasm } from "../../extensions/filters/proxywasm/mod.ts";
import type { InProcessFilter } from "../../src/proxy/in_process.ts";
import { getStreamFilter } from "../../src/filter/registry.ts";
import { loadFilterModule } from "../../src/module/loader.ts";
import { buildGuests } from "../fixtures/wasm/build.ts";
import { createStreamFilterFactory } from "./conformance_filter.ts";
import { defineConformanceSuite, type RunnerOptions } from "./suite.ts";

/** One way of running the conformance filter. */
interface ConformanceRuntime {
  /** The runtime's name in the test names. */
  label: string;
  /** The filter entry, given its failure mode and config. */
  filter(failureMode: "open" | "closed", config: unknown): InProcessFilter;
  /** Options of the in-process proxy, e.g. the module resolver. */
  runner?: RunnerOptions;
  /** Cases the runtime cannot express, with the reason. */
  skip?: Record<string, string>;
}

const MODULE = new URL("./conformance_filter.ts", import.meta.url).href;

const LUA_SCRIPT = `
function envoy_on_request(h)
  local headers = h:headers()
  headers:replace("x-conformance", h:metadata():get("tag") or "none")
  if headers:get("x-throw") == "1" then error("conformance filter throws") end
  if headers:get("x-deny") == "1" then
    h:respond({ [":status"] = "403" }, "denied by conformance filter")
  end
  local meta = headers:get("x-meta")
  if meta then h:streamInfo():dynamicMetadata():set("conformance", "meta", meta) end
  if headers:get("x-upper-body") == "1" then
    local body = h:body()
    body:setBytes(string.upper(body:getBytes(0, body:length())))
  end
end

function envoy_on_response(h)
  local m = h:streamInfo():dynamicMetadata():get("conformance")
  if m and m.meta then h:headers():replace("x-meta", m.meta) end
end
`;

registerStreamFilter("conformance", createStreamFilterFactory);
registerStreamFilter(
  "lua_conformance",
  createLuaFilterFactory((config, context) => {
    const tag = (config as { tag?: unknown } | undefined)?.tag;
    if (context.source === "per_filter_config") {
      return parseLuaConfig({ metadata: { tag } }, context);
    }
    return parseLuaConfig({ inline_code: LUA_SCRIPT, metadata: { tag } }, context);
  }),
);
if (getStreamFilter("proxywasm") === undefined) registerStreamFilter("proxywasm", createProxyWasm);
const guests = await buildGuests();

function moduleFilter(sandbox: InProcessFilter["sandbox"]) {
  return (failureMode: "open" | "closed", config: unknown): InProcessFilter => ({
    type: "module",
    name: "conformance",
    module: MODULE,
    failureMode,
    config,
    ...(sandbox === undefined ? {} : { sandbox }),
  });
}

const RUNTIMES: ConformanceRuntime[] = [
  {
    label: "built in",
    filter: (failureMode, config) => ({ type: "conformance", failureMode, config }),
  },
  {
    label: "module by URL",
    filter: moduleFilter(undefined),
    runner: { resolveModule: loadFilterModule },
  },
  {
    label: "Worker sandbox",
    filter: moduleFilter({ isolation: "worker", permissions: {}, timeoutMs: 5000 }),
    runner: { resolveModule: loadFilterModule },
  },
  {
    label: "process sandbox",
    filter: moduleFilter({ isolation: "process", permissions: {}, timeoutMs: 5000 }),
    runner: { resolveModule: loadFilterModule },
  },
  {
    label: "Lua",
    filter: (failureMode, config) => ({
      type: "lua_conformance",
      name: "conformance",
      failureMode,
      config,
    }),
    skip: {
      // The filter's own per-stream state is the pooled coroutine, returned after each
      // call (unit and e2e tests cover it).
      "onDestroy runs exactly once per stream":
        "Envoy's Lua API has no per-stream destroy callback for a script to count",
    },
  },
  {
    label: "proxy-wasm",
    filter: (failureMode, config) => ({
      type: "proxywasm",
      name: "conformance",
      failureMode,
      // MOSN's rule: the string keys besides vm_config become the plugin configuration.
      config: { vm_config: { engine: "v8", path: guests.conformance }, ...(config as object) },
    }),
  },
];

for (const runtime of RUNTIMES) {
  defineConformanceSuite(runtime.label, runtime.filter, runtime.runner, runtime.skip);
}
