/**
 * The `plugin` filter's config: parsed once per load, strictly, and frozen.
 *
 * @module
 */

import { FilterConfigError, parseDuration, type ReceivePhase } from "../../../mod.ts";

/** The validated config. */
export interface PluginFilterSettings {
  /** The plugin's name in the top-level `plugins:` map. */
  readonly plugin: string;
  /** The call's deadline in milliseconds. */
  readonly timeoutMs: number;
  /** `closed`: answer 503 when the plugin fails; `open`: go on without it. */
  readonly failureMode: "closed" | "open";
  /** The receive phase the plugin is called in. */
  readonly phase: ReceivePhase;
  /** Also call the plugin with the response, in `before_send`. */
  readonly response: boolean;
  /** Send the body along. */
  readonly body: boolean;
}

const KEYS = ["plugin", "timeout", "failure_mode", "phase", "response", "body", "trailers"];
const PHASES: readonly ReceivePhase[] = ["before_route", "after_route", "after_choose_host"];
/**
 * Raised on a bad `plugin` filter config. A {@linkcode FilterConfigError}: the loader
 * names the file, line and path of the bad field.
 */
export class PluginFilterConfigError extends FilterConfigError {
  /** Creates the error; the message reads `plugin filter: <where>.<key>: <problem>`. */
  constructor(path: readonly string[], where: string, problem: string) {
    super(path, problem);
    this.message = path.length === 0
      ? `plugin filter: ${where} ${problem}`
      : `plugin filter: ${[where, ...path].join(".")}: ${problem}`;
  }
}

function fail(where: string, key: string | undefined, message: string): never {
  throw new PluginFilterConfigError(key === undefined ? [] : [key], where, message);
}

/**
 * Parses a Go duration (`1s`, `250ms`, `1m30s`, `1.5s`); Mosaic's one duration parser.
 *
 * @deprecated Use `parseDuration` from `mod.ts`; this is the same function.
 */
export const parseDurationMs: (value: unknown) => number | undefined = parseDuration;

/**
 * Validates a `plugin` filter config.
 *
 * @param config The `config:` of the filter entry (or a `per_filter_config` override).
 * @param where Where it came from, for messages (`config` or `per_filter_config`).
 * @returns The frozen settings.
 * @throws {PluginFilterConfigError} naming the bad field.
 */
export function parsePluginFilterConfig(config: unknown, where = "config"): PluginFilterSettings {
  if (config === null || typeof config !== "object" || Array.isArray(config)) {
    fail(where, undefined, `must be a map with at least "plugin", got ${JSON.stringify(config)}`);
  }
  const c = config as Record<string, unknown>;
  for (const key of Object.keys(c)) {
    if (!KEYS.includes(key)) {
      fail(where, key, `unknown field; the fields are ${KEYS.join(", ")}`);
    }
  }
  if (typeof c.plugin !== "string" || c.plugin === "") {
    fail(where, "plugin", `must name a plugin of the top-level "plugins:" map`);
  }
  let timeoutMs = 1000;
  if (c.timeout !== undefined) {
    const ms = parseDuration(c.timeout);
    if (ms === undefined || ms <= 0) {
      fail(
        where,
        "timeout",
        `expected a positive duration such as "2s" or "500ms", got ${JSON.stringify(c.timeout)}`,
      );
    }
    timeoutMs = Math.max(1, Math.round(ms));
  }
  const failureMode = c.failure_mode ?? "closed";
  if (failureMode !== "closed" && failureMode !== "open") {
    fail(where, "failure_mode", `must be "closed" or "open", got ${JSON.stringify(failureMode)}`);
  }
  const phase = c.phase ?? "before_route";
  if (!PHASES.includes(phase as ReceivePhase)) {
    fail(where, "phase", `must be one of ${PHASES.join(", ")}, got ${JSON.stringify(phase)}`);
  }
  for (const key of ["response", "body", "trailers"]) {
    if (c[key] !== undefined && typeof c[key] !== "boolean") {
      fail(where, key, `must be true or false, got ${JSON.stringify(c[key])}`);
    }
  }
  if (c.trailers === true) {
    // The stream filter API gives filters no trailers to send yet.
    fail(
      where,
      "trailers",
      "sending trailers is not supported: Mosaic's stream filter API does not expose them",
    );
  }
  return Object.freeze({
    plugin: c.plugin,
    timeoutMs,
    failureMode,
    phase: phase as ReceivePhase,
    response: c.response === true,
    body: c.body === true,
  });
}
