import { loadFilterModule } from "../../../src/module/loader.ts";
import { defineConformanceSuite } from "../../conformance/suite.ts";

const url = new URL("../../conformance/conformance_filter.ts", import.meta.url).href;

defineConformanceSuite(
  "process sandbox",
  (failureMode, config) => ({
    type: "module",
    name: "conformance",
    module: url,
    failureMode,
    config,
    sandbox: { isolation: "process", permissions: {}, timeoutMs: 5000 },
  }),
  { resolveModule: loadFilterModule },
);
