/**
 * A matched route: what the proxy asks after the router found one. Built once per config
 * load and immutable; everything a request needs is precomputed here so that using a
 * route costs no allocation beyond the headers it writes.
 *
 * @module
 */

import type { RouteInfo } from "../filter/api.ts";
import type {
  HeaderValueOption,
  RouteAction,
  RouteConfig,
  VirtualHostConfig,
} from "../config/types.ts";
import { RouterConfigError } from "./errors.ts";

/** The retry policy of a route, as the config gives it. */
export type RetryPolicy = NonNullable<RouteAction["retryPolicy"]>;

/** A route's direct response, as the config gives it. */
export type DirectResponse = NonNullable<RouteConfig["directResponse"]>;

const REMOVE = 0;
const SET = 1;
const APPEND = 2;

/** One header edit; a flat list of these is run in order on every request or response. */
interface HeaderOp {
  readonly kind: typeof REMOVE | typeof SET | typeof APPEND;
  readonly name: string;
  readonly value: string;
}

/**
 * A route of a virtual host. The router hands these out; they are shared by every
 * request that matches, so they are frozen.
 *
 * @example
 * ```ts ignore
 * const route = router.match("example.com", "/api/users?id=1", headers);
 * if (route?.directResponse === undefined) {
 *   const cluster = route?.pickCluster();
 *   const path = route?.rewritePath("/api/users?id=1");
 * }
 * ```
 */
export class Route implements RouteInfo {
  /** The route's `name`, if the config gives one. */
  readonly name: string | undefined;
  /** The virtual host's name. */
  readonly virtualHost: string;
  /**
   * The cluster the route sends to: the single cluster, or for weighted clusters the
   * first one. Undefined for a direct response.
   */
  readonly clusterName: string | undefined;
  /** Whole-request timeout in milliseconds; 0 means none. */
  readonly timeoutMs: number;
  /** The retry policy, if any. */
  readonly retryPolicy: RetryPolicy | undefined;
  /** The response to answer locally instead of going upstream, if any. */
  readonly directResponse: DirectResponse | undefined;
  /** The Host to send upstream instead of the client's, if any. */
  readonly hostRewrite: string | undefined;

  #clusterNames: readonly string[];
  /** Running sums of the weighted clusters' weights: a pick is one scan of a few numbers. */
  #cumulativeWeights: Float64Array;
  #totalWeight: number;
  #prefixRewrite: string | undefined;
  /** The prefix the rewrite replaces; undefined when it replaces the whole path. */
  #rewrittenPrefix: string | undefined;
  #requestOps: readonly HeaderOp[];
  #responseOps: readonly HeaderOp[];
  #perFilterConfig: ReadonlyMap<string, unknown>;

