/**
 * `watch: true`: re-read the config when its file changes, as SIGHUP does.
 *
 * @module
 */

import { dirname, resolve } from "node:path";

/** A running watch; `close()` stops it. */
export interface ConfigWatch {
  close(): void;
}

/**
 * Calls `onChange` once the config file has changed and stayed quiet for `debounceMs`.
 * The directory is watched rather than the file, because editors and deploy tools often
 * replace a file by renaming a new one over it, which a watch on the old file misses.
 */
export function watchConfigFile(
  file: string,
  onChange: () => void,
  debounceMs = 200,
): ConfigWatch {
  const path = resolve(file);
  const watcher = Deno.watchFs(dirname(path), { recursive: false });
  let timer: ReturnType<typeof setTimeout> | undefined;
  (async () => {
    for await (const event of watcher) {
      if (event.kind === "access" || !event.paths.some((p) => resolve(p) === path)) continue;
      clearTimeout(timer);
      timer = setTimeout(onChange, debounceMs);
    }
  })().catch(() => {
    // The watcher was closed.
  });
  return {
    close() {
      clearTimeout(timer);
      watcher.close();
    },
  };
}
