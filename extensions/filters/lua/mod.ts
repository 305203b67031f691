/**
 * `lua`: Envoy's Lua filter (`envoy_on_request(handle)`, `envoy_on_response(handle)`)
 * on Lua 5.4 in WebAssembly (npm `wasmoon`). Scripts written against Envoy's documented
 * API run unchanged.
 *
 * ```yaml
 * stream_filters:
 *   - type: lua
 *     config:
 *       default_source_code:            # or inline_code: "…", or source_file: ./x.lua
 *         inline_string: |
 *           function envoy_on_request(handle)
 *             handle:headers():add("x-lua", "hello")
 *           end
 *       source_codes:                   # named scripts, chosen per route
 *         deny.lua: { filename: ./deny.lua }
 *       instruction_budget: 1000000     # per call; past it the failure mode applies
 *       memory_limit: 67108864          # bytes the filter's Lua state may hold
 *       http_call_clusters: { auth: 127.0.0.1:9000 }   # for handle:httpCall("auth", …)
 * routers:                              # per route: Envoy's LuaPerRoute
 *   - per_filter_config:
 *       lua: { disabled: true }         # or { name: deny.lua } or { source_code: { inline_string: … } }
 * ```
 *
 * One Lua state per factory, compiled once; each call runs on a pooled coroutine.
 * Scripts see only base (without `load`, `loadfile`, `dofile`), `string`, `table`,
 * `math`, `utf8` and `coroutine`: no `os`, `io`, `debug`, `package` or `require`.
 * A script error, a spent instruction budget or the memory ceiling answers 500, or lets
 * the request through under `failure_mode: open`.
 *
 * Status: alpha. Scripts are trusted config (they can read and change every request),
 * but they cannot reach the file system, the network (except `http_call_clusters`), or stall the
 * proxy past their budget.
 *
 * @module
 */

import type {
  CreateStreamFilterFactory,
  FactoryContext,
  FilterChain,
  FilterConfigContext,
  ReceiverFilter,
  RequestStream,
  ResponseStream,
  SenderFilter,
} from "../../../mod.ts";
import {
  isParsedLuaConfig,
  type LuaFilterConfig,
  type LuaPerRoute,
  type LuaSource,
  parseLuaConfig,
  routeConfigsOf,
} from "./config.ts";
import { type CallContext, hostDispatch, yieldHandler } from "./host.ts";
import { LuaVm, wasmoonModulePath } from "./vm.ts";

export { parseLuaConfig } from "./config.ts";
export type { LuaFilterConfig, LuaPerRoute, LuaSource } from "./config.ts";

/** A compiled script: registry refs of its entry points (0n when absent). */
interface Script {
  readonly onRequest: bigint;
  readonly onResponse: bigint;
  readonly metadata: Readonly<Record<string, unknown>>;
}

/**
 * Makes a lua filter creator whose configs go through `parse` (by default
 * {@linkcode parseLuaConfig}); an embedder can map its own config shape onto Envoy's.
 *
 * @param parse Parses the filter's config and its `per_filter_config` entries.
 * @returns A creator with `parse` as its `parseConfig`.
 */
export function createLuaFilterFactory(
  parse: (config: unknown, context: FilterConfigContext) => unknown = parseLuaConfig,
): CreateStreamFilterFactory {
  const create: CreateStreamFilterFactory = async (config, ctx) => {
    const context = (source: FilterConfigContext["source"]) => ({
      source,
      configFile: ctx.configFile,
      name: ctx.name,
    });
    const own = isParsedLuaConfig(config) && config.kind === "filter"
      ? config
      : parse(config, context("config")) as LuaFilterConfig;
    const vm = await LuaVm.create({
      instructionBudget: own.instructionBudget,
      memoryLimit: own.memoryLimit,
      dispatch: hostDispatch(ctx.logger),
    });
    try {
      return buildFactory(vm, own, ctx, (raw) => parse(raw, context("per_filter_config")));
    } catch (error) {
      vm.close();
      throw error;
    }
  };
  create.parseConfig = parse;
  create.permissions = (config) => {
    const read: string[] = [];
    const wasm = wasmoonModulePath();
    if (wasm !== undefined) read.push(wasm);
    if (isParsedLuaConfig(config) && config.kind === "filter") {
      for (const source of [config.defaultSource, ...config.sources.values()]) {
        if (source?.file !== undefined) read.push(source.file);
      }
    }
    return { read };
  };
  return create;
}

