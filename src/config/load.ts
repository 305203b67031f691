/**
 * Loads a Mosaic config: MOSN-shaped YAML or JSON in, one validated, normalized and
 * frozen {@linkcode MosaicConfig} out, plus warnings for what Mosaic ignores.
 *
 * The steps: parse the YAML keeping every node's line; warn about keys the schema does
 * not know; check types, formats and defaults with the zod schema; normalize and check
 * references; freeze. Every error is a {@linkcode ConfigError} naming the file, the line
 * and the field path.
 *
 * @module
 */

import { resolve } from "node:path";
import { ConfigError } from "./errors.ts";
import { deepFreeze } from "./freeze.ts";
import { firstIssueError, issueMessage } from "./issues.ts";
import { normalizeConfig } from "./normalize.ts";
import { formatPath, SourceDocument } from "./positions.ts";
import { configSchema } from "./schema.ts";
import type { MosaicConfig } from "./types.ts";
import type { ParseFilterConfig } from "../filter/api.ts";
import { findUnknownKeys, nearestKey } from "./unknown_keys.ts";
import { describeValue } from "./values.ts";

/** Options of {@linkcode loadConfig} and {@linkcode parseConfig}. */
export interface LoadOptions {
  /**
   * Whether a stream filter `type` is registered. When given, a filter whose type is not
   * `module`, `plugin` or known fails the load (MOSN skips it silently, which can skip
   * an auth filter). When absent, types are not checked.
   */
  isKnownFilterType?: (type: string) => boolean;
  /** The registered types, listed in the "unknown stream filter type" message. */
  knownFilterTypes?: () => Iterable<string>;
  /**
   * The config parser of a registered filter type, if it has one: called while loading
   * for the filter's `config` and every `per_filter_config` naming it, so a bad one fails
   * the load with its file, line and field path.
   */
  filterConfigParser?: (type: string) => ParseFilterConfig | undefined;
}

/** A loaded config and the warnings about what it asks for and Mosaic ignores. */
export interface LoadedConfig {
  /** The config, deep-frozen. */
  config: MosaicConfig;
  /**
   * One line per ignored key that MOSN defines and Mosaic does not implement:
   * `<file>:<line>: <path>: not implemented by Mosaic, ignored`. A key neither defines
   * is an error instead.
   */
  warnings: string[];
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/**
 * Parses and validates config text.
 *
 * @param text The file's content, YAML or JSON.
 * @param file The file's path, as the user named it: messages show it as given; the
 * config's `file` is made absolute, and relative paths in the config resolve against its
 * directory.
 * @param options Known filter types.
 * @returns The frozen config and its warnings.
 * @throws {ConfigError} On the first problem, with file, line and field path.
 *
 * @example
 * ```ts
 * import { parseConfig } from "./load.ts";
 *
 * const { config } = parseConfig(
 *   "cluster_manager:\n  clusters:\n    - { name: c, hosts: [{ address: 127.0.0.1:8080 }] }\n",
 *   "inline.yaml",
 * );
 * config.clusters.get("c")?.connectTimeoutMs; // 3000
 * ```
 */
export function parseConfig(text: string, file: string, options: LoadOptions = {}): LoadedConfig {
  const source = new SourceDocument(text, file);
  if (!isPlainObject(source.data)) {
    throw source.error(
      [],
      `expected a mapping (servers, cluster_manager, admin, ...), got ${
        describeValue(source.data)
      }`,
    );
  }
  const warnings = [...source.warnings];
  let typo: ConfigError | undefined;
  for (const { path, mosn, known } of findUnknownKeys(configSchema, source.data)) {
    const line = source.keyLine(path);
    if (mosn) {
      warnings.push(`${file}:${line}: ${formatPath(path)}: not implemented by Mosaic, ignored`);
      continue;
    }
    if (typo !== undefined && typo.line <= line) continue;
    const nearest = nearestKey(String(path[path.length - 1]), known);
    const hint = nearest !== undefined
      ? `did you mean ${JSON.stringify(nearest)}?`
      : `the keys here are ${known.join(", ")}`;
    typo = new ConfigError(
      { file, line, path: formatPath(path) },
      `unknown key; ${hint}`,
    );
  }
  // A key no one defines is a typo: ignoring it could switch a filter or a timeout off.
  if (typo !== undefined) throw typo;
  const parsed = configSchema.safeParse(source.data, { error: issueMessage });
  if (!parsed.success) throw firstIssueError(parsed.error.issues, source);
  const config = normalizeConfig(parsed.data, source, resolve(file), options);
  return { config: deepFreeze(config), warnings };
}

/**
 * Reads, parses and validates a config file.
 *
 * @param file Path of the config file.
 * @param options Known filter types.
 * @returns The frozen config and its warnings.
 * @throws {ConfigError} When the file cannot be read, or on the first problem in it.
 *
 * @example
 * ```ts
 * import { loadConfig } from "./load.ts";
 *
 * const { config, warnings } = await loadConfig("examples/simple_streamfilter/config.yaml");
 * for (const warning of warnings) console.warn(warning);
 * console.log(config.listeners[0].port); // 2046
 * ```
 */
export async function loadConfig(file: string, options: LoadOptions = {}): Promise<LoadedConfig> {
  return parseConfig(await readConfigText(file), file, options);
}

/**
 * Reads a config file's text, with an error that names the file and says what to do.
 *
 * @throws {ConfigError} when the file is missing, a directory, or not readable
 */
export async function readConfigText(file: string): Promise<string> {
  try {
    return await Deno.readTextFile(file);
  } catch (cause) {
    const problem = cause instanceof Deno.errors.NotFound
      ? "config file not found"
      : cause instanceof Deno.errors.NotCapable || cause instanceof Deno.errors.PermissionDenied
      ? `no read access to the config file; run deno with --allow-read=${resolve(file)}`
      : cause instanceof Deno.errors.IsADirectory
      ? "expected a config file, got a directory"
      : `cannot read the config file: ${(cause as Error).message}`;
    throw new ConfigError({ file, line: 0, path: "" }, problem, { cause });
  }
}
