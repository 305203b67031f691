/**
 * The `proxywasm` filter's config, parsed once at load. MOSN's shape:
 *
 * ```yaml
 * - type: proxywasm
 *   config:
 *     vm_config: { engine: wasmer, path: ./filter.wasm, md5: … }   # or url:, sha256:
 *     instance_num: 2          # instances in the pool, default 1
 *     root_context_id: 1       # default 1
 *     greeting: hello          # every other string key: the plugin configuration, as JSON
 * ```
 *
 * Envoy's shape is accepted too: `root_id`, `configuration` (a string passed as its bytes,
 * an object passed as JSON, or `{ "@type": …StringValue, value }`), and
 * `vm_config: { vm_id, configuration, code: { local: { filename } } }`.
 * A `per_filter_config` without `vm_config` keeps the listener's module and gives the
 * plugin a different configuration.
 *
 * @module
 */

import { FilterConfigError, parseDuration } from "../../../mod.ts";

/** Where the module comes from and what its bytes must hash to. */
export interface VmSource {
  /** An absolute file path or a `file:`/`http:`/`https:` URL. */
  readonly location: string;
  /** Lower-case hex MD5 the bytes must have. */
  readonly md5: string | undefined;
  /** Lower-case hex SHA-256 the bytes must have. */
  readonly sha256: string | undefined;
}

/** The parsed config. */
export interface ProxyWasmConfig {
  /** The module; undefined for a per-route config that keeps the listener's. */
  readonly vm: VmSource | undefined;
  /** The VM id (shared data and queues are per VM id). */
  readonly vmId: string;
  /** Bytes of the VM configuration buffer. */
  readonly vmConfiguration: Uint8Array;
  /** Bytes of the plugin configuration buffer. */
  readonly pluginConfiguration: Uint8Array;
  /** How many instances the pool keeps. */
  readonly instanceNum: number;
  /** The root context's id. */
  readonly rootContextId: number;
  /** The root id (`plugin_root_id`). */
  readonly rootId: string;
  /** `proxy_http_call` targets: cluster name → base URL (`http://host:port`). */
  readonly httpCallClusters: ReadonlyMap<string, string>;
  /** How long a paused stream waits to be resumed. */
  readonly pauseTimeoutMs: number;
  /** The most a body read for a callback may be. */
  readonly maxBodyBytes: number;
  /** What `proxy_get_log_level` answers (0 trace … 5 critical). */
  readonly logLevel: number;
}

const OWN_KEYS = new Set([
  "vm_config",
  "instance_num",
  "root_context_id",
  "root_id",
  "configuration",
  "from_wasm_plugin",
  "name",
  "http_call_clusters",
  "pause_timeout",
  "max_body_bytes",
  "log_level",
]);

const LEVELS = ["trace", "debug", "info", "warn", "error", "critical"];
const encoder = new TextEncoder();

function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

function hex(value: unknown, path: string[], length: number): string | undefined {
  if (value === undefined || value === "") return undefined;
  if (typeof value !== "string" || !new RegExp(`^[0-9a-fA-F]{${length}}$`).test(value)) {
    throw new FilterConfigError(path, `expected ${length} hex digits`);
  }
  return value.toLowerCase();
}

function resolveLocation(location: string, configFile: string): string {
  if (/^(https?|file):/.test(location)) return location;
  if (location.startsWith("/")) return location;
  const base = configFile.startsWith("<") ? `${Deno.cwd()}/` : configFile;
  return new URL(location, new URL(base, `file://${Deno.cwd()}/`)).pathname;
}

function configurationBytes(value: unknown, path: string[]): Uint8Array {
  if (value === undefined || value === null) return new Uint8Array();
  if (typeof value === "string") return encoder.encode(value);
  if (isObject(value) && typeof value["@type"] === "string") {
    if (typeof value.value === "string") return encoder.encode(value.value);
    throw new FilterConfigError([...path, "value"], "expected a string");
  }
  if (typeof value === "object") return encoder.encode(JSON.stringify(value));
  throw new FilterConfigError(path, "expected a string or an object");
}

