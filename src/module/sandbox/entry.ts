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

import { sandboxWorkerMain } from "./worker_main.ts";

/**
 * The URL to start a sandbox Worker with.
 *
 * @param moduleUrl The URL to import the filter module by (with its version query).
 * @param exportName The factory's export name.
 * @returns A `data:application/javascript` URL.
 */
export function sandboxEntryUrl(moduleUrl: string, exportName: string): string {
  const source = `import * as filterModule from ${
    JSON.stringify(moduleUrl)
  };\n(${sandboxWorkerMain.toString()})(filterModule, ${JSON.stringify(exportName)});\n`;
  return `data:application/javascript,${encodeURIComponent(source)}`;
}
