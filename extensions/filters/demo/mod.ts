/**
 * `demo`: MOSN's stream filter demo. Every configured header must be present with the
 * configured value, else the request is answered 403.
 *
 * ```yaml
 * stream_filters:
 *   - type: demo
 *     config: { User: admin }
 * ```
 *
 * Status: stable. Safe against untrusted downstreams.
 *
 * @module
 */

import type { CreateStreamFilterFactory, ReceiverFilter, RequestStream } from "../../../mod.ts";

/** Creates the demo filter's factory. */
export const createStreamFilterFactory: CreateStreamFilterFactory = (config) => {
  const required = parseRequiredHeaders(config, "config");
  // One filter object serves every stream: it keeps no per-stream state.
  const filter: ReceiverFilter = {
    onReceive(stream: RequestStream) {
      const wanted = stream.config === undefined || stream.config === config
        ? required
        : parseRequiredHeaders(stream.config, "per_filter_config");
      for (let i = 0; i < wanted.length; i++) {
        const [name, value] = wanted[i];
        if (stream.headers.get(name) !== value) {
          stream.respond(403);
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

function parseRequiredHeaders(config: unknown, where: string): [string, string][] {
  if (config === null || config === undefined) return [];
  if (typeof config !== "object" || Array.isArray(config)) {
    throw new TypeError(`demo: ${where} must be a map of header names to values`);
  }
  return Object.entries(config).map(([name, value]) => {
    if (typeof value !== "string" && typeof value !== "number") {
      throw new TypeError(`demo: ${where}.${name} must be a string, got ${typeof value}`);
    }
    return [name.toLowerCase(), String(value)];
  });
}
