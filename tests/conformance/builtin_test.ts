import { registerStreamFilter } from "../../mod.ts";
import { createStreamFilterFactory } from "./conformance_filter.ts";
import { defineConformanceSuite } from "./suite.ts";

registerStreamFilter("conformance", createStreamFilterFactory);

defineConformanceSuite("built in", (failureMode, config) => ({
  type: "conformance",
  failureMode,
  config,
}));
