/**
 * The conformance suite through the proxy-wasm runtime: the conformance filter written
 * with `@gcoredev/proxy-wasm-sdk-as` (ABI 0.2.1, `tests/fixtures/wasm/conformance/`),
 * compiled offline here, loaded by the built-in `proxywasm` filter.
 *
 * @module
 */

import { getStreamFilter } from "../../src/filter/registry.ts";
import { registerStreamFilter } from "../../mod.ts";
import { createStreamFilterFactory } from "../../extensions/filters/proxywasm/mod.ts";
import { buildGuests } from "../fixtures/wasm/build.ts";
import { defineConformanceSuite } from "./suite.ts";

if (getStreamFilter("proxywasm") === undefined) {
  registerStreamFilter("proxywasm", createStreamFilterFactory);
}

const guests = await buildGuests();

defineConformanceSuite("proxy-wasm", (failureMode, config) => ({
  type: "proxywasm",
  name: "conformance",
  failureMode,
  // MOSN's rule: the string keys besides vm_config become the plugin configuration.
  config: { vm_config: { engine: "v8", path: guests.conformance }, ...(config as object) },
}));
