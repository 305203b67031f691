/**
 * The router: finds the virtual host of a request by its authority, then the first
 * route of that host whose match conditions hold. Everything is compiled once per config
 * load; a match is a map lookup or two and a scan of one host's routes.
 *
 * @module
 */

import type { RouteConfig, RouterConfig, VirtualHostConfig } from "../config/types.ts";
import { RouterConfigError } from "./errors.ts";
import { Route } from "./route.ts";

export { RouterConfigError } from "./errors.ts";
export { type DirectResponse, type RetryPolicy, Route } from "./route.ts";

/** A header condition of a route, compiled. */
interface HeaderCondition {
  readonly name: string;
  readonly value: string;
  /** Set when the value is a regular expression; anchored. */
  readonly regex: RegExp | undefined;
}

/** A route with its match conditions compiled; at most one path condition is set. */
interface RouteEntry {
  /** Lower-cased when the match is not case-sensitive. */
  readonly prefix: string | undefined;
  /** Lower-cased when the match is not case-sensitive. */
  readonly path: string | undefined;
  readonly regex: RegExp | undefined;
  /** `case_sensitive` of the match (default true). */
  readonly caseSensitive: boolean;
  readonly headers: readonly HeaderCondition[];
  readonly route: Route;
}

/** A virtual host: its routes in config order, and what applies when none matches. */
interface RouteTable {
  readonly routes: readonly RouteEntry[];
  readonly virtualHost: VirtualHostInfo;
}

/**
 * A virtual host as filters see it when no route of it matched: its `per_filter_config`
 * still applies (as in Envoy); there is no route name and no cluster.
 */
export class VirtualHostInfo {
  /** Always undefined: no route matched. */
  readonly name: undefined = undefined;
  /** Always undefined: no route matched. */
  readonly clusterName: undefined = undefined;
  readonly #perFilterConfig: ReadonlyMap<string, unknown>;

  /** Wraps a virtual host's config. */
  constructor(readonly virtualHost: string, perFilterConfig: Record<string, unknown>) {
    this.#perFilterConfig = new Map(Object.entries(perFilterConfig));
    Object.freeze(this);
  }

  /** The virtual host's `per_filter_config` entry for a filter. */
  perFilterConfig(filterName: string): unknown {
    return this.#perFilterConfig.get(filterName);
  }
}

/**
 * Routes requests by authority, path and headers.
 *
 * Virtual hosts are chosen by the authority's host (case-insensitive, port ignored):
 * an exact domain first, then the longest matching `*suffix` wildcard (`*.example.com`
 * matches `a.example.com` and `a.b.example.com`, not `example.com`), then `*`. Routes of
 * the host are tried in config order and the first that matches wins.
 *
 * @example
 * ```ts ignore
 * const router = new Router(config.routers.get("server_router")!);
 * const route = router.match("www.example.com:8080", "/api/v1?x=1", request.headers);
 * ```
 */
export class Router {
  /** The router config's name. */
  readonly name: string;
  /** True when a virtual host or route has `per_filter_config`. */
  readonly overridesFilterConfig: boolean;

  #exact = new Map<string, RouteTable>();
  /** Wildcard suffixes (`.example.com` for `*.example.com`) to their host's routes. */
  #suffixes = new Map<string, RouteTable>();
  /** The distinct suffix lengths, longest first, so the first hit is the longest match. */
  #suffixLengths: readonly number[];
  #fallback: RouteTable | undefined;

