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
import { cleanMessage, describeImportFailure } from "../errors.ts";
import { withDeadline } from "../proxy/start.ts";
import { SandboxedFilterError } from "../sandbox/errors.ts";
import { SandboxChild, type SandboxChildSpec } from "./child.ts";
import { SandboxProcessError } from "./errors.ts";
import { PROCESS_START_TIMEOUT_MS, ProcessFilterFactory } from "./factory.ts";
import { type ChildGrants, childPermissionFlags, SandboxPermissionError } from "./flags.ts";
import { exportProblem, loadError, moduleSubject, spare } from "../subject.ts";

/** How long the loader's child waits to be adopted by the factory before it is ended. */
const SPARE_CHILD_MS = 10_000;
const DENIED = /Requires (\w+) access to "([^"]+)"/;

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
  const subject = moduleSubject(filter, importUrl);
  let grants: ChildGrants;
  try {
    grants = childPermissionFlags(sandbox.permissions, subject.url);
  } catch (error) {
    if (error instanceof SandboxPermissionError) throw loadError(subject, error.message, error);
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
    throw loadError(
      subject,
      `Deno refused to start the sandbox process (${message}); run Mosaic with --allow-run=${denoPath()}`,
      error,
    );
  }

  let loaded;
  try {
    loaded = await withDeadline(
      PROCESS_START_TIMEOUT_MS,
      () =>
        new SandboxProcessError(
          `the sandbox process did not load it within ${PROCESS_START_TIMEOUT_MS} ms`,
        ),
      (deadline) => Promise.race([child.loaded(), deadline]),
    );
  } catch (error) {
    child.kill(error instanceof Error ? error : new Error(String(error)));
    await child.exited;
    throw loadError(subject, describeLoadFailure(error, subject.url), error);
  }
  const problem = exportProblem(subject, loaded.exports, loaded.kind);
  if (problem !== undefined) {
    const error = loadError(subject, problem);
    child.kill(error);
    await child.exited;
    throw error;
  }

  // The child that imported the module serves the first factory; it is ended if no
  // factory adopts it (the build stopped at another filter).
  const adopt = spare(
    child,
    SPARE_CHILD_MS,
    (kept) => kept.kill(new SandboxProcessError("The loader's sandbox process was not adopted")),
  );
  return async (config, context) => {
    const adopted = adopt();
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

function denoPath(): string {
  try {
    return Deno.execPath();
  } catch {
    return "deno";
  }
}
