/**
 * The stream filter registry: names → factory creators. Built-ins are listed as data in
 * `extensions/builtin.ts` and registered from `main.ts` through this same function, so a
 * built-in has no powers a module loaded by URL lacks.
 *
 * @module
 */

import type { CreateStreamFilterFactory, FilterPermissions, ParseFilterConfig } from "./api.ts";

const registry = new Map<string, CreateStreamFilterFactory>();

/**
 * Registers a stream filter under a name usable as `type:` in `stream_filters`.
 *
 * @param name The filter's type name.
 * @param create Makes a factory from the filter's config. Give it a `parseConfig`
 * property to have the config and every `per_filter_config` naming the filter parsed and
 * checked once at load (see `ParseFilterConfig`).
 * @throws {Error} when the name is taken or reserved.
 * @example
 * ```ts
 * import { registerStreamFilter } from "@mosaic/proxy";
 * registerStreamFilter("hello", () => ({ createFilterChain() {} }));
 * ```
 */
export function registerStreamFilter(name: string, create: CreateStreamFilterFactory): void {
  if (name === "module") {
    throw new Error(`Cannot register stream filter "${name}": the name is reserved`);
  }
  if (registry.has(name)) {
    throw new Error(`Cannot register stream filter "${name}": the name is already registered`);
  }
  registry.set(name, create);
}

/** Returns the creator registered under `name`, if any. */
export function getStreamFilter(name: string): CreateStreamFilterFactory | undefined {
  return registry.get(name);
}

/**
 * The config parser of the filter registered under `type` (its creator's
 * `parseConfig`), which the loader runs on every config of that filter.
 */
export function streamFilterConfigParser(type: string): ParseFilterConfig | undefined {
  const parse = registry.get(type)?.parseConfig;
  return typeof parse === "function" ? parse : undefined;
}

/**
 * The permissions a configured filter needs (its creator's `permissions`), given the
 * config as loaded; undefined for filters that need none beyond the proxy's.
 */
export function streamFilterPermissions(
  type: string,
  config: unknown,
): FilterPermissions | undefined {
  const permissions = registry.get(type)?.permissions;
  return typeof permissions === "function" ? permissions(config) : undefined;
}

/** True when `type` can appear in `stream_filters`. */
export function isKnownFilterType(type: string): boolean {
  return type === "module" || registry.has(type);
}

/** The registered names, sorted, for error messages. */
export function registeredFilterTypes(): string[] {
  return [...registry.keys(), "module"].sort();
}
