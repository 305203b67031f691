/**
 * The Worker runtime: the module runs in a Worker with exactly the sandbox's
 * permissions (`permissions.ts`), started from an entry that imports it statically
 * (`entry.ts`), supervised like every out-of-process runtime (`../supervisor/`).
 *
 * @module
 */

import { importFailure } from "../import_failure.ts";
import type { FilterRuntime } from "../runtime.ts";
import { loadSupervised, type PeerRuntime } from "../supervisor/supervisor.ts";
import { workerPermissions } from "./permissions.ts";
import { WorkerPeer } from "./worker.ts";

/** Runs a module in a Worker sandbox. */
export const workerRuntime: FilterRuntime = {
  name: "Worker",
  load(spec) {
    const sandbox = spec.filter.sandbox!;
    const permissions = workerPermissions(sandbox.permissions);
    const runtime: PeerRuntime<WorkerPeer> = {
      noun: "Worker",
      place: "sandbox",
      start: (generation, owner) =>
        new WorkerPeer(
          {
            importUrl: spec.importUrl,
            module: spec.subject.url,
            exportName: spec.subject.exportName,
            permissions,
            filterName: spec.filter.name,
          },
          generation,
          owner,
        ),
      refused: (error) => refusedWorker(error, permissions),
      loadFailure: (error) =>
        importFailure(error instanceof Error ? error.message : String(error), spec.subject.url),
      stuckFate: "terminated",
      stuckNote:
        "Deno cannot stop a Worker that spins in a loop: the old one may keep a CPU busy until its code returns",
    };
    return loadSupervised(runtime, spec, sandbox.timeoutMs);
  },
};

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
