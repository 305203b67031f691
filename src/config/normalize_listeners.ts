/**
 * Normalizes `servers[].listeners[]`: the network filter and what it refers to, stream
 * filters (known types, module URLs, plugin names, failure modes), TLS and access logs;
 * and checks that listener names and addresses are unique.
 *
 * @module
 */

import { pathToFileURL } from "node:url";
import type { LoadOptions } from "./load.ts";
import {
  firstDefined,
  listNames,
  type NormalizeContext,
  normalizeTls,
  resolveFromConfig,
  resolveOutput,
} from "./normalize_shared.ts";
import type { FieldPath } from "./positions.ts";
import type { RawConfig, RawListener, RawStreamFilter } from "./schema.ts";
import type {
  ListenerConfig,
  ProxyNetworkFilter,
  RouterConfig,
  StreamFilterConfig,
  TcpProxyNetworkFilter,
} from "./types.ts";
import { describeValue, formatHostPort } from "./values.ts";

/** What listeners refer to, already normalized. */
export interface ListenerRefs {
  /** Routers by name, for the proxy filter's `router_config_name`. */
  routers: ReadonlyMap<string, RouterConfig>;
  /** Cluster names, for `tcp_proxy`. */
  clusters: ReadonlySet<string>;
  /** Plugin names, for `type: plugin` filters. */
  plugins: ReadonlySet<string>;
  /** Known stream filter types. */
  options: LoadOptions;
}

const MODULE_ONLY_KEYS = ["module", "export", "integrity", "sandbox"] as const;
const WILDCARD_HOSTS = new Set(["0.0.0.0", "::"]);

/**
 * Normalizes every listener of every server, naming unnamed ones `listener<N>`.
 *
 * @param raw The parsed config.
 * @param refs Routers, clusters and plugins the listeners may refer to.
 * @param ctx The normalizing context.
 * @returns The listeners in config order.
 * @throws {ConfigError} On the first problem.
 */
export function normalizeListeners(
  raw: RawConfig,
  refs: ListenerRefs,
  ctx: NormalizeContext,
): ListenerConfig[] {
  const listeners: ListenerConfig[] = [];
  const names = new Map<string, FieldPath>();
  const binds: { hostname: string; port: number; path: FieldPath }[] = [];
  raw.servers.forEach((server, s) => {
    server.listeners.forEach((entry, l) => {
      const path = ["servers", s, "listeners", l];
      const listener = normalizeListener(entry, listeners.length, path, refs, ctx);
      const first = names.get(listener.name);
      if (first !== undefined) {
        throw ctx.source.error(
          entry.name === undefined ? path : [...path, "name"],
          `duplicate listener name ${JSON.stringify(listener.name)}; first defined at ${
            firstDefined(ctx.source, first)
          }`,
        );
      }
      names.set(listener.name, path);
      const clash = binds.find((b) => bindsClash(b, listener));
      if (clash !== undefined) {
        throw ctx.source.error(
          [...path, "address"],
          `duplicate listener address ${
            formatHostPort(listener.hostname, listener.port)
          }; already bound by ${firstDefined(ctx.source, clash.path)}`,
        );
      }
      binds.push({ hostname: listener.hostname, port: listener.port, path });
      listeners.push(listener);
    });
  });
  return listeners;
}

/**
 * Whether two binds cannot both succeed: the same port on the same host, or on a host
 * and the wildcard address. Port 0 never clashes: the OS picks a free port each time.
 *
 * @param a A bind.
 * @param b Another bind.
 * @returns True when they clash.
 */
export function bindsClash(
  a: { hostname: string; port: number },
  b: { hostname: string; port: number },
): boolean {
  if (a.port === 0 || a.port !== b.port) return false;
  if (a.hostname === b.hostname) return true;
  const v6 = (h: string) => h.includes(":");
  return (WILDCARD_HOSTS.has(a.hostname) || WILDCARD_HOSTS.has(b.hostname)) &&
    v6(a.hostname) === v6(b.hostname);
}