  /**
   * Compiles a router config.
   *
   * @param config The validated router config.
   * @throws {RouterConfigError} when a domain is claimed by two virtual hosts or has a
   * wildcard other than `*` or a leading `*`, when a regular expression does not compile,
   * or when a header name or value is invalid.
   */
  constructor(config: RouterConfig) {
    this.name = config.name;
    this.overridesFilterConfig = config.virtualHosts.some((vh) =>
      Object.keys(vh.perFilterConfig).length > 0 ||
      vh.routes.some((r) => Object.keys(r.perFilterConfig).length > 0)
    );
    const owners = new Map<string, { name: string; index: number }>();
    const lengths = new Set<number>();
    config.virtualHosts.forEach((virtualHost, hostIndex) => {
      const where = `router "${config.name}": virtual_hosts[${hostIndex}]`;
      const table = compileVirtualHost(virtualHost, where);
      for (const domain of virtualHost.domains) {
        const key = normalizeDomain(domain, `${where}.domains`);
        const owner = owners.get(key);
        // `127.0.0.1` and `127.0.0.1:2046` in one virtual host (as Envoy and MOSN configs
        // often list them) are one key here: a duplicate only across virtual hosts.
        if (owner !== undefined && owner.index === hostIndex) continue;
        if (owner !== undefined) {
          throw new RouterConfigError(
            `${where}.domains: domain "${domain}" is already used by virtual host "${owner.name}"`,
          );
        }
        owners.set(key, { name: virtualHost.name, index: hostIndex });
        if (key === "*") {
          this.#fallback = table;
        } else if (key.startsWith("*")) {
          this.#suffixes.set(key.slice(1), table);
          lengths.add(key.length - 1);
        } else {
          this.#exact.set(key, table);
        }
      }
    });
    this.#suffixLengths = Object.freeze([...lengths].sort((a, b) => b - a));
  }

  /**
   * Finds the route of a request.
   *
   * @param authority The Host header or `:authority`, port and all.
   * @param path The request path with its query string.
   * @param headers The request headers, for header conditions.
   * @returns The first matching route; undefined when no virtual host or no route matches.
   */
  match(authority: string, path: string, headers: Headers): Route | undefined {
    const table = this.#virtualHost(hostOf(authority));
    if (table === undefined) return undefined;
    const routes = table.routes;
    const query = path.indexOf("?");
    const pathEnd = query < 0 ? path.length : query;
    let pathOnly: string | undefined;
    for (let i = 0; i < routes.length; i++) {
      const entry = routes[i];
      if (entry.prefix !== undefined) {
        if (entry.prefix.length > pathEnd) continue;
        if (
          entry.caseSensitive
            ? !path.startsWith(entry.prefix)
            : !startsWithIgnoringCase(path, entry.prefix)
        ) continue;
      } else if (entry.path !== undefined) {
        if (entry.path.length !== pathEnd) continue;
        if (
          entry.caseSensitive
            ? !path.startsWith(entry.path)
            : !startsWithIgnoringCase(path, entry.path)
        ) continue;
      } else if (entry.regex !== undefined) {
        pathOnly ??= query < 0 ? path : path.slice(0, query);
        if (!entry.regex.test(pathOnly)) continue;
      }
      if (entry.headers.length === 0 || headersMatch(entry.headers, headers)) return entry.route;
    }
    return undefined;
  }

  /**
   * The virtual host of an authority, for a request that matched no route of it: its
   * `per_filter_config` still applies.
   *
   * @param authority The Host header or `:authority`.
   * @returns The virtual host; undefined when no virtual host takes the authority.
   */
  virtualHost(authority: string): VirtualHostInfo | undefined {
    return this.#virtualHost(hostOf(authority))?.virtualHost;
  }

  #virtualHost(host: string): RouteTable | undefined {
    const exact = this.#exact.get(host);
    if (exact !== undefined) return exact;
    const lengths = this.#suffixLengths;
    for (let i = 0; i < lengths.length; i++) {
      // The wildcard must match at least one character: `*.a.com` is not `.a.com`.
      if (lengths[i] >= host.length) continue;
      const table = this.#suffixes.get(host.slice(host.length - lengths[i]));
      if (table !== undefined) return table;
    }
    return this.#fallback;
  }
}

/** `path.startsWith(lowerPrefix)` with ASCII letters of `path` compared case-insensitively. */
function startsWithIgnoringCase(path: string, lowerPrefix: string): boolean {
  for (let i = 0; i < lowerPrefix.length; i++) {
    let c = path.charCodeAt(i);
    if (c >= 0x41 && c <= 0x5a) c |= 0x20;
    if (c !== lowerPrefix.charCodeAt(i)) return false;
  }
  return true;
}

