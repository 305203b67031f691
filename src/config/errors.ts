/**
 * The error a config load fails with.
 *
 * @module
 */

/** Where an error points: the config file, a 1-based line and a field path. */
export interface ConfigErrorLocation {
  /** The config file as the caller named it. */
  file: string;
  /** 1-based line of the offending field; 0 when no line applies (a missing file). */
  line: number;
  /** Field path such as `servers[0].listeners[1].address`; empty when none applies. */
  path: string;
}

/**
 * A config file that cannot be read, parsed or validated.
 *
 * The message reads `<file>:<line>: <field path>: <what is wrong>`, for example
 * `examples/x/config.yaml:12: servers[0].listeners[1].address: expected host:port, got "2046x"`,
 * so editors and terminals can jump to the line.
 *
 * @example
 * ```ts
 * import { ConfigError } from "./errors.ts";
 *
 * const err = new ConfigError({ file: "c.yaml", line: 3, path: "admin" }, "expected a mapping");
 * err.message; // "c.yaml:3: admin: expected a mapping"
 * ```
 */
export class ConfigError extends Error {
  /** The config file as the caller named it. */
  readonly file: string;
  /** 1-based line of the offending field; 0 when no line applies. */
  readonly line: number;
  /** Field path of the offending field; empty when none applies. */
  readonly path: string;
  /** The problem alone, without file, line and path. */
  readonly problem: string;

  /**
   * @param location Where the problem is.
   * @param problem What is wrong, e.g. `expected host:port, got "2046x"`.
   * @param options `cause`, when another error is behind this one.
   */
  constructor(location: ConfigErrorLocation, problem: string, options?: ErrorOptions) {
    super(formatConfigMessage(location, problem), options);
    this.name = "ConfigError";
    this.file = location.file;
    this.line = location.line;
    this.path = location.path;
    this.problem = problem;
  }
}

/**
 * Formats `<file>:<line>: <path>: <problem>`, leaving out a zero line and an empty path.
 *
 * @param location Where the problem is.
 * @param problem What is wrong.
 * @returns The one-line message.
 */
export function formatConfigMessage(location: ConfigErrorLocation, problem: string): string {
  let out = location.file;
  if (location.line > 0) out += `:${location.line}`;
  out += ": ";
  if (location.path !== "") out += `${location.path}: `;
  return out + problem;
}
