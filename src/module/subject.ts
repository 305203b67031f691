/**
 * What the module loaders share, in process, in a Worker or in a child process: the
 * module being loaded as every message names it, the check of its export, the error
 * that reports a failure, and keeping the loader's peer for the first factory.
 *
 * @module
 */

import type { StreamFilterConfig } from "../config/types.ts";
import { ModuleLoadError } from "./errors.ts";

/** The export looked up when the config names none. */
export const DEFAULT_EXPORT = "createStreamFilterFactory";

/** A module being loaded: what every message about it names. */
export interface Subject {
  /** The module URL as configured. */
  url: string;
  /** The factory's export name. */
  exportName: string;
  /** Where the filter is declared: `file:line: path`. */
  where: string;
}

/** The subject of `filter`'s module, named `url` when the filter has no `module:`. */
export function moduleSubject(filter: StreamFilterConfig, url: string): Subject {
  return {
    url: filter.module ?? url,
    exportName: filter.export ?? DEFAULT_EXPORT,
    where: `${filter.position.file}:${filter.position.line}: ${filter.position.path}`,
  };
}

/**
 * Why the export cannot be used, or undefined when it is a function.
 *
 * @param exports The module's export names.
 * @param kind The `typeof` of the export.
 */
export function exportProblem(
  subject: Subject,
  exports: string[],
  kind: string,
): string | undefined {
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

/** The error that reports why the subject's module could not be loaded. */
export function loadError(subject: Subject, reason: string, cause?: unknown): ModuleLoadError {
  return new ModuleLoadError(reason, {
    module: subject.url,
    exportName: subject.exportName,
    where: subject.where,
    cause,
  });
}

/**
 * Keeps the peer that imported the module at load time for the first factory, and ends
 * it with `reap` when no factory adopts it within `ms` (the build stopped at another
 * filter). The returned function hands it over once, then undefined.
 */
export function spare<P>(peer: P, ms: number, reap: (peer: P) => void): () => P | undefined {
  let kept: P | undefined = peer;
  const timer = setTimeout(() => {
    if (kept !== undefined) reap(kept);
    kept = undefined;
  }, ms);
  Deno.unrefTimer(timer);
  return () => {
    const adopted = kept;
    kept = undefined;
    clearTimeout(timer);
    return adopted;
  };
}
