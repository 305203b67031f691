/**
 * The load-time contract of a filter's config: a filter may parse its config once, at
 * load, for the listener's `config` and for every `per_filter_config` that names it, and
 * report a bad one as a {@linkcode FilterConfigError} with the path of the bad field
 * inside that config, so the loader can name the file, line and full field path.
 *
 * @module
 */

import { nearestKey } from "./unknown_keys.ts";
import { describeValue } from "./values.ts";

/**
 * A filter's config is wrong. Thrown by a filter's config parser (see
 * `CreateStreamFilterFactory.parseConfig`); the loader prefixes the file, the line and
 * the path of the config, e.g.
 * `config.yaml:14: servers[0].listeners[0].stream_filters[0].config.max_entity_sise: unknown key; did you mean "max_entity_size"?`.
 *
 * @example
 * ```ts
 * import { FilterConfigError } from "./filter_config.ts";
 *
 * throw new FilterConfigError(["rules", 0, "action"], 'expected "allow" or "deny", got "permit"');
 * ```
 */
export class FilterConfigError extends Error {
  /** Path of the bad field inside the filter's config; empty for the config as a whole. */
  readonly path: readonly (string | number)[];
  /** What is wrong, without the path. */
  readonly problem: string;

  /**
   * Makes the error; the message is the path and the problem.
   *
   * @param path Keys and list indexes from the top of the filter's config.
   * @param problem What is wrong, e.g. `expected an integer of at least 0, got -1`.
   */
  constructor(path: readonly (string | number)[], problem: string) {
    super(path.length === 0 ? problem : `${formatConfigPath(path)}: ${problem}`);
    this.name = "FilterConfigError";
    this.path = path;
    this.problem = problem;
  }
}

/** True for a {@linkcode FilterConfigError}, also one made by another copy of this module. */
export function isFilterConfigError(error: unknown): error is FilterConfigError {
  if (error instanceof FilterConfigError) return true;
  return error instanceof Error && error.name === "FilterConfigError" &&
    Array.isArray((error as FilterConfigError).path) &&
    typeof (error as FilterConfigError).problem === "string";
}

function formatConfigPath(path: readonly (string | number)[]): string {
  let out = "";
  for (const segment of path) {
    out += typeof segment === "number" ? `[${segment}]` : out === "" ? segment : `.${segment}`;
  }
  return out;
}

/**
 * Checks that a filter config is a mapping whose keys are all known, naming the nearest
 * known key for a misspelt one.
 *
 * @param config The filter's config.
 * @param known The keys the filter reads.
 * @param path Where `config` is inside the filter's config; empty for the top.
 * @returns The config as a record.
 * @throws {FilterConfigError} When `config` is not a mapping or has an unknown key.
 *
 * @example
 * ```ts
 * import { checkConfigKeys } from "./filter_config.ts";
 *
 * checkConfigKeys({ max_entity_sise: 10 }, ["max_entity_size", "http_status"]);
 * // throws: max_entity_sise: unknown key; did you mean "max_entity_size"?
 * ```
 */
export function checkConfigKeys(
  config: unknown,
  known: readonly string[],
  path: readonly (string | number)[] = [],
): Record<string, unknown> {
  if (config === null || typeof config !== "object" || Array.isArray(config)) {
    throw new FilterConfigError(
      path,
      `expected a mapping with ${known.join(", ")}, got ${describeValue(config)}`,
    );
  }
  for (const key of Object.keys(config)) {
    if (known.includes(key)) continue;
    const nearest = nearestKey(key, known);
    throw new FilterConfigError(
      [...path, key],
      nearest === undefined
        ? `unknown key; the keys here are ${known.join(", ")}`
        : `unknown key; did you mean ${JSON.stringify(nearest)}?`,
    );
  }
  return config as Record<string, unknown>;
}