/** Creates the lua filter's factory: one Lua state, every script compiled up front. */
export const createStreamFilterFactory: CreateStreamFilterFactory = createLuaFilterFactory();

function buildFactory(
  vm: LuaVm,
  own: LuaFilterConfig,
  ctx: FactoryContext,
  parseRoute: (raw: unknown) => unknown,
) {
  let anyResponse = false;
  const compile = (source: LuaSource, metadata: Readonly<Record<string, unknown>>): Script => {
    let refs;
    try {
      refs = vm.compile(source.code, source.name);
    } catch (error) {
      throw new Error(
        `Lua script ${
          JSON.stringify(source.name)
        } of filter "${ctx.name}" on listener "${ctx.listener}" does not load: ${
          error instanceof Error ? error.message : String(error)
        }`,
        { cause: error },
      );
    }
    if (refs.onResponse !== 0n) anyResponse = true;
    return { ...refs, metadata };
  };

  const defaultScript = own.defaultSource === undefined
    ? undefined
    : compile(own.defaultSource, own.metadata);
  const named = new Map<string, Script>();
  for (const [name, source] of own.sources) named.set(name, compile(source, own.metadata));

  const routes = new WeakMap<LuaPerRoute, Script | null>();
  const forRoute = (route: LuaPerRoute): Script | undefined => {
    const known = routes.get(route);
    if (known !== undefined) return known ?? undefined;
    let script: Script | undefined;
    const metadata = route.metadata ?? own.metadata;
    if (route.disabled) script = undefined;
    else if (route.source !== undefined) script = compile(route.source, metadata);
    else if (route.name !== undefined) {
      const base = named.get(route.name);
      if (base === undefined) {
        throw new Error(
          `per_filter_config names Lua script ${
            JSON.stringify(route.name)
          }, which is not in source_codes of filter "${ctx.name}" on listener "${ctx.listener}" (known: ${
            [...named.keys()].join(", ") || "none"
          })`,
        );
      }
      script = { ...base, metadata };
    } else if (defaultScript !== undefined) script = { ...defaultScript, metadata };
    routes.set(route, script ?? null);
    return script;
  };
  // Route scripts parsed at load compile now, so a syntax error stops start-up.
  for (const route of routeConfigsOf(own)) forRoute(route);

  // A per_filter_config the loader did not parse (an embedder's, or the in-process
  // runner's) is parsed once, on first use.
  const unparsed = new WeakMap<object, LuaPerRoute>();
  const select = (config: unknown): Script | undefined => {
    if (config === own || config === undefined) return defaultScript;
    if (isParsedLuaConfig(config)) {
      return config.kind === "route" ? forRoute(config) : defaultScript;
    }
    if (typeof config !== "object" || config === null) return defaultScript;
    let route = unparsed.get(config);
    if (route === undefined) {
      route = parseRoute(config) as LuaPerRoute;
      unparsed.set(config, route);
    }
    return forRoute(route);
  };
  const onYield = yieldHandler(own.clusters);

  const receiver: ReceiverFilter = {
    onReceive(s: RequestStream) {
      const script = select(s.config);
      if (script === undefined || script.onRequest === 0n) return "continue";
      const context: CallContext = {
        request: s,
        response: undefined,
        metadata: s.metadata,
        routeMetadata: script.metadata,
        routeName: s.route?.name,
        logger: s.logger,
      };
      return vm.call(script.onRequest, vm.handles[0], context, onYield);
    },
  };
  const sender: SenderFilter = {
    append(s: ResponseStream) {
      const script = select(s.config);
      if (script === undefined || script.onResponse === 0n) return "continue";
      const context: CallContext = {
        request: s.request,
        response: s,
        metadata: s.metadata,
        routeMetadata: script.metadata,
        routeName: s.route?.name,
        logger: s.logger,
      };
      const outcome = vm.call(script.onResponse, vm.handles[1], context, onYield);
      return typeof outcome === "string" ? "continue" : outcome.then(() => "continue");
    },
  };
  return {
    createFilterChain(chain: FilterChain) {
      chain.addReceiver(receiver, "before_route");
      if (anyResponse) chain.addSender(sender);
    },
    destroy() {
      vm.close();
    },
  };
}
