/**
 * The entry script of a sandbox Worker: a `data:` URL that statically imports the filter
 * module and runs {@linkcode sandboxWorkerMain} on its namespace.
 *
 * Why this shape (measured on Deno 2.9.6): a Worker's static module graph is loaded
 * under the permissions of the process that starts it, while its `import()` calls and
 * everything the filter does at run time are checked against the Worker's own
 * permissions. A static import therefore loads the module under the flags the operator
 * gave Mosaic (`--allow-read=<dir>`, `--allow-import=<host>`), and the filter then runs
 * with exactly its `sandbox.permissions`: no grant on the module's own file is needed.
 * Inlining the Worker code keeps Mosaic's own files out of that graph too.
 *
 * @module
 */

import { sandboxWorkerMain } from "../guest/main.ts";

/** The Worker code as a module, made once per process (see {@linkcode sandboxEntryUrl}). */
let workerMainUrl: string | undefined;

/**
 * The URL to start a sandbox Worker with: a short `data:` URL that imports the filter
 * module and the Worker code. The Worker code sits at a `blob:` URL made once per
 * process, so the entry stays short in stack traces (Deno prints the whole URL of a
 * frame) and is the same for the same module, which lets Deno reuse its work on it.
 *
 * @param moduleUrl The URL to import the filter module by (with its version query).
 * @param exportName The factory's export name.
 * @returns A `data:application/javascript` URL.
 */
export function sandboxEntryUrl(moduleUrl: string, exportName: string): string {
  workerMainUrl ??= URL.createObjectURL(
    new Blob([`export ${sandboxWorkerMain.toString()}\n`], { type: "application/javascript" }),
  );
  const source = `import * as filterModule from ${JSON.stringify(moduleUrl)};
import { sandboxWorkerMain } from ${JSON.stringify(workerMainUrl)};
sandboxWorkerMain(filterModule, ${JSON.stringify(exportName)});
`;
  return `data:application/javascript,${encodeURIComponent(source)}`;
}
