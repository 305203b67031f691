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
 * The config (and every `per_filter_config` for the filter) is parsed once, at load.
 *
 * Status: stable. Safe against untrusted downstreams.
 *
 * @module
 */

import {
  type CreateStreamFilterFactory,
  FilterConfigError,
  type ReceiverFilter,
  type RequestStream,
} from "../../../mod.ts";

/** The parsed config: lower-case header names and the values they must have. */
type RequiredHeaders = readonly (readonly [string, string])[];

const parsed = new WeakSet<object>();

/** Parses the demo filter's config: a map of header names to values. */
export function parseDemoConfig(config: unknown): RequiredHeaders {
  if (config === null || config === undefined) return remember([]);
  if (typeof config !== "object" || Array.isArray(config)) {
    throw new FilterConfigError([], "expected a map of header names to values");
  }
  return remember(
    Object.entries(config).map(([name, value]) => {
      if (typeof value !== "string" && typeof value !== "number") {
        throw new FilterConfigError([name], `expected a string, got ${JSON.stringify(value)}`);
      }
      return Object.freeze([name.toLowerCase(), String(value)] as const);
    }),
  );
}

function remember(headers: (readonly [string, string])[]): RequiredHeaders {
  const frozen = Object.freeze(headers);
  parsed.add(frozen);
  return frozen;
}

/** The parsed config; parses one the loader did not (an embedder calling the factory). */
function requiredOf(config: unknown): RequiredHeaders {
  return parsed.has(config as object) ? config as RequiredHeaders : parseDemoConfig(config);
}

/** Creates the demo filter's factory. */
export const createStreamFilterFactory: CreateStreamFilterFactory = (config) => {
  const required = requiredOf(config);
  // One filter object serves every stream: it keeps no per-stream state.
  const filter: ReceiverFilter = {
    onReceive(stream: RequestStream) {
      const current = stream.config;
      const wanted = current === required || current === undefined ? required : requiredOf(current);
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
createStreamFilterFactory.parseConfig = parseDemoConfig;
