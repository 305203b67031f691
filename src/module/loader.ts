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
 * - With `sandbox:`, the module is not evaluated in this process at all: a Worker with
 *   exactly the sandbox's permissions imports it (see `sandbox/entry.ts`).
 *
 * Every failure is a {@linkcode ModuleLoadError} naming the module URL, the export and
 * the cause; a permission Deno denied names the flag to add.
 *
 * @module
 */

import type { StreamFilterConfig } from "../config/types.ts";
import type { CreateStreamFilterFactory, StreamFilterFactory } from "../filter/api.ts";
import { describeImportFailure } from "./errors.ts";
import { digestModule } from "./integrity.ts";
import { contentTypeProblem, ModuleSourceError, readModuleSource } from "./source.ts";
import { versionedModuleUrl } from "./versioned_url.ts";
import { SANDBOX_START_TIMEOUT_MS, SandboxedFilterFactory } from "./sandbox/factory.ts";
import { workerPermissions } from "./sandbox/permissions.ts";
import { SandboxWorker, type SandboxWorkerSpec } from "./sandbox/worker.ts";
import { SandboxWorkerError } from "./sandbox/errors.ts";
import { filterLogger } from "../log/logger.ts";
import { loadProcessSandboxed } from "./process/load.ts";
import { withDeadline } from "./proxy/start.ts";
import { exportProblem, loadError, moduleSubject, spare, type Subject } from "./subject.ts";

export { DEFAULT_EXPORT } from "./subject.ts";

/** How long the loader's Worker waits to be adopted by the factory before it is ended. */
const SPARE_WORKER_MS = 10_000;

/**
 * Imports the module of a `type: module` filter and returns its factory creator.
 *
 * @param filter The filter's config; `module` is an absolute `file:`, `http:` or `https:`
 * URL (the config loader resolves paths against the config file).
 * @returns The module's factory creator. With `sandbox:`, a creator that makes the
 * factory inside a Worker and returns a forwarding factory.
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
  if (filter.sandbox?.isolation === "process") return await loadProcessSandboxed(filter, importUrl);
  if (filter.sandbox !== undefined) return await loadSandboxed(subject, importUrl, filter);

  let namespace: Record<string, unknown>;
  try {
    namespace = await import(importUrl);
  } catch (error) {
    throw loadError(subject, await importFailure(error, subject.url), error);
  }
  checkExport(subject, Object.keys(namespace), typeof namespace[subject.exportName]);
  return guardFactory(subject, namespace[subject.exportName] as CreateStreamFilterFactory);
}

/**
 * Why the import failed. A syntax error in a remote TypeScript module, or Deno's "Unknown
 * module" (how a Worker's import words it), is explained by the content type its server
 * sent when that is the cause.
 */
async function importFailure(error: unknown, url: string): Promise<string> {
  const reason = describeImportFailure(error, url);
  if (!reason.startsWith("syntax error: ") && !UNKNOWN_MODULE.test(reason)) return reason;
  return (await contentTypeProblem(url, reason)) ?? reason;
}

const UNKNOWN_MODULE = /but identified an? Unknown module/;

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

function checkExport(subject: Subject, exports: string[], kind: string): void {
  const problem = exportProblem(subject, exports, kind);
  if (problem !== undefined) throw loadError(subject, problem);
}

/** Names the module in what its factory throws or wrongly returns. */
function guardFactory(
  subject: Subject,
  create: CreateStreamFilterFactory,
): CreateStreamFilterFactory {
  const guarded: CreateStreamFilterFactory = async (config, context) => {
    let factory: StreamFilterFactory;
    try {
      factory = await create(config, context);
    } catch (error) {
      const cause = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
      throw new Error(`${factoryLabel(subject)} threw ${cause}`, { cause: error });
    }
    if (
      factory === null || typeof factory !== "object" ||
      typeof factory.createFilterChain !== "function"
    ) {
      throw new TypeError(
        `${factoryLabel(subject)} returned ${
          describeValue(factory)
        }, expected an object with a createFilterChain(chain) method`,
      );
    }
    return factory;
  };
  // The module's config parser runs at load, for its config and every per_filter_config.
  const parse = (create as { parseConfig?: unknown }).parseConfig;
  if (typeof parse === "function") guarded.parseConfig = parse.bind(create);
  return guarded;
}

async function loadSandboxed(
  subject: Subject,
  importUrl: string,
  filter: StreamFilterConfig,
): Promise<CreateStreamFilterFactory> {
  const sandbox = filter.sandbox!;
  if (sandbox.isolation !== "worker") {
    throw loadError(
      subject,
      `sandbox isolation "${sandbox.isolation}" is not available; use isolation: worker`,
    );
  }
  const spec: SandboxWorkerSpec = {
    importUrl,
    module: subject.url,
    exportName: subject.exportName,
    permissions: workerPermissions(sandbox.permissions),
    filterName: filter.name,
  };
  let worker: SandboxWorker;
  try {
    worker = new SandboxWorker(spec, 1, {
      logger: filterLogger(filter.name),
      plugins: { call: () => Promise.reject(new Error("The sandbox is still loading")) },
      timedOut() {},
      crashed(self, message) {
        self.terminate(new SandboxWorkerError(message));
      },
    });
  } catch (error) {
    throw loadError(subject, refusedWorker(error, spec.permissions), error);
  }
  let loaded;
  try {
    loaded = await withDeadline(
      SANDBOX_START_TIMEOUT_MS,
      () => new Error(`the sandbox did not load it within ${SANDBOX_START_TIMEOUT_MS} ms`),
      (deadline) => Promise.race([worker.loaded(), deadline]),
    );
  } catch (error) {
    worker.terminate(error instanceof Error ? error : new Error(String(error)));
    const message = error instanceof Error ? error.message : String(error);
    throw loadError(subject, await importFailure(message, subject.url), error);
  }
  try {
    checkExport(subject, loaded.exports, loaded.kind);
  } catch (error) {
    worker.terminate(error as Error);
    throw error;
  }

  // The Worker that imported the module serves the first factory; it is ended if no
  // factory adopts it (the build stopped at another filter).
  const adopt = spare(
    worker,
    SPARE_WORKER_MS,
    (kept) => kept.terminate(new SandboxWorkerError("The loader's Worker was not adopted")),
  );
  return async (config, context) => {
    const adopted = adopt();
    try {
      return await SandboxedFilterFactory.create(spec, config, context, {
        worker: adopted,
        timeoutMs: sandbox.timeoutMs,
      });
    } catch (error) {
      const cause = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
      throw new Error(`${factoryLabel(subject)} in its sandbox failed: ${cause}`, { cause: error });
    }
  };
}

/** Words Deno's refusal to start a Worker, naming the flags the process lacks. */
function refusedWorker(error: unknown, permissions: Deno.PermissionOptionsObject): string {
  const message = error instanceof Error ? error.message : String(error);
  const flags = Object.entries(permissions).flatMap(([name, value]) =>
    value === true
      ? [`--allow-${name}`]
      : Array.isArray(value) && value.length > 0
      ? [`--allow-${name}=${value.join(",")}`]
      : []
  );
  const hint = flags.length === 0
    ? ""
    : `; a sandbox gets no more than the process has: run Mosaic with ${flags.join(" ")}`;
  return `Deno refused to start the sandbox Worker (${message})${hint}`;
}

function factoryLabel(subject: Subject): string {
  return `the factory ${subject.exportName} of module ${subject.url}`;
}

function describeValue(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  return typeof value === "object" ? "an object without createFilterChain" : typeof value;
}
