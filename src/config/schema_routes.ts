/**
 * Zod schemas for `servers[].routers[]`: router configs, virtual hosts and routes, in
 * MOSN's shape (MOSN calls a virtual host's routes `routers`).
 *
 * These check types, formats and defaults; rules that span fields (exactly one of
 * `route`/`direct_response`, clusters that exist) are checked while normalizing.
 *
 * @module
 */

import { z } from "zod";
import {
  durationMs,
  headersToAdd,
  headersToRemove,
  intIn,
  perFilterConfig,
  regexString,
  scalarString,
} from "./schema_values.ts";
import { describeValue } from "./values.ts";

/** A virtual host domain: exact, `*.suffix` or `*`. */
const domain = z.string().check((ctx) => {
  const value = ctx.value;
  const ok = value === "*" ||
    (value.startsWith("*.") && value.length > 2 && !value.slice(1).includes("*")) ||
    (value !== "" && !value.includes("*"));
  if (!ok) {
    ctx.issues.push({
      code: "custom",
      input: value,
      message: `expected an exact domain, "*.suffix" or "*", got ${describeValue(value)}`,
    });
  }
});

const headerMatcher = z.object({
  name: z.string().min(1),
  value: scalarString,
  regex: z.boolean().default(false),
});

const routeMatch = z.object({
  prefix: z.string().optional(),
  path: z.string().optional(),
  regex: regexString.optional(),
  headers: z.array(headerMatcher).default([]),
  case_sensitive: z.boolean().default(true),
});

const weightedCluster = z.object({
  cluster: z.object({ name: z.string().min(1), weight: intIn(0, 1_000_000) }),
});

const retryPolicy = z.object({
  retry_on: z.boolean().default(false),
  retry_timeout: durationMs.default(0),
  num_retries: intIn(0, 100).default(1),
});

const routeAction = z.object({
  cluster_name: z.string().min(1).optional(),
  weighted_clusters: z.array(weightedCluster).optional(),
  // Envoy's default route timeout: a stuck upstream never holds a stream forever. "0s"
  // turns it off (for long-lived streams).
  timeout: durationMs.default(15_000),
  retry_policy: retryPolicy.optional(),
  prefix_rewrite: z.string().optional(),
  host_rewrite: z.string().min(1).optional(),
  // MOSN reads the header lists inside `route`; Envoy beside it. Both are accepted.
  request_headers_to_add: headersToAdd,
  request_headers_to_remove: headersToRemove,
  response_headers_to_add: headersToAdd,
  response_headers_to_remove: headersToRemove,
});

const directResponse = z.object({
  status: intIn(100, 599),
  body: z.string().default(""),
});

const route = z.object({
  name: z.string().min(1).optional(),
  match: routeMatch,
  route: routeAction.optional(),
  direct_response: directResponse.optional(),
  request_headers_to_add: headersToAdd,
  request_headers_to_remove: headersToRemove,
  response_headers_to_add: headersToAdd,
  response_headers_to_remove: headersToRemove,
  per_filter_config: perFilterConfig,
});

const virtualHost = z.object({
  name: z.string().min(1).optional(),
  domains: z.array(domain).min(1),
  routers: z.array(route).default([]),
  request_headers_to_add: headersToAdd,
  request_headers_to_remove: headersToRemove,
  response_headers_to_add: headersToAdd,
  response_headers_to_remove: headersToRemove,
  per_filter_config: perFilterConfig,
});

/** One entry of `servers[].routers[]`. */
export const routerConfig = z.object({
  router_config_name: z.string().min(1),
  virtual_hosts: z.array(virtualHost).default([]),
});

/** A parsed router config. */
export type RawRouter = z.output<typeof routerConfig>;
/** A parsed virtual host. */
export type RawVirtualHost = z.output<typeof virtualHost>;
/** A parsed route. */
export type RawRoute = z.output<typeof route>;
/** A parsed route action. */
export type RawRouteAction = z.output<typeof routeAction>;
