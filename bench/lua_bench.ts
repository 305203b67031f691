/**
 * What a Lua filter costs per request, against the same filter in TypeScript.
 *
 * ```sh
 * ./node_modules/.bin/deno bench --allow-all bench/lua_bench.ts
 * ```
 *
 * Whole requests go through the in-process proxy (no sockets) with one filter that adds
 * a request header and a response header: once as a TypeScript filter, once as an Envoy
 * Lua script on the built-in `lua` filter. The difference is what the Lua runtime adds
 * per request (two calls into Lua, four host calls). The wrk run at 50 connections that
 * the target is stated for is not written yet.
 *
 * @module
 */

import type { CreateStreamFilterFactory } from "../mod.ts";
import { createStreamFilterFactory as createLua } from "../extensions/filters/lua/mod.ts";
import { registerStreamFilter } from "../src/filter/registry.ts";
import { createInProcessProxy } from "../src/proxy/in_process.ts";

const headerTs: CreateStreamFilterFactory = () => {
  const filter = {
    onReceive(s: { headers: Headers }) {
      s.headers.set("x-added", "1");
      return "continue" as const;
    },
    append(s: { headers: Headers }) {
      s.headers.set("x-added", "1");
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
registerStreamFilter("bench_header_ts", headerTs);
registerStreamFilter("lua", createLua);

const upstream = () => new Response("ok");
const ts = await createInProcessProxy({ upstream, streamFilters: [{ type: "bench_header_ts" }] });
const lua = await createInProcessProxy({
  upstream,
  streamFilters: [{
    type: "lua",
    config: {
      inline_code: `
function envoy_on_request(h) h:headers():replace("x-added", "1") end
function envoy_on_response(h) h:headers():replace("x-added", "1") end`,
    },
  }],
});

async function once(proxy: typeof ts) {
  const response = await proxy.request("/");
  await response.text();
}

Deno.bench("header filter in TypeScript", { group: "header", baseline: true }, () => once(ts));
Deno.bench("the same filter in Lua", { group: "header" }, () => once(lua));
