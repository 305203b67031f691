/**
 * Turns a listener's `stream_filters` into factories, once per config load. Any
 * failure stops the load with an error naming the filter and where it is declared:
 * a listener never runs with part of its chain missing.
 *
 * @module
 */

import type { StreamFilterConfig } from "../config/types.ts";
import type {
  CreateStreamFilterFactory,
  FactoryContext,
  ParseFilterConfig,
  PluginCaller,
  StreamFilterFactory,
} from "../contract/filter.ts";
import { isFilterConfigError } from "../config/filter_config.ts";
import type { FilterEntry } from "./chain.ts";
import { getStreamFilter, registeredFilterTypes } from "./registry.ts";
import { filterLogger } from "../log/logger.ts";
import { filterMetrics } from "../stats/metrics.ts";
import { threadStats } from "../stats/scopes.ts";
import { tracePlugins } from "../trace/tracer.ts";

/** A stream filter could not be created. */
export class FilterLoadError extends Error {
  /** Makes the error. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "FilterLoadError";
  }
}

/** Finds the creator of a `type: module` filter (see `src/module/`). */
export type ModuleResolver = (
  filter: StreamFilterConfig,
) => Promise<CreateStreamFilterFactory>;

/** What building needs besides the filter configs. */
export interface BuildOptions {
  listener: string;
  configFile: string;
  plugins: PluginCaller;
  /** Loads `type: module` filters. */
  resolveModule: ModuleResolver;
}

/** Builds every filter of a listener, in order. */
export async function buildFilterEntries(
  filters: readonly StreamFilterConfig[],
  options: BuildOptions,
): Promise<FilterEntry[]> {
  const entries: FilterEntry[] = [];
  for (const filter of filters) entries.push(await buildFilterEntry(filter, options));
  return entries;
}

async function buildFilterEntry(
  filter: StreamFilterConfig,
  options: BuildOptions,
): Promise<FilterEntry> {
  const where = `${filter.position.file}:${filter.position.line}: ${filter.position.path}`;
  let create: CreateStreamFilterFactory | undefined;
  if (filter.type === "module") {
    create = await options.resolveModule(filter);
  } else {
    create = getStreamFilter(filter.type);
    if (create === undefined) {
      throw new FilterLoadError(
        `${where}: unknown stream filter type "${filter.type}"; known: ${
          registeredFilterTypes().join(", ")
        }`,
      );
    }
  }
  const { config, overrides } = parseFilterConfigs(filter, create.parseConfig);
  const logger = filterLogger(filter.name);
  const context: FactoryContext = {
    name: filter.name,
    listener: options.listener,
    configFile: options.configFile,
    logger,
    plugins: tracePlugins(options.plugins, filter.name),
    metrics: filterMetrics(options.listener, filter.name),
  };
  let factory: StreamFilterFactory;
  try {
    factory = await create(config, context);
  } catch (error) {
    const cause = error instanceof Error ? error.message : String(error);
    const what = filter.type === "module"
      ? `stream filter "${filter.name}" (module ${filter.module}, export ${
        filter.export ?? "createStreamFilterFactory"
      }) failed to create its factory`
      : `stream filter "${filter.name}" rejected its config`;
    throw new FilterLoadError(`${where}: ${what}: ${cause}`, { cause: error });
  }
  if (
    factory === null || typeof factory !== "object" ||
    typeof (factory as StreamFilterFactory).createFilterChain !== "function"
  ) {
    throw new FilterLoadError(
      `${where}: stream filter "${filter.name}" factory returned ${
        describe(factory)
      }, expected an object with a createFilterChain(chain) method`,
    );
  }
  return {
    name: filter.name,
    config,
    overrides,
    failureMode: filter.failureMode,
    factory,
    logger,
    stats: threadStats.filter(options.listener, filter.name),
  };
}

/**
 * Runs a filter's `parseConfig` on its config and every `per_filter_config` naming it,
 * reusing what the loader already parsed (registered filters); a module's parser runs
 * here, when the module is loaded.
 */
function parseFilterConfigs(
  filter: StreamFilterConfig,
  parse: ParseFilterConfig | undefined,
): { config: unknown; overrides: Map<unknown, unknown> | undefined } {
  if (parse === undefined) return { config: filter.config, overrides: undefined };
  const context = { name: filter.name, configFile: filter.position.file };
  const at = (path: string, line: number, error: unknown) => {
    const problem = error instanceof Error ? error.message : String(error);
    const detail = isFilterConfigError(error)
      ? `${path}${
        error.path.map((k) => typeof k === "number" ? `[${k}]` : `.${k}`).join("")
      }: ${error.problem}`
      : `${path}: ${problem}`;
    return new FilterLoadError(`${filter.position.file}:${line}: ${detail}`, { cause: error });
  };
  let config: unknown;
  if (filter.parsedConfig !== undefined) config = filter.parsedConfig.value;
  else {
    try {
      config = parse(filter.config, { ...context, source: "config" });
    } catch (error) {
      throw at(`${filter.position.path}.config`, filter.position.line, error);
    }
  }
  const overrides = new Map<unknown, unknown>();
  for (const override of filter.overrides ?? []) {
    if (override.parsed !== undefined) {
      overrides.set(override.config, override.parsed.value);
      continue;
    }
    try {
      overrides.set(
        override.config,
        parse(override.config, { ...context, source: "per_filter_config" }),
      );
    } catch (error) {
      throw at(override.position.path, override.position.line, error);
    }
  }
  return { config, overrides };
}

function describe(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  return typeof value === "object" ? "an object without createFilterChain" : typeof value;
}
