/**
 * Normalizes `servers[].routers[]` into {@linkcode RouterConfig}s and checks what the
 * schema cannot: one kind of match per route, exactly one of `route` and
 * `direct_response`, header regexes that compile, clusters that exist, names and domains
 * that are unique.
 *
 * @module
 */

import type { FieldPath } from "./positions.ts";
import { firstDefined, listNames, type NormalizeContext } from "./normalize_shared.ts";
import type { RawConfig } from "./schema.ts";
import type { RawRoute, RawRouteAction, RawRouter, RawVirtualHost } from "./schema_routes.ts";
import type {
  HeaderValueOption,
  RouteAction,
  RouteConfig,
  RouterConfig,
  VirtualHostConfig,
} from "./types.ts";

type RawHeaderList = RawRoute["request_headers_to_add"];

function headerOptions(...lists: RawHeaderList[]): HeaderValueOption[] {
  const out: HeaderValueOption[] = [];
  for (const list of lists) {
    for (const h of list ?? []) {
      out.push({ key: h.header.key, value: h.header.value, append: h.append });
    }
  }
  return out;
}

function names(...lists: (string[] | undefined)[]): string[] {
  return lists.flatMap((list) => list ?? []);
}

/**
 * Normalizes every router config of every server.
 *
 * @param raw The parsed config.
 * @param clusters Names of the defined clusters, which routes must use.
 * @param ctx The normalizing context.
 * @returns Routers by `router_config_name`, with where each is defined.
 * @throws {ConfigError} On the first problem.
 */
export function normalizeRouters(
  raw: RawConfig,
  clusters: ReadonlySet<string>,
  ctx: NormalizeContext,
): Map<string, RouterConfig> {
  const routers = new Map<string, RouterConfig>();
  const seen = new Map<string, FieldPath>();
  raw.servers.forEach((server, s) => {
    server.routers.forEach((router, r) => {
      const path = ["servers", s, "routers", r];
      const name = router.router_config_name;
      const first = seen.get(name);
      if (first !== undefined) {
        throw ctx.source.error(
          [...path, "router_config_name"],
          `duplicate router name ${JSON.stringify(name)}; first defined at ${
            firstDefined(ctx.source, first)
          }`,
        );
      }
      seen.set(name, path);
      routers.set(name, normalizeRouter(router, path, clusters, ctx));
    });
  });
  return routers;
}

function normalizeRouter(
  raw: RawRouter,
  path: FieldPath,
  clusters: ReadonlySet<string>,
  ctx: NormalizeContext,
): RouterConfig {
  const domains = new Map<string, FieldPath>();
  const virtualHosts = raw.virtual_hosts.map((vhost, v) => {
    const vpath = [...path, "virtual_hosts", v];
    vhost.domains.forEach((domain, d) => {
      const key = domain.toLowerCase();
      const first = domains.get(key);
      if (first !== undefined) {
        throw ctx.source.error(
          [...vpath, "domains", d],
          `duplicate domain ${JSON.stringify(domain)} in router ${
            JSON.stringify(raw.router_config_name)
          }; first at ${firstDefined(ctx.source, first)}`,
        );
      }
      domains.set(key, [...vpath, "domains", d]);
    });
    return normalizeVirtualHost(vhost, v, vpath, clusters, ctx);
  });
  return { name: raw.router_config_name, virtualHosts };
}

function normalizeVirtualHost(
  raw: RawVirtualHost,
  index: number,
  path: FieldPath,
  clusters: ReadonlySet<string>,
  ctx: NormalizeContext,
): VirtualHostConfig {
  return {
    name: raw.name ?? `virtual_host${index}`,
    domains: raw.domains,
    routes: raw.routers.map((route, i) =>
      normalizeRoute(route, [...path, "routers", i], clusters, ctx)
    ),
    requestHeadersToAdd: headerOptions(raw.request_headers_to_add),
    requestHeadersToRemove: names(raw.request_headers_to_remove),
    responseHeadersToAdd: headerOptions(raw.response_headers_to_add),
    responseHeadersToRemove: names(raw.response_headers_to_remove),
    perFilterConfig: raw.per_filter_config,
  };
}

