/**
 * Cache busting for reloads. Deno keeps every imported module for the life of the
 * process, keyed by its URL, so a changed file imported again under the same URL gives
 * the old code. Importing it under a URL that carries a hash of its bytes gives each
 * version its own cache entry: unchanged bytes reuse the loaded module, changed bytes are
 * evaluated afresh.
 *
 * @module
 */

/** How many hex digits of the SHA-256 digest go into the URL; 64 bits rule out clashes. */
const VERSION_DIGITS = 16;

/**
 * Adds `v=<hash prefix>` to a module URL's query, keeping any query it has.
 *
 * @param url The module URL as configured.
 * @param hex The hex SHA-256 digest of the module's bytes.
 * @returns The URL to import.
 *
 * @example
 * ```ts
 * import { versionedModuleUrl } from "./versioned_url.ts";
 *
 * versionedModuleUrl("file:///srv/auth.ts", "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b");
 * // "file:///srv/auth.ts?v=9f86d081884c7d65"
 * ```
 */
export function versionedModuleUrl(url: string, hex: string): string {
  const parsed = new URL(url);
  parsed.searchParams.set("v", hex.slice(0, VERSION_DIGITS));
  return parsed.href;
}