function parseVm(raw: Record<string, unknown>, configFile: string): {
  vm: VmSource;
  vmId: string;
  vmConfiguration: Uint8Array;
} {
  const code = isObject(raw.code) && isObject(raw.code.local) ? raw.code.local : undefined;
  const location = raw.path ?? raw.url ?? code?.filename;
  if (typeof location !== "string" || location === "") {
    throw new FilterConfigError(["vm_config", "path"], "expected the module's path or url");
  }
  const sha256 = typeof code?.sha256 === "string" ? code.sha256 : raw.sha256;
  return {
    vm: {
      location: resolveLocation(location, configFile),
      md5: hex(raw.md5, ["vm_config", "md5"], 32),
      sha256: hex(sha256, ["vm_config", "sha256"], 64),
    },
    vmId: typeof raw.vm_id === "string" ? raw.vm_id : "",
    vmConfiguration: configurationBytes(raw.configuration, ["vm_config", "configuration"]),
  };
}

function positiveInt(value: unknown, path: string, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== "number" || !Number.isInteger(value) || value < 1) {
    throw new FilterConfigError([path], "expected a positive integer");
  }
  return value;
}

/**
 * Parses a `proxywasm` config or `per_filter_config` entry.
 *
 * @param config The raw config.
 * @param context Which config it is and the config file (to resolve relative paths).
 * @returns The frozen config.
 * @throws {FilterConfigError} naming the bad field.
 */
export function parseProxyWasmConfig(
  config: unknown,
  context: { source: "config" | "per_filter_config"; configFile: string },
): ProxyWasmConfig {
  if (!isObject(config)) throw new FilterConfigError([], "expected a map with vm_config");
  if (config.from_wasm_plugin !== undefined) {
    throw new FilterConfigError(
      ["from_wasm_plugin"],
      "shared VMs (wasm_global_plugins) are not supported yet; give vm_config here",
    );
  }
  let vmPart: ReturnType<typeof parseVm> | undefined;
  if (config.vm_config !== undefined) {
    if (!isObject(config.vm_config)) throw new FilterConfigError(["vm_config"], "expected a map");
    vmPart = parseVm(config.vm_config, context.configFile);
  } else if (context.source === "config") {
    throw new FilterConfigError(["vm_config"], "is required: { path: ./filter.wasm }");
  }
  let pluginConfiguration: Uint8Array;
  if (config.configuration !== undefined) {
    pluginConfiguration = configurationBytes(config.configuration, ["configuration"]);
  } else {
    const rest: Record<string, string> = {};
    for (const [key, value] of Object.entries(config)) {
      if (!OWN_KEYS.has(key) && typeof value === "string") rest[key] = value;
    }
    pluginConfiguration = Object.keys(rest).length === 0
      ? new Uint8Array()
      : encoder.encode(JSON.stringify(rest));
  }
  const clusters = new Map<string, string>();
  if (config.http_call_clusters !== undefined) {
    if (!isObject(config.http_call_clusters)) {
      throw new FilterConfigError(["http_call_clusters"], "expected a map of name to host:port");
    }
    for (const [name, target] of Object.entries(config.http_call_clusters)) {
      if (typeof target !== "string" || target === "") {
        throw new FilterConfigError(["http_call_clusters", name], "expected host:port or a URL");
      }
      clusters.set(name, /^https?:\/\//.test(target) ? target : `http://${target}`);
    }
  }
  let pauseTimeoutMs = 30_000;
  if (config.pause_timeout !== undefined) {
    const ms = parseDuration(config.pause_timeout);
    if (ms === undefined) {
      throw new FilterConfigError(["pause_timeout"], "expected a duration (30s)");
    }
    pauseTimeoutMs = ms;
  }
  const level = config.log_level === undefined ? 2 : LEVELS.indexOf(String(config.log_level));
  if (level < 0) throw new FilterConfigError(["log_level"], `expected one of ${LEVELS.join(", ")}`);
  const rootId = config.root_id ?? "";
  if (typeof rootId !== "string") throw new FilterConfigError(["root_id"], "expected a string");
  return Object.freeze({
    vm: vmPart?.vm,
    vmId: vmPart?.vmId ?? "",
    vmConfiguration: vmPart?.vmConfiguration ?? new Uint8Array(),
    pluginConfiguration,
    instanceNum: positiveInt(config.instance_num, "instance_num", 1),
    rootContextId: positiveInt(config.root_context_id, "root_context_id", 1),
    rootId,
    httpCallClusters: clusters,
    pauseTimeoutMs,
    maxBodyBytes: positiveInt(config.max_body_bytes, "max_body_bytes", 16 * 1024 * 1024),
    logLevel: level,
  });
}
