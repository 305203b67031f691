/**
 * `ip_access`: allows or denies clients by CIDR, first matching rule wins, as MOSN's
 * ipaccess filter.
 *
 * ```yaml
 * - type: ip_access
 *   config:
 *     rules:
 *       - { action: deny,  addrs: ["10.0.0.0/8"] }
 *       - { action: allow, addrs: ["127.0.0.1/32", "::1/128"] }
 *     default_action: deny       # when no rule matches; default allow
 *     header: x-forwarded-for    # optional: take the client address from this header
 * ```
 *
 * Status: stable. Safe against untrusted downstreams unless `header` is set, which
 * trusts whoever wrote that header.
 *
 * @module
 */

import {
  checkConfigKeys,
  type CreateStreamFilterFactory,
  FilterConfigError,
  type RequestStream,
} from "../../../mod.ts";
import { type Cidr, matchesCidr, parseCidr, parseIp } from "./cidr.ts";

interface Rule {
  readonly allow: boolean;
  readonly ranges: readonly Cidr[];
}

/** The parsed config. */
export interface AccessConfig {
  readonly rules: readonly Rule[];
  readonly defaultAllow: boolean;
  readonly header: string | undefined;
}

const parsed = new WeakSet<object>();

/** Parses the IP access filter's config, once at load. */
export function parseAccessConfig(config: unknown): AccessConfig {
  const c = checkConfigKeys(config, ["rules", "default_action", "header"]);
  if (!Array.isArray(c.rules)) {
    throw new FilterConfigError(["rules"], "expected a list of { action, addrs }");
  }
  const rules = c.rules.map((rule: unknown, i: number): Rule => {
    const r = checkConfigKeys(rule, ["action", "addrs"], ["rules", i]);
    if (r.action !== "allow" && r.action !== "deny") {
      throw new FilterConfigError(
        ["rules", i, "action"],
        `expected "allow" or "deny", got ${JSON.stringify(r.action)}`,
      );
    }
    if (!Array.isArray(r.addrs)) {
      throw new FilterConfigError(["rules", i, "addrs"], "expected a list of CIDRs");
    }
    const ranges = r.addrs.map((addr: unknown, j: number) => {
      const range = typeof addr === "string" ? parseCidr(addr) : undefined;
      if (range === undefined) {
        throw new FilterConfigError(
          ["rules", i, "addrs", j],
          `expected an address or CIDR such as "10.0.0.0/8" or "::1/128", got ${
            JSON.stringify(addr)
          }`,
        );
      }
      return range;
    });
    return Object.freeze({ allow: r.action === "allow", ranges: Object.freeze(ranges) });
  });
  const defaultAction = c.default_action ?? "allow";
  if (defaultAction !== "allow" && defaultAction !== "deny") {
    throw new FilterConfigError(
      ["default_action"],
      `expected "allow" or "deny", got ${JSON.stringify(defaultAction)}`,
    );
  }
  if (c.header !== undefined && typeof c.header !== "string") {
    throw new FilterConfigError(["header"], "expected a header name");
  }
  const result: AccessConfig = Object.freeze({
    rules: Object.freeze(rules),
    defaultAllow: defaultAction === "allow",
    header: c.header as string | undefined,
  });
  parsed.add(result);
  return result;
}

function accessOf(config: unknown): AccessConfig {
  return parsed.has(config as object) ? config as AccessConfig : parseAccessConfig(config);
}

/** Creates the IP access filter's factory. */
export const createStreamFilterFactory: CreateStreamFilterFactory = (config) => {
  const own = accessOf(config);
  const filter = {
    onReceive(stream: RequestStream) {
      const current = stream.config;
      const access = current === own || current === undefined ? own : accessOf(current);
      let address = stream.remoteAddr.hostname;
      if (access.header !== undefined) {
        const value = stream.headers.get(access.header);
        if (value !== null) address = value.split(",")[0].trim();
      }
      if (isAllowed(access, address)) return "continue" as const;
      stream.respond(403, { body: "access denied\n" });
      return "stop" as const;
    },
  };
  return {
    createFilterChain(chain) {
      chain.addReceiver(filter, "before_route");
    },
  };
};
createStreamFilterFactory.parseConfig = parseAccessConfig;

function isAllowed(access: AccessConfig, address: string): boolean {
  const ip = parseIp(address);
  if (ip === undefined) return false;
  for (const rule of access.rules) {
    for (const range of rule.ranges) {
      if (matchesCidr(range, ip)) return rule.allow;
    }
  }
  return access.defaultAllow;
}
