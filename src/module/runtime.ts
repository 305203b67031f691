/**
 * The seam of where a filter module runs. Every runtime loads a module the same way:
 * given the module's spec (its URL as configured, the URL to import with its version
 * query, its filter config), it returns the creator of the module's factories, and the
 * chain treats what they make like any filter.
 *
 * | runtime | where the module runs | isolation |
 * | --- | --- | --- |
 * | `in_process.ts` | this process, by `import()` | the process's Deno permissions |
 * | `worker/runtime.ts` | a Worker with the sandbox's permissions | permissions, memory |
 * | `process/runtime.ts` | a child `deno run` with the sandbox's flags | process (killable) |
 *
 * The out-of-process runtimes share one supervisor (`supervisor/`): one restart policy,
 * one timeout and ping rule, one error vocabulary, one message protocol and one guest
 * (`guest/main.ts`, the filter side). A runtime adds only its transport and its words.
 * (proxy-wasm and Lua are built-in filters that run their own VMs in process.)
 *
 * @module
 */

import type { StreamFilterConfig } from "../config/types.ts";
import type { CreateStreamFilterFactory } from "../contract/filter.ts";
import type { Subject } from "./subject.ts";

/** What a runtime loads. */
export interface ModuleSpec {
  /** The filter's config (`module`, `export`, `sandbox`, where it is declared). */
  readonly filter: StreamFilterConfig;
  /** The module as every message names it. */
  readonly subject: Subject;
  /** The URL to import: the loader's content-versioned URL when it read the bytes. */
  readonly importUrl: string;
}

/** One place a filter module can run. */
export interface FilterRuntime {
  /** The runtime's name, for messages and tests: `in process`, `Worker`, `process`. */
  readonly name: string;
  /**
   * Loads the module and returns the creator of its factories.
   *
   * @throws {ModuleLoadError} When the module cannot be loaded here or lacks its export.
   */
  load(spec: ModuleSpec): Promise<CreateStreamFilterFactory>;
}
