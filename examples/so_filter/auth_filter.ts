/**
 * MOSN's `.so` stream filter demo, as a module Mosaic loads by URL: every header in the
 * filter's config must be on the request with that value, else the request is answered
 * 403. The same logic as the built-in `demo` filter, written against Mosaic's public
 * types only: `import type` is erased, so this file loads with no other Mosaic code,
 * from a file or from any web server.
 *
 * ```yaml
 * stream_filters:
 *   - type: module
 *     module: ./auth_filter.ts        # or http://127.0.0.1:8801/auth_filter.ts
 *     config: { User: admin }
 * ```
 *
 * @module
 */

import type { CreateStreamFilterFactory, ReceiverFilter, RequestStream } from "../../mod.ts";

/** The conventional export Mosaic looks the factory up by (MOSN's `CreateFilterFactory`). */
export const createStreamFilterFactory: CreateStreamFilterFactory = (config) => {
  const required = requiredHeaders(config, "config");
  // One filter object serves every stream: it keeps no per-stream state.
  const filter: ReceiverFilter = {
    onReceive(stream: RequestStream) {
      const wanted = stream.config === config
        ? required
        : requiredHeaders(stream.config, "per_filter_config");
      for (const [name, value] of wanted) {
        if (stream.headers.get(name) !== value) {
          stream.respond(403, { body: `Forbidden: header ${name} must be ${value}\n` });
          return "stop";
        }
      }
      return "continue";
    },
  };
  return {
    createFilterChain(chain) {
      chain.addReceiver(filter, "before_route");
    },
  };
};

/** Reads `{ Header: value, … }`; a bad config stops the load with this message. */
function requiredHeaders(config: unknown, where: string): [string, string][] {
  if (config === null || config === undefined) return [];
  if (typeof config !== "object" || Array.isArray(config)) {
    throw new TypeError(`auth_filter: ${where} must be a map of header names to values`);
  }
  return Object.entries(config).map(([name, value]) => {
    if (typeof value !== "string" && typeof value !== "number") {
      throw new TypeError(`auth_filter: ${where}.${name} must be a string, got ${typeof value}`);
    }
    return [name.toLowerCase(), String(value)];
  });
}