function normalizeRoute(
  raw: RawRoute,
  path: FieldPath,
  clusters: ReadonlySet<string>,
  ctx: NormalizeContext,
): RouteConfig {
  const match = raw.match;
  const kinds = (["prefix", "path", "regex"] as const).filter((k) => match[k] !== undefined);
  // A match of headers alone (MOSN's RPC routes: `headers: [{ name: service, … }]`)
  // matches every path.
  const headersOnly = kinds.length === 0 && match.headers.length > 0;
  if (kinds.length !== 1 && !headersOnly) {
    throw ctx.source.error(
      [...path, "match"],
      kinds.length === 0
        ? "expected one of prefix, path or regex, got none"
        : `expected only one of prefix, path or regex, got ${kinds.join(" and ")}`,
    );
  }
  match.headers.forEach((header, h) => {
    if (!header.regex) return;
    try {
      new RegExp(header.value);
    } catch (cause) {
      throw ctx.source.error(
        [...path, "match", "headers", h, "value"],
        `expected a valid regular expression (regex: true), got ${JSON.stringify(header.value)}: ${
          (cause as Error).message
        }`,
      );
    }
  });
  if (raw.route !== undefined && raw.direct_response !== undefined) {
    throw ctx.source.error(path, 'expected either "route" or "direct_response", got both');
  }
  if (raw.route === undefined && raw.direct_response === undefined) {
    throw ctx.source.error(path, 'expected "route" or "direct_response", got neither');
  }
  const action = raw.route;
  return {
    name: raw.name,
    match: {
      ...(match.prefix !== undefined
        ? { prefix: match.prefix }
        : headersOnly
        ? { prefix: "/" }
        : {}),
      ...(match.path !== undefined ? { path: match.path } : {}),
      ...(match.regex !== undefined ? { regex: match.regex } : {}),
      headers: match.headers.map((h) => ({
        name: h.name,
        value: h.value,
        // MOSN's default SOFA rule: `service: ".*"` matches every service, regex or not.
        regex: h.regex || (h.name === "service" && h.value === ".*"),
      })),
      ...(match.case_sensitive ? {} : { caseSensitive: false }),
    },
    route: action === undefined
      ? undefined
      : normalizeAction(action, [...path, "route"], clusters, ctx),
    directResponse: raw.direct_response === undefined ? undefined : {
      status: raw.direct_response.status,
      body: raw.direct_response.body,
    },
    requestHeadersToAdd: headerOptions(raw.request_headers_to_add, action?.request_headers_to_add),
    requestHeadersToRemove: names(
      raw.request_headers_to_remove,
      action?.request_headers_to_remove,
    ),
    responseHeadersToAdd: headerOptions(
      raw.response_headers_to_add,
      action?.response_headers_to_add,
    ),
    responseHeadersToRemove: names(
      raw.response_headers_to_remove,
      action?.response_headers_to_remove,
    ),
    perFilterConfig: raw.per_filter_config,
  };
}

function checkCluster(
  name: string,
  path: FieldPath,
  clusters: ReadonlySet<string>,
  ctx: NormalizeContext,
): void {
  if (clusters.has(name)) return;
  throw ctx.source.error(
    path,
    `unknown cluster ${JSON.stringify(name)}; defined clusters: ${listNames(clusters)}`,
  );
}

function normalizeAction(
  raw: RawRouteAction,
  path: FieldPath,
  clusters: ReadonlySet<string>,
  ctx: NormalizeContext,
): RouteAction {
  const weighted = raw.weighted_clusters ?? [];
  if (raw.cluster_name !== undefined && weighted.length > 0) {
    throw ctx.source.error(
      path,
      'expected either "cluster_name" or "weighted_clusters", got both',
    );
  }
  if (raw.cluster_name === undefined && weighted.length === 0) {
    throw ctx.source.error(
      path,
      'expected "cluster_name" or a non-empty "weighted_clusters", got neither',
    );
  }
  if (raw.cluster_name !== undefined) {
    checkCluster(raw.cluster_name, [...path, "cluster_name"], clusters, ctx);
  }
  let total = 0;
  weighted.forEach((entry, i) => {
    checkCluster(
      entry.cluster.name,
      [...path, "weighted_clusters", i, "cluster", "name"],
      clusters,
      ctx,
    );
    total += entry.cluster.weight;
  });
  if (weighted.length > 0 && total === 0) {
    throw ctx.source.error(
      [...path, "weighted_clusters"],
      "expected at least one cluster with a weight above 0, got all 0",
    );
  }
  const retry = raw.retry_policy;
  return {
    clusterName: raw.cluster_name,
    weightedClusters: weighted.map((w) => ({ name: w.cluster.name, weight: w.cluster.weight })),
    timeoutMs: raw.timeout,
    retryPolicy: retry === undefined ? undefined : {
      numRetries: retry.num_retries,
      retryOn5xx: retry.retry_on,
      perTryTimeoutMs: retry.retry_timeout,
    },
    prefixRewrite: raw.prefix_rewrite,
    hostRewrite: raw.host_rewrite,
  };
}
