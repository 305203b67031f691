/**
 * The in-process runtime: the module is imported into Mosaic's own process with
 * `import()`, under the process's Deno permissions, and its factory is called directly.
 * A filter that runs here costs what a built-in costs.
 *
 * @module
 */

import type { CreateStreamFilterFactory, StreamFilterFactory } from "../contract/filter.ts";
import { importFailure } from "./import_failure.ts";
import type { FilterRuntime, ModuleSpec } from "./runtime.ts";
import { exportProblem, loadError, type Subject } from "./subject.ts";

/** Runs a module in this process. */
export const inProcessRuntime: FilterRuntime = {
  name: "in process",
  async load({ subject, importUrl }: ModuleSpec): Promise<CreateStreamFilterFactory> {
    let namespace: Record<string, unknown>;
    try {
      namespace = await import(importUrl);
    } catch (error) {
      throw loadError(subject, await importFailure(error, subject.url), error);
    }
    const exported = namespace[subject.exportName];
    const problem = exportProblem(subject, Object.keys(namespace), typeof exported);
    if (problem !== undefined) throw loadError(subject, problem);
    return guardFactory(subject, exported as CreateStreamFilterFactory);
  },
};

/** Names the module in what its factory throws or wrongly returns. */
function guardFactory(
  subject: Subject,
  create: CreateStreamFilterFactory,
): CreateStreamFilterFactory {
  const guarded: CreateStreamFilterFactory = async (config, context) => {
    let factory: StreamFilterFactory;
    try {
      factory = await create(config, context);
    } catch (error) {
      const cause = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
      throw new Error(`${factoryLabel(subject)} threw ${cause}`, { cause: error });
    }
    if (
      factory === null || typeof factory !== "object" ||
      typeof factory.createFilterChain !== "function"
    ) {
      throw new TypeError(
        `${factoryLabel(subject)} returned ${
          describeValue(factory)
        }, expected an object with a createFilterChain(chain) method`,
      );
    }
    return factory;
  };
  // The module's config parser runs at load, for its config and every per_filter_config.
  const parse = (create as { parseConfig?: unknown }).parseConfig;
  if (typeof parse === "function") guarded.parseConfig = parse.bind(create);
  return guarded;
}

function factoryLabel(subject: Subject): string {
  return `the factory ${subject.exportName} of module ${subject.url}`;
}

function describeValue(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  return typeof value === "object" ? "an object without createFilterChain" : typeof value;
}
