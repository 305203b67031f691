/**
 * A config loaded together with its text: with `workers: N` the main thread validates
 * the text once and every worker builds from the very same text, so an edit that lands
 * between two reads (`watch: true`) cannot give two workers two configs.
 *
 * @module
 */

import {
  type LoadedConfig,
  type LoadOptions,
  parseConfig,
  readConfigText,
} from "../config/load.ts";

/** A loaded config, its warnings, and the text it was parsed from. */
export interface ConfigSource extends LoadedConfig {
  /** The file's content. */
  text: string;
}

/**
 * Reads and validates a config file, as `loadConfig` does, keeping the text.
 *
 * @param file The config file.
 * @param options The load options (known filter types, filter config parsers).
 * @returns The config, its warnings and its text.
 * @throws {ConfigError} when the file cannot be read, or on the first problem in it.
 */
export async function readConfigSource(
  file: string,
  options: LoadOptions = {},
): Promise<ConfigSource> {
  const text = await readConfigText(file);
  return { ...parseConfig(text, file, options), text };
}
