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
  PluginCaller,
  StreamFilterFactory,
} from "./api.ts";
import type { FilterEntry } from "./chain.ts";
import { getStreamFilter, registeredFilterTypes } from "./registry.ts";
import { filterLogger } from "../log/logger.ts";

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
  const logger = filterLogger(filter.name);
  const context: FactoryContext = {
    name: filter.name,
    listener: options.listener,
    configFile: options.configFile,
    logger,
    plugins: options.plugins,
  };
  let factory: StreamFilterFactory;
  try {
    factory = await create(filter.config, context);
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
    config: filter.config,
    failureMode: filter.failureMode,
    factory,
    logger,
  };
}

function describe(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  return typeof value === "object" ? "an object without createFilterChain" : typeof value;
}