  /**
   * Builds a route from its config and its virtual host's.
   *
   * @param config The route.
   * @param virtualHost The virtual host the route belongs to.
   * @param where Where the virtual host and the route are in the config, for errors, e.g.
   * `{ virtualHost: 'router "r": virtual_hosts[0]', route: 'router "r": virtual_hosts[0].routers[2]' }`.
   * @throws {RouterConfigError} when a header to add or remove has an invalid name or value.
   */
  constructor(
    config: RouteConfig,
    virtualHost: VirtualHostConfig,
    where: { virtualHost: string; route: string },
  ) {
    const action = config.route;
    this.name = config.name;
    this.virtualHost = virtualHost.name;
    this.timeoutMs = action?.timeoutMs ?? 0;
    this.retryPolicy = action?.retryPolicy === undefined
      ? undefined
      : Object.freeze({ ...action.retryPolicy });
    this.directResponse = config.directResponse === undefined
      ? undefined
      : Object.freeze({ ...config.directResponse });
    this.hostRewrite = action?.hostRewrite;

    const weighted = action?.weightedClusters ?? [];
    this.#clusterNames = Object.freeze(weighted.map((cluster) => cluster.name));
    this.#cumulativeWeights = new Float64Array(weighted.length);
    let total = 0;
    for (let i = 0; i < weighted.length; i++) {
      // A weight of 0 (or below) takes the cluster out of rotation without removing it.
      total += Math.max(0, weighted[i].weight);
      this.#cumulativeWeights[i] = total;
    }
    this.#totalWeight = total;
    this.clusterName = action === undefined ? undefined : (action.clusterName ?? weighted[0]?.name);

    this.#prefixRewrite = action?.prefixRewrite;
    const { prefix, path, regex } = config.match;
    // A prefix match rewrites the matched prefix; an exact or regex match matched the whole
    // path, so the whole path (not the query) is replaced, as Envoy does. A route without a
    // path condition matched the empty prefix.
    this.#rewrittenPrefix = prefix ?? (path === undefined && regex === undefined ? "" : undefined);

    this.#requestOps = Object.freeze([
      ...compileHeaderOps(
        virtualHost.requestHeadersToRemove,
        virtualHost.requestHeadersToAdd,
        `${where.virtualHost}.request_headers_to`,
      ),
      ...compileHeaderOps(
        config.requestHeadersToRemove,
        config.requestHeadersToAdd,
        `${where.route}.request_headers_to`,
      ),
    ]);
    this.#responseOps = Object.freeze([
      ...compileHeaderOps(
        virtualHost.responseHeadersToRemove,
        virtualHost.responseHeadersToAdd,
        `${where.virtualHost}.response_headers_to`,
      ),
      ...compileHeaderOps(
        config.responseHeadersToRemove,
        config.responseHeadersToAdd,
        `${where.route}.response_headers_to`,
      ),
    ]);

    const perFilter = new Map<string, unknown>(Object.entries(virtualHost.perFilterConfig));
    for (const [name, value] of Object.entries(config.perFilterConfig)) perFilter.set(name, value);
    this.#perFilterConfig = perFilter;
    Object.freeze(this);
  }

  /**
   * Picks the cluster for one request: the single cluster, or a weighted choice among
   * `weighted_clusters`.
   *
   * @param random A source of numbers in [0, 1); `Math.random` by default.
   * @returns The cluster's name; undefined for a direct response.
   */
  pickCluster(random: () => number = Math.random): string | undefined {
    const names = this.#clusterNames;
    if (names.length === 0) return this.clusterName;
    if (names.length === 1 || this.#totalWeight === 0) return names[0];
    const point = random() * this.#totalWeight;
    const cumulative = this.#cumulativeWeights;
    for (let i = 0; i < cumulative.length; i++) {
      if (point < cumulative[i]) return names[i];
    }
    // Only reached when `random` returns 1 or more: give the last cluster with weight.
    for (let i = names.length - 1; i > 0; i--) {
      if (cumulative[i] > cumulative[i - 1]) return names[i];
    }
    return names[0];
  }

  /**
   * Applies `prefix_rewrite` to a path: the matched prefix (for a `path` or `regex` match,
   * the whole path) is replaced and the query string kept.
   *
   * @param path The path with its query string.
   * @returns The path to send upstream; `path` itself when there is nothing to rewrite or
   * when the path no longer starts with the matched prefix (a filter changed it).
   */
  rewritePath(path: string): string {
    const rewrite = this.#prefixRewrite;
    if (rewrite === undefined) return path;
    const prefix = this.#rewrittenPrefix;
    if (prefix !== undefined) {
      return path.startsWith(prefix) ? rewrite + path.slice(prefix.length) : path;
    }
    const query = path.indexOf("?");
    return query < 0 ? rewrite : rewrite + path.slice(query);
  }

  /**
   * Edits request headers: the virtual host's removals and additions, then the route's,
   * so the route has the last word.
   *
   * @param headers The request headers, changed in place.
   */
  applyRequestHeaders(headers: Headers): void {
    applyHeaderOps(this.#requestOps, headers);
  }

  /**
   * Edits response headers: the virtual host's removals and additions, then the route's.
   *
   * @param headers The response headers, changed in place.
   */
  applyResponseHeaders(headers: Headers): void {
    applyHeaderOps(this.#responseOps, headers);
  }

  /**
   * The route's `per_filter_config` entry for a filter, else the virtual host's.
   *
   * @param filterName The filter's name.
   * @returns The config override; undefined when neither has one.
   */
  perFilterConfig(filterName: string): unknown {
    return this.#perFilterConfig.get(filterName);
  }
}

function applyHeaderOps(ops: readonly HeaderOp[], headers: Headers): void {
  for (let i = 0; i < ops.length; i++) {
    const op = ops[i];
    if (op.kind === REMOVE) headers.delete(op.name);
    else if (op.kind === SET) headers.set(op.name, op.value);
    else headers.append(op.name, op.value);
  }
}

/**
 * Turns one level's removals and additions into edits, removals first, and checks every
 * name and value once so that a bad one fails the load, not a request.
 *
 * @param where The config path of the fields without their `_add`/`_remove` ending.
 */
function compileHeaderOps(
  remove: readonly string[],
  add: readonly HeaderValueOption[],
  where: string,
): HeaderOp[] {
  const probe = new Headers();
  const ops: HeaderOp[] = [];
  for (const name of remove) {
    try {
      probe.delete(name);
    } catch (cause) {
      throw new RouterConfigError(`${where}_remove: "${name}" is not a valid header name`, {
        cause,
      });
    }
    ops.push(Object.freeze({ kind: REMOVE, name, value: "" }));
  }
  for (const option of add) {
    try {
      probe.set(option.key, option.value);
    } catch (cause) {
      throw new RouterConfigError(
        `${where}_add: header "${option.key}: ${option.value}" has an invalid name or value`,
        { cause },
      );
    }
    const kind = option.append ? APPEND : SET;
    ops.push(Object.freeze({ kind, name: option.key, value: option.value }));
  }
  return ops;
}
