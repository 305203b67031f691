/**
 * The `lua` filter's config, in Envoy's shapes: the filter's `Lua` message
 * (`inline_code`, `default_source_code`, `source_codes`) and the route's `LuaPerRoute`
 * (`disabled`, `name`, `source_code`). Parsed once at load; script files are read here.
 *
 * @module
 */

import { checkConfigKeys, type FilterConfigContext, FilterConfigError } from "../../../mod.ts";

/** One script: its code and the name Lua's messages give it (`inline_code:3: …`). */
export interface LuaSource {
  /** The chunk name: `inline_code`, `source_codes.<name>` or the file's path. */
  readonly name: string;
  /** The Lua code. */
  readonly code: string;
  /** The file it was read from, when it came from one. */
  readonly file?: string;
}

/** The parsed listener config of a `lua` filter. */
export interface LuaFilterConfig {
  readonly kind: "filter";
  /** The script run when no route names another; undefined runs nothing. */
  readonly defaultSource: LuaSource | undefined;
  /** Named scripts (`source_codes`), chosen per route by `LuaPerRoute.name`. */
  readonly sources: ReadonlyMap<string, LuaSource>;
  /** Lua VM instructions one call of `envoy_on_request`/`envoy_on_response` may run. */
  readonly instructionBudget: number;
  /** Bytes the filter's Lua state may allocate. */
  readonly memoryLimit: number;
  /**
   * Where `handle:httpCall(cluster, …)` sends (`http_call_clusters`): name → `host:port`.
   * The filter API cannot reach the config's clusters, so targets are listed here.
   */
  readonly clusters: ReadonlyMap<string, string>;
  /** What `handle:metadata()` returns when the route gives none. */
  readonly metadata: Readonly<Record<string, unknown>>;
}

/** The parsed `per_filter_config` of a route or virtual host (Envoy's `LuaPerRoute`). */
export interface LuaPerRoute {
  readonly kind: "route";
  /** The filter does nothing on this route. */
  readonly disabled: boolean;
  /** A `source_codes` entry of the filter's config to run instead of the default. */
  readonly name: string | undefined;
  /** A script of the route's own. */
  readonly source: LuaSource | undefined;
  /** What `handle:metadata()` returns on this route (Envoy reads the route's `metadata`). */
  readonly metadata: Readonly<Record<string, unknown>> | undefined;
}

/** What {@linkcode parseLuaConfig} returns. */
export type ParsedLuaConfig = LuaFilterConfig | LuaPerRoute;

/** Default of `instruction_budget`: about 50 ms of Lua on one core. */
export const DEFAULT_INSTRUCTION_BUDGET = 1_000_000;
/** Default of `memory_limit`: 64 MiB. */
export const DEFAULT_MEMORY_LIMIT = 64 * 1024 * 1024;

const FILTER_KEYS = [
  "@type",
  "inline_code",
  "default_source_code",
  "source_codes",
  "source_file",
  "stat_prefix",
  "failure_mode",
  "instruction_budget",
  "memory_limit",
  "http_call_clusters",
  "metadata",
];
const ROUTE_KEYS = ["@type", "disabled", "name", "source_code", "metadata"];
const DATA_SOURCE_KEYS = ["inline_string", "filename"];

const parsed = new WeakSet<object>();
/**
 * The loader parses a filter's config, then every `per_filter_config` naming it, in that
 * order: each route config is filed under the filter config parsed last for the same
 * config file and filter name, so the factory made from that config can compile them.
 */
const lastFilter = new Map<string, LuaFilterConfig>();
const routesOf = new WeakMap<LuaFilterConfig, LuaPerRoute[]>();

/**
 * Parses a `lua` filter's config (`context.source === "config"`) or a route's
 * `per_filter_config` for it. Reads `filename`/`source_file` scripts, relative to the
 * config file.
 *
 * @throws {FilterConfigError} naming the bad field.
 */
export function parseLuaConfig(
  config: unknown,
  context: Pick<FilterConfigContext, "source" | "configFile" | "name">,
): ParsedLuaConfig {
  const key = `${context.configFile}\0${context.name}`;
  if (context.source === "per_filter_config") {
    const route = parsePerRoute(config, context.configFile);
    parsed.add(route);
    const owner = lastFilter.get(key);
    if (owner !== undefined) routesOf.get(owner)?.push(route);
    return route;
  }
  const filter = parseFilter(config, context.configFile);
  parsed.add(filter);
  lastFilter.set(key, filter);
  routesOf.set(filter, []);
  return filter;
}

/** True when `config` is what {@linkcode parseLuaConfig} returned. */
export function isParsedLuaConfig(config: unknown): config is ParsedLuaConfig {
  return typeof config === "object" && config !== null && parsed.has(config);
}

/**
 * The route configs parsed at load right after `filter` (the `per_filter_config`
 * entries naming it), so its factory can compile and check them before any request.
 */
export function routeConfigsOf(filter: LuaFilterConfig): readonly LuaPerRoute[] {
  return routesOf.get(filter) ?? [];
}

