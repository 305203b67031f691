/**
 * `proxywasm`: runs proxy-wasm filters (ABI 0.1.0, 0.2.0, 0.2.1) written with any
 * proxy-wasm SDK, in MOSN's config shape (Envoy's is accepted too).
 *
 * ```yaml
 * stream_filters:
 *   - type: proxywasm
 *     config:
 *       vm_config: { engine: wasmer, path: ./filter.wasm, sha256: … }
 *       instance_num: 1
 *       root_context_id: 1
 *       greeting: hello          # the plugin configuration: {"greeting":"hello"}
 * ```
 *
 * The module is read, checked against its pin and compiled once per config load; a
 * module without the required exports stops the load with the list of what it lacks.
 * Instances are pooled (`instance_num`) and serve many streams each; a trap answers
 * with the filter's `failure_mode` and the instance is replaced.
 *
 * Status: alpha. A guest runs in this process's event loop with no time budget: a guest
 * that loops forever stalls the proxy, so run only modules you trust with your uptime.
 *
 * @module
 */

import type { CreateStreamFilterFactory } from "../../../mod.ts";
import { parseProxyWasmConfig, type ProxyWasmConfig } from "./config.ts";
import { ProxyWasmFilter } from "./filter.ts";
import { compileModule, Plugin } from "./plugin.ts";

export { wasmMetrics } from "./shared.ts";
export { WasmTrapError } from "./vm.ts";

const parsed = new WeakSet<object>();

function parseConfig(
  config: unknown,
  context: { source: "config" | "per_filter_config"; configFile: string },
): ProxyWasmConfig {
  const result = parseProxyWasmConfig(config, context);
  parsed.add(result);
  return result;
}

/** Creates the proxywasm filter's factory: compiles the module and starts its VMs. */
export const createStreamFilterFactory: CreateStreamFilterFactory = async (config, context) => {
  const base = parsed.has(config as object)
    ? config as ProxyWasmConfig
    : parseProxyWasmConfig(config, { source: "config", configFile: context.configFile });
  const module = await compileModule(base.vm!);
  const options = { name: context.name, logger: context.logger, metrics: context.metrics };
  const main = new Plugin(module, base, options);
  const plugins = new Map<ProxyWasmConfig, Plugin | Promise<Plugin>>([[base, main]]);
  const unparsed = new WeakMap<object, ProxyWasmConfig>();
  const remember = (raw: object) => {
    const config = parseConfig(raw, {
      source: "per_filter_config",
      configFile: context.configFile,
    });
    unparsed.set(raw, config);
    return config;
  };
  const pluginFor = (current: unknown): Plugin | Promise<Plugin> => {
    if (current === base || current === undefined) return main;
    // A config the loader did not parse (an embedder's) is parsed once here.
    const override = parsed.has(current as object)
      ? current as ProxyWasmConfig
      : unparsed.get(current as object) ?? remember(current as object);
    const known = plugins.get(override);
    if (known !== undefined) return known;
    // A per_filter_config: the listener's module (or its own) with its configuration.
    const made = override.vm === undefined
      ? new Plugin(
        module,
        { ...override, vmId: base.vmId, vmConfiguration: base.vmConfiguration },
        options,
      )
      : compileModule(override.vm).then((m) => {
        const plugin = new Plugin(m, override, options);
        plugins.set(override, plugin);
        return plugin;
      });
    plugins.set(override, made);
    return made;
  };
  return {
    createFilterChain(chain) {
      const filter = new ProxyWasmFilter(pluginFor);
      chain.addReceiver(filter, "before_route");
      chain.addSender(filter);
    },
    async destroy() {
      for (const plugin of plugins.values()) (await plugin).close();
    },
  };
};
createStreamFilterFactory.parseConfig = parseConfig;
createStreamFilterFactory.permissions = (config) => {
  const location = (config as ProxyWasmConfig | undefined)?.vm?.location;
  if (location === undefined) return {};
  if (location.startsWith("/")) return { read: [location] };
  const url = new URL(location);
  if (url.protocol === "file:") return { read: [decodeURIComponent(url.pathname)] };
  return { net: [`${url.hostname}:${url.port || (url.protocol === "https:" ? "443" : "80")}`] };
};
