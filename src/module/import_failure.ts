/**
 * Why importing a module failed, in one sentence, for every runtime: Deno's error worded
 * by `describeImportFailure`, and a syntax error in a remote TypeScript module (or
 * Deno's "Unknown module", how a Worker's import words it) explained by the content type
 * its server sent when that is the cause.
 *
 * @module
 */

import { describeImportFailure } from "./errors.ts";
import { contentTypeProblem } from "./source.ts";

const UNKNOWN_MODULE = /but identified an? Unknown module/;

/**
 * Words why importing `url` failed.
 *
 * @param error What `import()` threw, or a Worker error event's message.
 * @param url The module URL as configured.
 * @returns The cause, ready for a `ModuleLoadError`.
 */
export async function importFailure(error: unknown, url: string): Promise<string> {
  const reason = describeImportFailure(error, url);
  if (!reason.startsWith("syntax error: ") && !UNKNOWN_MODULE.test(reason)) return reason;
  return (await contentTypeProblem(url, reason)) ?? reason;
}