function normalizeListener(
  raw: RawListener,
  index: number,
  path: FieldPath,
  refs: ListenerRefs,
  ctx: NormalizeContext,
): ListenerConfig {
  const chainPath = [...path, "filter_chains", 0];
  const chain = raw.filter_chains[0];
  const network = normalizeNetworkFilter(chain.filters[0], [...chainPath, "filters", 0], refs, ctx);
  if (network.type === "tcp_proxy" && raw.stream_filters.length > 0) {
    // Dropping them silently, as MOSN would, could skip an auth filter.
    throw ctx.source.error(
      [...path, "stream_filters"],
      "stream filters need the proxy network filter; this listener uses tcp_proxy",
    );
  }
  return {
    name: raw.name ?? `listener${index}`,
    hostname: raw.address.hostname,
    port: raw.address.port,
    network,
    streamFilters: raw.stream_filters.map((f, i) =>
      normalizeStreamFilter(f, [...path, "stream_filters", i], refs, ctx)
    ),
    tls: normalizeTls(chain.tls_context, [...chainPath, "tls_context"], ctx, "listener"),
    accessLogs: raw.access_logs.map((log) => ({
      path: resolveOutput(ctx.dir, log.log_path),
      format: log.log_format,
    })),
    maxHeaderBytes: raw.max_header_bytes,
    headerReadTimeoutMs: httpTimeout(raw, "header_read_timeout", 60_000, network.type, path, ctx),
    idleTimeoutMs: httpTimeout(raw, "connection_idle_timeout", 75_000, network.type, path, ctx),
    bodyReadTimeoutMs: httpTimeout(raw, "body_read_timeout", 60_000, network.type, path, ctx),
    position: ctx.source.position(path),
  };
}

/**
 * A timeout of the HTTP server (`header_read_timeout`, `connection_idle_timeout`,
 * `body_read_timeout`): its default on proxy listeners, refused (never ignored) on a
 * tcp_proxy listener, whose own `idle_timeout` is in its filter's config.
 */
function httpTimeout(
  raw: RawListener,
  key: "header_read_timeout" | "connection_idle_timeout" | "body_read_timeout",
  defaultMs: number,
  network: "proxy" | "tcp_proxy",
  path: FieldPath,
  ctx: NormalizeContext,
): number {
  const timeout = raw[key];
  if (network === "proxy") return timeout ?? defaultMs;
  if (timeout !== undefined && timeout !== 0) {
    throw ctx.source.error(
      [...path, key],
      `${key} needs the proxy network filter; tcp_proxy has idle_timeout in its config`,
    );
  }
  return 0;
}

