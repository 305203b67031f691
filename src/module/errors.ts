/**
 * The error a module filter fails to load with, and the wording of its cause: which
 * module, which export, what went wrong, and for a permission Deno denied, the exact
 * flag to add.
 *
 * @module
 */

import { FilterLoadError } from "../filter/build.ts";

/** What a {@linkcode ModuleLoadError} is about. */
export interface ModuleLoadErrorOptions extends ErrorOptions {
  /** The module URL as configured (without the loader's version query). */
  module: string;
  /** The export the factory was looked up by. */
  exportName: string;
  /** Where the filter is declared, `file:line: path`. */
  where: string;
}

/**
 * A `type: module` filter could not be loaded. The message reads
 * `<where>: cannot load filter module <url> (export "<name>"): <cause>`.
 */
export class ModuleLoadError extends FilterLoadError {
  /** The module URL as configured. */
  readonly module: string;
  /** The export the factory was looked up by. */
  readonly exportName: string;
  /** The cause alone, without where, module and export. */
  readonly reason: string;

  /**
   * Makes the error.
   *
   * @param reason What went wrong, e.g. `the server answered 404 Not Found`.
   * @param options The module, export and place of the filter, and the original error.
   */
  constructor(reason: string, options: ModuleLoadErrorOptions) {
    super(
      `${options.where}: cannot load filter module ${options.module} (export "${options.exportName}"): ${reason}`,
      { cause: options.cause },
    );
    this.name = "ModuleLoadError";
    this.module = options.module;
    this.exportName = options.exportName;
    this.reason = reason;
  }
}

// deno-lint-ignore no-control-regex
const ANSI = /\u001b\[[0-9;]*m/g;
const DENIED = /Requires (\w+) access to "([^"]+)"/;
const HTTP_FAILED = /Import '[^']*' failed: (\d{3}[^\n]*)/;
const NETWORK = /error sending request|tcp connect error|dns error|Connection refused|timed out/i;

/**
 * The `--allow-…` flag that would have let Deno do what it denied, read from Deno's own
 * message (`Requires read access to "/srv/f.ts", run again with the --allow-read flag`).
 *
 * @param message A Deno error message.
 * @returns The flag, e.g. `--allow-read=/srv/f.ts`, or undefined when nothing was denied.
 */
export function deniedPermissionFlag(message: string): string | undefined {
  const match = DENIED.exec(message);
  return match === null ? undefined : `--allow-${match[1]}=${match[2]}`;
}

/**
 * Words a denial: Deno's message without its generic advice, then the exact flag.
 *
 * @param message Deno's message, `Requires read access to "/f.ts", run again with the --allow-read flag`.
 * @param flag The flag to add, from {@linkcode deniedPermissionFlag}.
 * @returns E.g. `Deno denied it (Requires read access to "/f.ts"); run Mosaic with --allow-read=/f.ts`.
 */
export function deniedReason(message: string, flag: string): string {
  const what = firstLine(message).replace(/, run again with the --allow-\w+ flag$/, "");
  return `Deno denied it (${what}); run Mosaic with ${flag}`;
}

/**
 * Words why importing `url` failed, from the error `import()` (or a Worker loading the
 * module) raised: a permission Deno denied (with the flag to add), an HTTP status, an
 * unreachable host, a missing file, a syntax error, or an error the module threw while
 * it was evaluated.
 *
 * @param error The error, or a Worker error event's message.
 * @param url The module URL as configured.
 * @returns One sentence (a syntax error keeps its source excerpt on following lines).
 */
export function describeImportFailure(error: unknown, url: string): string {
  const name = error instanceof Error ? error.name : "";
  const message = cleanMessage(error instanceof Error ? error.message : String(error));
  const flag = deniedPermissionFlag(message);
  if (flag !== undefined) return deniedReason(message, flag);
  const remote = url.startsWith("http:") || url.startsWith("https:");
  if (message.startsWith("Module not found")) {
    return remote ? "the server answered 404 Not Found" : `no such file (${firstLine(message)})`;
  }
  const http = HTTP_FAILED.exec(message);
  if (http !== null) return `the server answered HTTP ${http[1].trim()}`;
  if (remote && NETWORK.test(message)) return `the URL is unreachable (${innermost(message)})`;
  if (name === "SyntaxError" || message.startsWith("SyntaxError")) {
    return `syntax error: ${message.replace(/^SyntaxError: /, "")}`;
  }
  const label = name === "" || message.startsWith(`${name}:`) ? "" : `${name}: `;
  return `the module threw while it was evaluated: ${label}${message}`;
}

/** Drops colour codes and the stack lines that point into the sandbox's entry script. */
export function cleanMessage(message: string): string {
  return message.replace(ANSI, "").split("\n").filter((line) => !/^\s*at (blob:|data:)/.test(line))
    .join("\n").trim();
}

function firstLine(message: string): string {
  const end = message.indexOf("\n");
  return (end === -1 ? message : message.slice(0, end)).replace(/\.$/, "");
}

/** Deno lists a network error's causes as numbered lines; the last is the root cause. */
function innermost(message: string): string {
  const lines = message.split("\n").map((line) => line.trim()).filter((line) => line !== "");
  const last = lines[lines.length - 1] ?? message;
  return last.replace(/^\d+: /, "");
}
