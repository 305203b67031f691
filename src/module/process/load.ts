/**
 * Loads a `type: module` filter with `sandbox: { isolation: process }`: the module is
 * never evaluated in Mosaic's process. A child `deno run` with exactly the sandbox's
 * permissions imports it (see `runner.ts` for the one grant it adds to load the module,
 * and drops again), so everything the module does, its `import()` calls included, is
 * checked against its own permissions, and a module stuck in a loop can be killed.
 *
 * The child that imported the module at load time (proving it loads and has its export)
 * serves the first factory made from it; it is ended if no factory adopts it.
 *
 * Limits: `deno compile` binaries cannot start a sandbox process (the `denort` runtime
 * has no `run`); metadata crosses to the child as JSON.
 *
 * @module
 */

import type { StreamFilterConfig } from "../../config/types.ts";
import type { CreateStreamFilterFactory } from "../../filter/api.ts";
import { filterLogger } from "../../log/logger.ts";
import { cleanMessage, describeImportFailure, ModuleLoadError } from "../errors.ts";
import { SandboxedFilterError } from "../sandbox/errors.ts";
import { SandboxChild, type SandboxChildSpec } from "./child.ts";
import { SandboxProcessError } from "./errors.ts";
import { PROCESS_START_TIMEOUT_MS, ProcessFilterFactory } from "./factory.ts";
import { type ChildGrants, childPermissionFlags, SandboxPermissionError } from "./flags.ts";

/** How long the loader's child waits to be adopted by the factory before it is ended. */
const SPARE_CHILD_MS = 10_000;
const DENIED = /Requires (\w+) access to "([^"]+)"/;

/** A module being loaded: what every message about it names. */
interface Subject {
  url: string;
  exportName: string;
  where: string;
}

/**
 * Starts a process sandbox for the filter, checks that its module loads and exports a
 * function, and returns the creator of its factories.
 *
 * @param filter The filter's config, with `module` and `sandbox.isolation: process`.
 * @param importUrl The URL the child imports (the loader's content-versioned URL).
 * @returns A creator that makes the module's factory in the child and returns a
 * forwarding factory.
 * @throws {ModuleLoadError} When the permissions cannot be given to a process, Deno may
 * not start one, or the module does not load in it or lacks the export.
 *
 * @example
 * ```ts ignore
 * import { loadProcessSandboxed } from "./src/module/process/load.ts";
 *
 * const create = await loadProcessSandboxed(filter, "file:///srv/filters/auth.ts");
 * const factory = await create(filter.config, context);
 * ```
 */
export async function loadProcessSandboxed(
  filter: StreamFilterConfig,
  importUrl: string,
): Promise<CreateStreamFilterFactory> {
  const sandbox = filter.sandbox!;
  const subject: Subject = {
    url: filter.module ?? importUrl,
    exportName: filter.export ?? "createStreamFilterFactory",
    where: `${filter.position.file}:${filter.position.line}: ${filter.position.path}`,
  };
  let grants: ChildGrants;
  try {
    grants = childPermissionFlags(sandbox.permissions, subject.url);
  } catch (error) {
    if (error instanceof SandboxPermissionError) throw fail(subject, error.message, error);
    throw error;
  }
  const spec: SandboxChildSpec = {
    importUrl,
    module: subject.url,
    exportName: subject.exportName,
    grants,
    filterName: filter.name,
  };
  let child: SandboxChild;
  try {
    child = new SandboxChild(spec, 1, {
      logger: filterLogger(filter.name),
      plugins: { call: () => Promise.reject(new Error("The sandbox is still loading")) },
      timedOut() {},
      ended() {},
    });
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    throw fail(
      subject,
      `Deno refused to start the sandbox process (${message}); run Mosaic with --allow-run=${denoPath()}`,
      error,
    );
  }

  let loaded;
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    loaded = await Promise.race([
      child.loaded(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () =>
            reject(
              new SandboxProcessError(
                `the sandbox process did not load it within ${PROCESS_START_TIMEOUT_MS} ms`,
              ),
            ),
          PROCESS_START_TIMEOUT_MS,
        );
      }),
    ]);
  } catch (error) {
    child.kill(error instanceof Error ? error : new Error(String(error)));
    await child.exited;
    throw fail(subject, describeLoadFailure(error, subject.url), error);
  } finally {
    clearTimeout(timer);
  }
  const problem = exportProblem(subject, loaded.exports, loaded.kind);
  if (problem !== undefined) {
    const error = fail(subject, problem);
    child.kill(error);
    await child.exited;
    throw error;
  }

  // The child that imported the module serves the first factory; it is ended if no
  // factory adopts it (the build stopped at another filter).
  let spare: SandboxChild | undefined = child;
  const reap = setTimeout(() => {
    spare?.kill(new SandboxProcessError("The loader's sandbox process was not adopted"));
    spare = undefined;
  }, SPARE_CHILD_MS);
  Deno.unrefTimer(reap);
  return async (config, context) => {
    const adopted = spare;
    spare = undefined;
    clearTimeout(reap);
    try {
      return await ProcessFilterFactory.create(spec, config, context, {
        child: adopted,
        timeoutMs: sandbox.timeoutMs,
      });
    } catch (error) {
      const cause = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
      throw new Error(
        `the factory ${subject.exportName} of module ${subject.url} in its sandbox process failed: ${cause}`,
        { cause: error },
      );
    }
  };
}

/**
 * Words why the child could not import the module. A permission it was denied is
 * granted in `sandbox.permissions`, not on Mosaic's command line.
 */
function describeLoadFailure(error: unknown, url: string): string {
  if (error instanceof SandboxedFilterError) {
    const message = cleanMessage(error.message);
    const denied = DENIED.exec(message);
    if (denied !== null) {
      return `the sandbox process was denied ${denied[1]} access to "${denied[2]}" while ` +
        `loading it; grant it in sandbox.permissions (${denied[1]}: ["${denied[2]}"])`;
    }
  }
  if (error instanceof SandboxProcessError) return error.message;
  return describeImportFailure(error, url);
}

/** Why the export cannot be used, or undefined (the loader's check, for a child's answer). */
function exportProblem(subject: Subject, exports: string[], kind: string): string | undefined {
  if (kind === "undefined" && !exports.includes(subject.exportName)) {
    return `the module has no export "${subject.exportName}" (it exports: ${
      exports.join(", ") || "nothing"
    })`;
  }
  if (kind !== "function") {
    return `the export "${subject.exportName}" is ${
      kind === "object" ? "an object" : kind
    }, expected a function (config, context) => StreamFilterFactory`;
  }
  return undefined;
}

function fail(subject: Subject, reason: string, cause?: unknown): ModuleLoadError {
  return new ModuleLoadError(reason, {
    module: subject.url,
    exportName: subject.exportName,
    where: subject.where,
    cause,
  });
}

function denoPath(): string {
  try {
    return Deno.execPath();
  } catch {
    return "deno";
  }
}
