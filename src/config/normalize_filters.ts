/**
 * Ties `per_filter_config` entries to the stream filters they configure, and parses
 * filter configs at load: a `per_filter_config` key that names no filter of a listener
 * using the router is an error naming the nearest filter, and every config a registered
 * filter's `parseConfig` refuses stops the load with its file, line and field path.
 *
 * @module
 */

import type { ParseFilterConfig } from "../filter/api.ts";
import { isFilterConfigError } from "./filter_config.ts";
import type { LoadOptions } from "./load.ts";
import { listNames, type NormalizeContext } from "./normalize_shared.ts";
import type { FieldPath } from "./positions.ts";
import type { RawConfig } from "./schema.ts";
import type { FilterOverrideConfig, ListenerConfig, StreamFilterConfig } from "./types.ts";
import { nearestKey } from "./unknown_keys.ts";

interface OverrideEntry {
  filterName: string;
  value: unknown;
  path: FieldPath;
}

/** Every `per_filter_config` entry, by router name, in file order. */
function overridesByRouter(raw: RawConfig): Map<string, OverrideEntry[]> {
  const out = new Map<string, OverrideEntry[]>();
  raw.servers.forEach((server, s) => {
    server.routers.forEach((router, r) => {
      const entries: OverrideEntry[] = [];
      router.virtual_hosts.forEach((vh, v) => {
        const vhPath = ["servers", s, "routers", r, "virtual_hosts", v];
        for (const [filterName, value] of Object.entries(vh.per_filter_config)) {
          entries.push({ filterName, value, path: [...vhPath, "per_filter_config", filterName] });
        }
        vh.routers.forEach((route, i) => {
          for (const [filterName, value] of Object.entries(route.per_filter_config)) {
            entries.push({
              filterName,
              value,
              path: [...vhPath, "routers", i, "per_filter_config", filterName],
            });
          }
        });
      });
      out.set(router.router_config_name, entries);
    });
  });
  return out;
}

/**
 * Attaches to every stream filter the `per_filter_config` entries naming it, checks that
 * every entry names a filter, and runs registered config parsers.
 *
 * @param raw The parsed config.
 * @param listeners The normalized listeners (their filters are completed in place).
 * @param ctx The normalizing context.
 * @param options Load options, with the filter config parsers.
 * @throws {ConfigError} On a `per_filter_config` naming no filter, or a config a filter refuses.
 */
export function attachFilterConfigs(
  raw: RawConfig,
  listeners: ListenerConfig[],
  ctx: NormalizeContext,
  options: LoadOptions,
): void {
  const byRouter = overridesByRouter(raw);
  const filterPaths = new Map<StreamFilterConfig, FieldPath>();
  const overridePaths = new Map<FilterOverrideConfig, FieldPath>();
  let index = 0;
  raw.servers.forEach((server, s) => {
    server.listeners.forEach((_, l) => {
      listeners[index++].streamFilters.forEach((filter, i) => {
        filterPaths.set(filter, ["servers", s, "listeners", l, "stream_filters", i]);
      });
    });
  });
  const usedBy = new Map<string, ListenerConfig[]>();
  for (const listener of listeners) {
    if (listener.network.type !== "proxy") continue;
    const name = listener.network.routerConfigName;
    usedBy.set(name, [...(usedBy.get(name) ?? []), listener]);
  }
  for (const [router, entries] of byRouter) {
    const users = usedBy.get(router) ?? [];
    // A router no listener uses configures nothing: its entries have no filter to name.
    if (users.length === 0) continue;
    for (const entry of entries) {
      let named = false;
      for (const listener of users) {
        for (const filter of listener.streamFilters) {
          if (filter.name !== entry.filterName) continue;
          named = true;
          const override = { config: entry.value, position: ctx.source.position(entry.path) };
          overridePaths.set(override, entry.path);
          (filter.overrides ??= []).push(override);
        }
      }
      if (!named) {
        const filters = new Set(users.flatMap((l) => l.streamFilters.map((f) => f.name)));
        const nearest = nearestKey(entry.filterName, filters);
        const listenerNames = users.map((l) => JSON.stringify(l.name)).join(", ");
        throw ctx.source.error(
          entry.path,
          `no stream filter named ${JSON.stringify(entry.filterName)} on listener ` +
            `${listenerNames}, which uses this router; ` +
            (nearest !== undefined
              ? `did you mean ${JSON.stringify(nearest)}?`
              : `the filters there: ${listNames(filters)}`),
        );
      }
    }
  }
  const parserOf = options.filterConfigParser;
  if (parserOf === undefined) return;
  for (const listener of listeners) {
    for (const filter of listener.streamFilters) {
      if (filter.type === "module") continue;
      const parse = parserOf(filter.type);
      if (parse === undefined) continue;
      const context = { name: filter.name, configFile: ctx.source.file };
      const path = [...filterPaths.get(filter)!, "config"];
      // Frozen wrappers: the parsed value is the filter's own, and the config's deep
      // freeze must not walk into it (it may hold typed arrays or class instances).
      filter.parsedConfig = Object.freeze({
        value: runParser(parse, filter.config, { ...context, source: "config" }, path, ctx),
      });
      for (const override of filter.overrides ?? []) {
        const value = runParser(
          parse,
          override.config,
          { ...context, source: "per_filter_config" },
          overridePaths.get(override)!,
          ctx,
        );
        override.parsed = Object.freeze({ value });
      }
    }
  }
}

function runParser(
  parse: ParseFilterConfig,
  config: unknown,
  context: Parameters<ParseFilterConfig>[1],
  path: FieldPath,
  ctx: NormalizeContext,
): unknown {
  try {
    return parse(config, context);
  } catch (error) {
    if (isFilterConfigError(error)) {
      throw ctx.source.error([...path, ...error.path], error.problem);
    }
    throw ctx.source.error(path, error instanceof Error ? error.message : String(error));
  }
}