function headersMatch(conditions: readonly HeaderCondition[], headers: Headers): boolean {
  for (let i = 0; i < conditions.length; i++) {
    const condition = conditions[i];
    const value = headers.get(condition.name);
    if (value === null) return false;
    if (condition.regex === undefined ? value !== condition.value : !condition.regex.test(value)) {
      return false;
    }
  }
  return true;
}

function compileVirtualHost(virtualHost: VirtualHostConfig, where: string): RouteTable {
  const routes = Object.freeze(virtualHost.routes.map((route, routeIndex) => {
    const routeWhere = `${where}.routers[${routeIndex}]`;
    return compileRoute(
      route,
      new Route(route, virtualHost, { virtualHost: where, route: routeWhere }),
      routeWhere,
    );
  }));
  const info = new VirtualHostInfo(virtualHost.name, virtualHost.perFilterConfig);
  return Object.freeze({ routes, virtualHost: info });
}

function compileRoute(config: RouteConfig, route: Route, where: string): RouteEntry {
  const { prefix, path, regex } = config.match;
  const caseSensitive = config.match.caseSensitive ?? true;
  const probe = new Headers();
  const headers = config.match.headers.map((matcher, index): HeaderCondition => {
    const at = `${where}.match.headers[${index}]`;
    try {
      probe.get(matcher.name);
    } catch (cause) {
      throw new RouterConfigError(`${at}.name: "${matcher.name}" is not a valid header name`, {
        cause,
      });
    }
    return Object.freeze({
      name: matcher.name,
      value: matcher.value,
      regex: matcher.regex ? compileAnchored(matcher.value, `${at}.value`) : undefined,
    });
  });
  // One path condition applies, in MOSN's order of precedence.
  const fold = (value: string | undefined) => caseSensitive ? value : value?.toLowerCase();
  return Object.freeze({
    prefix: fold(prefix),
    path: prefix === undefined ? fold(path) : undefined,
    regex: prefix === undefined && path === undefined && regex !== undefined
      ? compileAnchored(regex, `${where}.match.regex`, caseSensitive ? "" : "i")
      : undefined,
    caseSensitive,
    headers: Object.freeze(headers),
    route,
  });
}

/** Compiles a pattern that must match the whole input, as Envoy's and MOSN's regexes do. */
function compileAnchored(source: string, where: string, flags = ""): RegExp {
  try {
    return new RegExp(`^(?:${source})$`, flags);
  } catch (cause) {
    throw new RouterConfigError(
      `${where}: "${source}" is not a valid regular expression (${(cause as Error).message})`,
      { cause },
    );
  }
}

/**
 * The host part of an authority, lower-cased, without port: `Example.com:80` →
 * `example.com`, `[::1]:80` → `[::1]`. A bare IPv6 address (`::1`, not valid in a Host
 * header but seen in the wild) gets its brackets so that it finds the same virtual host.
 */
function hostOf(authority: string): string {
  let end = authority.length;
  if (authority.charCodeAt(0) === 0x5b /* [ */) {
    const close = authority.indexOf("]");
    if (close > 0) end = close + 1;
  } else {
    const colon = authority.lastIndexOf(":");
    if (colon >= 0) {
      if (authority.indexOf(":") !== colon) return `[${authority.toLowerCase()}]`;
      end = colon;
    }
  }
  return (end === authority.length ? authority : authority.slice(0, end)).toLowerCase();
}

/** A configured domain in the form {@linkcode hostOf} gives, checked for its wildcard. */
function normalizeDomain(domain: string, where: string): string {
  if (domain === "*") return domain;
  const wildcard = domain.startsWith("*");
  const rest = wildcard ? domain.slice(1) : domain;
  if (rest.length === 0 || rest.includes("*")) {
    throw new RouterConfigError(
      `${where}: domain "${domain}" is not supported; expected a name, "*.suffix" or "*"`,
    );
  }
  return (wildcard ? "*" : "") + hostOf(rest);
}
