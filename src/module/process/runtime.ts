/**
 * The process runtime (`sandbox: { isolation: process }`): the module is never evaluated
 * in Mosaic's process. A child `deno run` with exactly the sandbox's permissions imports
 * it (see `runner.ts` for the one grant it adds to load the module, and drops again), so
 * everything the module does, its `import()` calls included, is checked against its own
 * permissions, and a module stuck in a loop can be killed. It is supervised like every
 * out-of-process runtime (`../supervisor/`).
 *
 * Limits: `deno compile` binaries cannot start a sandbox process (the `denort` runtime
 * has no `run`); metadata crosses to the child as JSON.
 *
 * @module
 */

import { cleanMessage, describeImportFailure } from "../errors.ts";
import type { FilterRuntime } from "../runtime.ts";
import { loadError } from "../subject.ts";
import { SandboxedFilterError, SandboxError } from "../supervisor/errors.ts";
import { loadSupervised, type PeerRuntime } from "../supervisor/supervisor.ts";
import { ChildPeer } from "./child.ts";
import { type ChildGrants, childPermissionFlags, SandboxPermissionError } from "./flags.ts";

const DENIED = /Requires (\w+) access to "([^"]+)"/;

/** Runs a module in a child process. */
export const processRuntime: FilterRuntime = {
  name: "process",
  load(spec) {
    const { filter, subject } = spec;
    const sandbox = filter.sandbox!;
    let grants: ChildGrants;
    try {
      grants = childPermissionFlags(sandbox.permissions, subject.url);
    } catch (error) {
      if (error instanceof SandboxPermissionError) throw loadError(subject, error.message, error);
      throw error;
    }
    const runtime: PeerRuntime<ChildPeer> = {
      noun: "process",
      place: "sandbox process",
      start: (generation, owner) =>
        new ChildPeer(
          {
            importUrl: spec.importUrl,
            module: subject.url,
            exportName: subject.exportName,
            grants,
            filterName: filter.name,
          },
          generation,
          owner,
        ),
      refused: (error) =>
        `Deno refused to start the sandbox process (${
          error instanceof Error ? error.message : String(error)
        }); run Mosaic with --allow-run=${denoPath()}`,
      loadFailure: (error) => Promise.resolve(describeLoadFailure(error, subject.url)),
      stuckFate: "killed (SIGKILL)",
      stuckNote: "",
    };
    return loadSupervised(runtime, spec, sandbox.timeoutMs);
  },
};

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
  if (error instanceof SandboxError) return error.message;
  return describeImportFailure(error, url);
}

function denoPath(): string {
  try {
    return Deno.execPath();
  } catch {
    return "deno";
  }
}