function parseFilter(config: unknown, configFile: string): LuaFilterConfig {
  const c = checkConfigKeys(config ?? {}, FILTER_KEYS);
  const given = ["inline_code", "default_source_code", "source_file"].filter((k) =>
    c[k] !== undefined
  );
  if (given.length > 1) {
    throw new FilterConfigError(
      [given[1]],
      `give one of inline_code, default_source_code and source_file, not ${given.join(" and ")}`,
    );
  }
  let defaultSource: LuaSource | undefined;
  if (c.inline_code !== undefined) {
    defaultSource = { name: "inline_code", code: text(c.inline_code, ["inline_code"]) };
  } else if (c.default_source_code !== undefined) {
    defaultSource = dataSource(
      c.default_source_code,
      ["default_source_code"],
      "default_source_code",
      configFile,
    );
  } else if (c.source_file !== undefined) {
    defaultSource = fileSource(text(c.source_file, ["source_file"]), ["source_file"], configFile);
  }
  const sources = new Map<string, LuaSource>();
  if (c.source_codes !== undefined) {
    const codes = mapping(c.source_codes, ["source_codes"]);
    for (const [name, value] of Object.entries(codes)) {
      sources.set(
        name,
        dataSource(value, ["source_codes", name], `source_codes.${name}`, configFile),
      );
    }
  }
  const clusters = new Map<string, string>();
  if (c.http_call_clusters !== undefined) {
    for (
      const [name, value] of Object.entries(
        mapping(c.http_call_clusters, ["http_call_clusters"]),
      )
    ) {
      const address = text(value, ["http_call_clusters", name]);
      if (!/^[^\s/]+:\d+$/.test(address)) {
        throw new FilterConfigError(
          ["http_call_clusters", name],
          `expected host:port, got ${JSON.stringify(address)}`,
        );
      }
      clusters.set(name, address);
    }
  }
  return Object.freeze({
    kind: "filter",
    defaultSource,
    sources,
    instructionBudget: positiveInteger(
      c.instruction_budget ?? DEFAULT_INSTRUCTION_BUDGET,
      "instruction_budget",
      1000,
    ),
    memoryLimit: positiveInteger(c.memory_limit ?? DEFAULT_MEMORY_LIMIT, "memory_limit", 1 << 20),
    clusters,
    metadata: Object.freeze(
      c.metadata === undefined ? {} : { ...mapping(c.metadata, ["metadata"]) },
    ),
  });
}

function parsePerRoute(config: unknown, configFile: string): LuaPerRoute {
  const c = checkConfigKeys(config ?? {}, ROUTE_KEYS);
  const disabled = c.disabled ?? false;
  if (typeof disabled !== "boolean") {
    throw new FilterConfigError(["disabled"], `expected true or false, got ${String(disabled)}`);
  }
  const name = c.name === undefined ? undefined : text(c.name, ["name"]);
  if (name !== undefined && c.source_code !== undefined) {
    throw new FilterConfigError(["source_code"], "give name or source_code, not both");
  }
  if (!disabled && name === undefined && c.source_code === undefined && c.metadata === undefined) {
    throw new FilterConfigError([], "expected disabled: true, name, source_code or metadata");
  }
  const source = c.source_code === undefined
    ? undefined
    : dataSource(c.source_code, ["source_code"], "per_filter_config.source_code", configFile);
  return Object.freeze({
    kind: "route",
    disabled,
    name,
    source,
    metadata: c.metadata === undefined
      ? undefined
      : Object.freeze({ ...mapping(c.metadata, ["metadata"]) }),
  });
}

/** Envoy's `DataSource`: `inline_string` or `filename`. */
function dataSource(
  value: unknown,
  path: string[],
  inlineName: string,
  configFile: string,
): LuaSource {
  const d = checkConfigKeys(value, DATA_SOURCE_KEYS, path);
  if ((d.inline_string === undefined) === (d.filename === undefined)) {
    throw new FilterConfigError(path, "expected exactly one of inline_string and filename");
  }
  if (d.inline_string !== undefined) {
    return { name: inlineName, code: text(d.inline_string, [...path, "inline_string"]) };
  }
  return fileSource(text(d.filename, [...path, "filename"]), [...path, "filename"], configFile);
}

function fileSource(file: string, path: string[], configFile: string): LuaSource {
  const resolved = file.startsWith("/") || configFile.startsWith("<")
    ? file
    : `${configFile.replace(/[^/]*$/, "")}${file}`;
  try {
    return { name: resolved, code: Deno.readTextFileSync(resolved), file: resolved };
  } catch (error) {
    throw new FilterConfigError(
      path,
      `cannot read Lua script ${JSON.stringify(resolved)}: ${
        error instanceof Error ? error.message : String(error)
      }`,
    );
  }
}

function text(value: unknown, path: (string | number)[]): string {
  if (typeof value !== "string") {
    throw new FilterConfigError(path, `expected a string, got ${JSON.stringify(value)}`);
  }
  return value;
}

function mapping(value: unknown, path: (string | number)[]): Record<string, unknown> {
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw new FilterConfigError(path, `expected a mapping, got ${JSON.stringify(value)}`);
  }
  return value as Record<string, unknown>;
}

function positiveInteger(value: unknown, key: string, min: number): number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < min) {
    throw new FilterConfigError(
      [key],
      `expected an integer of at least ${min}, got ${JSON.stringify(value)}`,
    );
  }
  return value;
}
