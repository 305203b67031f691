/**
 * The conformance suite through the Lua runtime: the conformance filter written as an
 * Envoy Lua script, run by the built-in `lua` filter.
 *
 * The suite configures its filter with `{ tag }` on the listener and per route. Envoy's
 * Lua filter has no free-form config for a script; the closest is the route's metadata,
 * which a script reads with `handle:metadata()`. So the runner's parser maps `{ tag }`
 * to `metadata: { tag }` (listener: with the script; per route: a `LuaPerRoute` that
 * keeps the filter's script and gives its own metadata).
 *
 * Skipped: "onDestroy runs exactly once per stream". Envoy's Lua API tells a script
 * nothing when a stream ends (there is no `envoy_on_destroy`), so a script has nothing
 * to count; the filter's own per-stream state is the pooled coroutine, returned after
 * each call (unit and e2e tests cover it).
 *
 * @module
 */

import { registerStreamFilter } from "../../mod.ts";
import { createLuaFilterFactory, parseLuaConfig } from "../../extensions/filters/lua/mod.ts";
import { defineConformanceSuite } from "./suite.ts";

const SCRIPT = `
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

registerStreamFilter(
  "lua_conformance",
  createLuaFilterFactory((config, context) => {
    const tag = (config as { tag?: unknown } | undefined)?.tag;
    if (context.source === "per_filter_config") {
      return parseLuaConfig({ metadata: { tag } }, context);
    }
    return parseLuaConfig({ inline_code: SCRIPT, metadata: { tag } }, context);
  }),
);

defineConformanceSuite(
  "Lua",
  (failureMode, config) => ({ type: "lua_conformance", name: "conformance", failureMode, config }),
  {},
  {
    "onDestroy runs exactly once per stream":
      "Envoy's Lua API has no per-stream destroy callback for a script to count",
  },
);
