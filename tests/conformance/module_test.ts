import { loadFilterModule } from "../../src/module/loader.ts";
import { defineConformanceSuite } from "./suite.ts";

const url = new URL("./conformance_filter.ts", import.meta.url).href;

defineConformanceSuite(
  "module by URL",
  (failureMode, config) => ({
    type: "module",
    name: "conformance",
    module: url,
    failureMode,
    config,
  }),
  { resolveModule: loadFilterModule },
);
