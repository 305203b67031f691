/**
 * Loads `type: module` stream filters: a module at a URL, imported at run time under
 * Deno's permissions, found by its conventional export `createStreamFilterFactory`
 * (MOSN's `loadso`, without a `.so`'s build constraints).
 *
 * - A `file:` module is read first: its bytes are checked against `integrity:` and
 *   hashed into the import URL (`?v=<hash>`), so a reload imports a changed file afresh
 *   and an unchanged one not at all. Only the module's own file is versioned: its
 *   relative imports stay cached for the life of the process.
 * - An `http:`/`https:` module with `integrity:` is fetched (`--allow-net=<host:port>`),
 *   checked, and imported versioned the same way. Without a pin it is imported as is
 *   (`--allow-import=<host:port>` only) and Deno's module cache decides when it is
 *   fetched again: not within one process, and not across runs while DENO_DIR keeps it.
 * - Then the runtime the filter's `sandbox:` names loads it (`runtime.ts`): in process
 *   by default; with `sandbox:` the module is not evaluated in this process at all, but
 *   in a Worker (`worker/`) or a child process (`process/`) with exactly the sandbox's
 *   permissions, supervised by `supervisor/`.
 *
 * Every failure is a {@linkcode ModuleLoadError} naming the module URL, the export and
 * the cause; a permission Deno denied names the flag to add.
 *
 * @module
 */

import type { SandboxConfig, StreamFilterConfig } from "../config/types.ts";
import type { CreateStreamFilterFactory } from "../contract/filter.ts";
import { digestModule } from "./integrity.ts";
import { inProcessRuntime } from "./in_process.ts";
import { processRuntime } from "./process/runtime.ts";
import type { FilterRuntime } from "./runtime.ts";
import { ModuleSourceError, readModuleSource } from "./source.ts";
import { loadError, moduleSubject, type Subject } from "./subject.ts";
import { versionedModuleUrl } from "./versioned_url.ts";
import { workerRuntime } from "./worker/runtime.ts";

export { DEFAULT_EXPORT } from "./subject.ts";

/**
 * Imports the module of a `type: module` filter and returns its factory creator.
 *
 * @param filter The filter's config; `module` is an absolute `file:`, `http:` or `https:`
 * URL (the config loader resolves paths against the config file).
 * @returns The module's factory creator. With `sandbox:`, a creator that makes the
 * factory inside a Worker or a child process and returns a forwarding factory.
 * @throws {ModuleLoadError} When the module cannot be read, fetched, verified or
 * imported, lacks the export, or exports something other than a function.
 *
 * @example
 * ```ts ignore
 * import { loadFilterModule } from "./src/module/loader.ts";
 * import { Runtime } from "./src/server/runtime.ts";
 *
 * await Runtime.start(config, { plugins, resolveModule: loadFilterModule });
 * ```
 */
export async function loadFilterModule(
  filter: StreamFilterConfig,
): Promise<CreateStreamFilterFactory> {
  const subject = moduleSubject(filter, "");
  if (filter.module === undefined) throw loadError(subject, "the filter has no module: field");
  const importUrl = await resolveImportUrl(subject, filter.integrity);
  return await runtimeFor(filter.sandbox).load({ filter, subject, importUrl });
}

/**
 * The runtime a filter's `sandbox:` asks for: none, in process; `isolation: worker`, a
 * Worker; `isolation: process`, a child process.
 */
export function runtimeFor(sandbox: SandboxConfig | undefined): FilterRuntime {
  if (sandbox === undefined) return inProcessRuntime;
  return sandbox.isolation === "process" ? processRuntime : workerRuntime;
}

/** The URL to import: versioned by content when the loader read the bytes. */
async function resolveImportUrl(subject: Subject, integrity: string | undefined): Promise<string> {
  const local = subject.url.startsWith("file:");
  if (!local && integrity === undefined) return subject.url;
  let bytes: Uint8Array<ArrayBuffer>;
  try {
    bytes = await readModuleSource(subject.url);
  } catch (error) {
    if (error instanceof ModuleSourceError) throw loadError(subject, error.message, error);
    throw error;
  }
  const digest = await digestModule(bytes);
  if (integrity !== undefined && digest.integrity !== integrity) {
    throw loadError(
      subject,
      `integrity mismatch: expected ${integrity}, got ${digest.integrity} (the module's bytes changed, or the pin is wrong)`,
    );
  }
  return versionedModuleUrl(subject.url, digest.hex);
}
