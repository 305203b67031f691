/**
 * The conformance filter (`conformance_filter.ts`) as a MOSN plugin, built with the SDK
 * and run under Node.js behind the `plugin` filter. MOSN's plugin convention is one
 * stateless call per phase, so the filter's behaviours are expressed in it this way:
 *
 * - `config.tag` is the plugin's first argument: a route's `per_filter_config` picks a
 *   plugin started with another tag (the `plugin` filter's overridable `plugin:` field);
 * - always: returns header `x-conformance: <tag>`, which the filter sets on the request;
 * - `x-deny: 1`: status 403 with body `denied by conformance filter` (status >= 100
 *   answers with it);
 * - `x-upper-body: 1`: returns the upper-cased body, which replaces the request's;
 * - `x-throw: 1`: throws, which fails the gRPC call (the filter's `failure_mode`).
 *
 * @module
 */

import process from "node:process";
import { serve } from "../../plugin.ts";

const tag = process.argv[2] ?? "none";
const decoder = new TextDecoder();

await serve({
  call(request) {
    const h = request.header;
    if (h["x-throw"] === "1") throw new Error("conformance plugin throws");
    if (h["x-deny"] === "1") return { status: 403, body: "denied by conformance filter" };
    const body = h["x-upper-body"] === "1" ? decoder.decode(request.body).toUpperCase() : "";
    return { header: { "x-conformance": tag }, body };
  },
});
