/**
 * Loads `type: module` stream filters: a module at a URL, imported at run time under
 * Deno's permissions, found by its conventional export `createStreamFilterFactory`.
 *
 * @module
 */

import type { StreamFilterConfig } from "../config/types.ts";
import type { CreateStreamFilterFactory } from "../filter/api.ts";
import { FilterLoadError } from "../filter/build.ts";

/** Imports the module of a `type: module` filter and returns its factory creator. */
export async function loadFilterModule(
  filter: StreamFilterConfig,
): Promise<CreateStreamFilterFactory> {
  const url = filter.module!;
  const exportName = filter.export ?? "createStreamFilterFactory";
  const where = `${filter.position.file}:${filter.position.line}: ${filter.position.path}`;
  let namespace: Record<string, unknown>;
  try {
    namespace = await import(url);
  } catch (error) {
    throw new FilterLoadError(
      `${where}: cannot load module ${url} (export ${exportName}): ${
        explainImportError(error, url)
      }`,
      { cause: error },
    );
  }
  const create = namespace[exportName];
  if (create === undefined) {
    const exported = Object.keys(namespace).join(", ") || "nothing";
    throw new FilterLoadError(
      `${where}: module ${url} has no export "${exportName}" (it exports: ${exported})`,
    );
  }
  if (typeof create !== "function") {
    throw new FilterLoadError(
      `${where}: module ${url} exports "${exportName}" as ${typeof create}, expected a function`,
    );
  }
  return create as CreateStreamFilterFactory;
}

/** Words the cause of a failed import, naming the permission flag when Deno denied it. */
export function explainImportError(error: unknown, url: string): string {
  const message = error instanceof Error ? error.message : String(error);
  if (
    error instanceof Deno.errors.NotCapable || /Requires (read|import|net) access/.test(message)
  ) {
    const parsed = new URL(url);
    const flag = parsed.protocol === "file:"
      ? `--allow-read=${decodeURIComponent(parsed.pathname)}`
      : `--allow-import=${parsed.host}`;
    return `${message}; run Mosaic with ${flag}`;
  }
  return message;
}