function normalizeNetworkFilter(
  raw: RawListener["filter_chains"][number]["filters"][number],
  path: FieldPath,
  refs: ListenerRefs,
  ctx: NormalizeContext,
): ProxyNetworkFilter | TcpProxyNetworkFilter {
  if (raw.type === "proxy") {
    const name = raw.config.router_config_name;
    if (!refs.routers.has(name)) {
      throw ctx.source.error(
        [...path, "config", "router_config_name"],
        `unknown router ${JSON.stringify(name)}; defined routers: ${
          listNames(refs.routers.keys())
        }`,
      );
    }
    const protocols = normalizeProtocols(raw.config, [...path, "config"], ctx);
    return {
      type: "proxy",
      ...protocols,
      routerConfigName: name,
      normalizePath: raw.config.normalize_path,
      mergeSlashes: raw.config.merge_slashes,
      pathWithEscapedSlashesAction: raw.config.path_with_escaped_slashes_action,
      useRemoteAddress: raw.config.use_remote_address,
      xffNumTrustedHops: raw.config.xff_num_trusted_hops,
      trustedProxies: raw.config.trusted_proxies,
    };
  }
  const config = raw.config;
  const routes = config.routes ?? [];
  if (routes.length > 1) {
    throw ctx.source.error(
      [...path, "config", "routes"],
      `expected at most one route (Mosaic does not match tcp_proxy routes by address), got ${routes.length}`,
    );
  }
  const cluster = config.cluster ?? routes[0]?.cluster;
  if (cluster === undefined) {
    throw ctx.source.error(
      [...path, "config", "cluster"],
      "missing; expected the cluster to forward to (or MOSN's routes[0].cluster)",
    );
  }
  const clusterPath = config.cluster !== undefined
    ? [...path, "config", "cluster"]
    : [...path, "config", "routes", 0, "cluster"];
  if (config.cluster !== undefined && routes[0] !== undefined && routes[0].cluster !== cluster) {
    throw ctx.source.error(
      [...path, "config", "routes", 0, "cluster"],
      `conflicts with config.cluster ${JSON.stringify(cluster)}`,
    );
  }
  if (!refs.clusters.has(cluster)) {
    throw ctx.source.error(
      clusterPath,
      `unknown cluster ${JSON.stringify(cluster)}; defined clusters: ${listNames(refs.clusters)}`,
    );
  }
  return { type: "tcp_proxy", cluster, idleTimeoutMs: config.idle_timeout };
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function normalizeStreamFilter(
  raw: RawStreamFilter,
  path: FieldPath,
  refs: ListenerRefs,
  ctx: NormalizeContext,
): StreamFilterConfig {
  const type = raw.type;
  if (type !== "module") {
    for (const key of MODULE_ONLY_KEYS) {
      if (raw[key] !== undefined) {
        throw ctx.source.error(
          [...path, key],
          `only applies to type: module; this filter's type is ${JSON.stringify(type)}`,
        );
      }
    }
  }
  const isKnown = refs.options.isKnownFilterType;
  if (type !== "module" && type !== "plugin" && isKnown !== undefined && !isKnown(type)) {
    const known = new Set([...(refs.options.knownFilterTypes?.() ?? []), "module", "plugin"]);
    throw ctx.source.error(
      [...path, "type"],
      `unknown stream filter type ${JSON.stringify(type)}; known types: ${listNames(known)}`,
    );
  }
  const config = raw.config ?? {};
  const filter: StreamFilterConfig = {
    type,
    name: raw.name ?? type,
    config,
    failureMode: failureModeOf(raw, path, ctx),
    overrides: [],
    position: ctx.source.position(path),
  };
  if (type === "plugin") checkPluginRef(config, path, refs, ctx);
  if (type === "module") {
    if (raw.module === undefined) {
      throw ctx.source.error(
        [...path, "module"],
        "missing; type: module needs the module's URL or path (./filter.ts, file:, http:, https:)",
      );
    }
    filter.module = resolveModule(raw.module, [...path, "module"], ctx);
    filter.export = raw.export ?? "createStreamFilterFactory";
    if (raw.integrity !== undefined) filter.integrity = raw.integrity;
    if (raw.sandbox !== undefined) {
      filter.sandbox = {
        isolation: raw.sandbox.isolation,
        permissions: raw.sandbox.permissions,
        timeoutMs: raw.sandbox.timeout,
      };
    }
  }
  return filter;
}

/** `failure_mode` may sit on the entry or, as in MOSN's plugin agent, inside `config`. */
function failureModeOf(
  raw: RawStreamFilter,
  path: FieldPath,
  ctx: NormalizeContext,
): "open" | "closed" {
  const inner = isPlainObject(raw.config) ? raw.config.failure_mode : undefined;
  if (inner !== undefined && inner !== "open" && inner !== "closed") {
    throw ctx.source.error(
      [...path, "config", "failure_mode"],
      `expected "open" or "closed", got ${describeValue(inner)}`,
    );
  }
  if (raw.failure_mode !== undefined && inner !== undefined && raw.failure_mode !== inner) {
    throw ctx.source.error(
      [...path, "failure_mode"],
      `${JSON.stringify(raw.failure_mode)} conflicts with config.failure_mode ${
        JSON.stringify(inner)
      }`,
    );
  }
  return raw.failure_mode ?? inner ?? "closed";
}

function checkPluginRef(
  config: unknown,
  path: FieldPath,
  refs: ListenerRefs,
  ctx: NormalizeContext,
): void {
  const name = isPlainObject(config) ? config.plugin : undefined;
  if (typeof name === "string" && refs.plugins.has(name)) return;
  const defined = `defined plugins: ${listNames(refs.plugins)}`;
  if (!isPlainObject(config)) {
    throw ctx.source.error(
      [...path, "config"],
      `expected a mapping with "plugin" (the name of a plugin), got ${describeValue(config)}`,
    );
  }
  throw ctx.source.error(
    [...path, "config", "plugin"],
    typeof name === "string"
      ? `unknown plugin ${JSON.stringify(name)}; ${defined}`
      : `expected the name of a plugin, got ${describeValue(name)}; ${defined}`,
  );
}

const URL_SCHEME = /^[A-Za-z][A-Za-z0-9+.-]*:/;

/**
 * Resolves a module specifier: a relative or absolute path becomes a `file:` URL
 * against the config file's directory; `file:`, `http:` and `https:` URLs are kept.
 */
function resolveModule(spec: string, path: FieldPath, ctx: NormalizeContext): string {
  if (!URL_SCHEME.test(spec)) return pathToFileURL(resolveFromConfig(ctx.dir, spec)).href;
  let url: URL | undefined;
  try {
    url = new URL(spec);
  } catch {
    url = undefined;
  }
  if (url === undefined || !["file:", "http:", "https:"].includes(url.protocol)) {
    throw ctx.source.error(
      path,
      `expected a path or a file:, http: or https: URL, got ${describeValue(spec)}`,
    );
  }
  return url.href;
}

const HTTP_DOWNSTREAM = ["Http1", "Http2", "Auto"];
const HTTP_UPSTREAM = ["Http1", "Http2"];
const DEFAULT_MAX_FRAME_BYTES = 16 * 1024 * 1024;
const EXTEND_CONFIG_KEYS = ["sub_protocol", "module", "export", "config", "max_frame_size"];

type RawProxyConfig = Extract<
  RawListener["filter_chains"][number]["filters"][number],
  { type: "proxy" }
>["config"];

/**
 * The protocols of a `proxy` network filter: HTTP (`Http1`, `Http2`, `Auto`), or a
 * protocol codec named directly (`bolt`) or through MOSN's `X` and
 * `extend_config.sub_protocol`, optionally loaded from `extend_config.module`.
 */
function normalizeProtocols(
  raw: RawProxyConfig,
  path: FieldPath,
  ctx: NormalizeContext,
): Pick<ProxyNetworkFilter, "downstreamProtocol" | "upstreamProtocol" | "codec"> {
  // Read as plain values: the schema takes any protocol name and passes extend_config on.
  const loose = raw as {
    downstream_protocol: string;
    upstream_protocol?: string;
    extend_config?: Record<string, unknown>;
  };
  const downstream = loose.downstream_protocol;
  const upstream = loose.upstream_protocol;
  const extend = loose.extend_config ?? {};
  if (HTTP_DOWNSTREAM.includes(downstream)) {
    if (upstream !== undefined && !HTTP_UPSTREAM.includes(upstream)) {
      throw ctx.source.error(
        [...path, "upstream_protocol"],
        `expected "Http1" or "Http2" behind an HTTP downstream, got ${JSON.stringify(upstream)}`,
      );
    }
    return {
      downstreamProtocol: downstream as ProxyNetworkFilter["downstreamProtocol"],
      upstreamProtocol: (upstream ?? "Http1") as ProxyNetworkFilter["upstreamProtocol"],
    };
  }
  for (const key of Object.keys(extend)) {
    if (!EXTEND_CONFIG_KEYS.includes(key)) {
      throw ctx.source.error(
        [...path, "extend_config", key],
        `unknown key; expected one of ${EXTEND_CONFIG_KEYS.join(", ")}`,
      );
    }
  }
  const text = (key: string): string | undefined => {
    const value = extend[key];
    if (value === undefined) return undefined;
    if (typeof value !== "string" || value === "") {
      throw ctx.source.error(
        [...path, "extend_config", key],
        `expected a non-empty string, got ${describeValue(value)}`,
      );
    }
    return value;
  };
  const sub = text("sub_protocol");
  const name = downstream === "X" ? sub : downstream;
  if (name === undefined) {
    throw ctx.source.error(
      [...path, "extend_config", "sub_protocol"],
      'missing; downstream_protocol "X" needs the protocol\'s name here (MOSN\'s form), such as "bolt"',
    );
  }
  const upstreamName = upstream === undefined || upstream === "X" ? name : upstream;
  if (HTTP_UPSTREAM.includes(upstreamName)) {
    throw ctx.source.error(
      [...path, "upstream_protocol"],
      `expected the downstream's protocol ${
        JSON.stringify(name)
      }; Mosaic does not translate ${name} to HTTP`,
    );
  }
  if (upstreamName !== name) {
    throw ctx.source.error(
      [...path, "upstream_protocol"],
      `expected ${JSON.stringify(name)} (the downstream protocol), got ${
        JSON.stringify(upstreamName)
      }`,
    );
  }
  const max = extend.max_frame_size;
  if (max !== undefined && (typeof max !== "number" || !Number.isInteger(max) || max < 64)) {
    throw ctx.source.error(
      [...path, "extend_config", "max_frame_size"],
      `expected a whole number of bytes of at least 64, got ${describeValue(max)}`,
    );
  }
  const module = text("module");
  const exportName = text("export");
  return {
    downstreamProtocol: "Auto",
    upstreamProtocol: "Http1",
    codec: {
      name,
      upstream: upstreamName,
      ...(module !== undefined ? { module } : {}),
      ...(exportName !== undefined ? { export: exportName } : {}),
      ...(extend.config !== undefined ? { config: extend.config } : {}),
      maxFrameBytes: (max as number | undefined) ?? DEFAULT_MAX_FRAME_BYTES,
    },
  };
}
