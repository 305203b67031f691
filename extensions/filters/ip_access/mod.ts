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

import type { CreateStreamFilterFactory, RequestStream } from "../../../mod.ts";
import { type Cidr, matchesCidr, parseCidr, parseIp } from "./cidr.ts";

interface Rule {
  allow: boolean;
  ranges: Cidr[];
}

interface AccessConfig {
  rules: Rule[];
  defaultAllow: boolean;
  header: string | undefined;
}

/** Creates the IP access filter's factory. */
export const createStreamFilterFactory: CreateStreamFilterFactory = (config) => {
  const parsed = parseAccessConfig(config);
  const filter = {
    onReceive(stream: RequestStream) {
      const access = stream.config === config ? parsed : parseAccessConfig(stream.config);
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

function parseAccessConfig(config: unknown): AccessConfig {
  const c = config as Record<string, unknown> | null;
  if (c === null || typeof c !== "object" || !Array.isArray(c.rules)) {
    throw new TypeError("ip_access: config needs rules: [{ action, addrs }]");
  }
  const rules = c.rules.map((rule: Record<string, unknown>, i: number) => {
    if (rule?.action !== "allow" && rule?.action !== "deny") {
      throw new TypeError(`ip_access: rules[${i}].action must be allow or deny`);
    }
    if (!Array.isArray(rule.addrs)) {
      throw new TypeError(`ip_access: rules[${i}].addrs must be a list of CIDRs`);
    }
    const ranges = rule.addrs.map((addr: unknown, j: number) => {
      const range = typeof addr === "string" ? parseCidr(addr) : undefined;
      if (range === undefined) {
        throw new TypeError(`ip_access: rules[${i}].addrs[${j}] is not a CIDR: ${addr}`);
      }
      return range;
    });
    return { allow: rule.action === "allow", ranges };
  });
  const defaultAction = c.default_action ?? "allow";
  if (defaultAction !== "allow" && defaultAction !== "deny") {
    throw new TypeError(`ip_access: default_action must be allow or deny, got ${defaultAction}`);
  }
  if (c.header !== undefined && typeof c.header !== "string") {
    throw new TypeError("ip_access: header must be a header name");
  }
  return { rules, defaultAllow: defaultAction === "allow", header: c.header };
}
