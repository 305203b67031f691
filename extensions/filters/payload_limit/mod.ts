/**
 * `payload_limit`: answers 413 to a request body over `max_entity_size` bytes, as
 * MOSN's payloadlimit filter. A declared Content-Length is checked without reading the
 * body; a chunked body is read up to the limit and no further.
 *
 * ```yaml
 * - type: payload_limit
 *   config: { max_entity_size: 1048576, http_status: 413 }
 * ```
 *
 * Status: stable. Safe against untrusted downstreams.
 *
 * @module
 */

import {
  checkConfigKeys,
  type CreateStreamFilterFactory,
  FilterConfigError,
  type RequestStream,
} from "../../../mod.ts";

/** The parsed config. */
export interface LimitConfig {
  readonly maxBytes: number;
  readonly status: number;
}

const parsed = new WeakSet<object>();

/** Parses the payload limit filter's config, once at load. */
export function parseLimitConfig(config: unknown): LimitConfig {
  const c = checkConfigKeys(config, ["max_entity_size", "http_status"]);
  const maxBytes = c.max_entity_size;
  if (typeof maxBytes !== "number" || !Number.isInteger(maxBytes) || maxBytes < 0) {
    throw new FilterConfigError(
      ["max_entity_size"],
      maxBytes === undefined
        ? "missing; expected the largest body to accept, in bytes"
        : `expected a whole number of bytes, got ${JSON.stringify(maxBytes)}`,
    );
  }
  const status = c.http_status ?? 413;
  if (typeof status !== "number" || !Number.isInteger(status) || status < 200 || status > 599) {
    throw new FilterConfigError(
      ["http_status"],
      `expected an HTTP status from 200 to 599, got ${JSON.stringify(status)}`,
    );
  }
  const result: LimitConfig = Object.freeze({ maxBytes, status });
  parsed.add(result);
  return result;
}

function limitOf(config: unknown): LimitConfig {
  return parsed.has(config as object) ? config as LimitConfig : parseLimitConfig(config);
}

/** Creates the payload limit filter's factory. */
export const createStreamFilterFactory: CreateStreamFilterFactory = (config) => {
  const own = limitOf(config);
  const filter = {
    onReceive(stream: RequestStream) {
      const current = stream.config;
      const limit = current === own || current === undefined ? own : limitOf(current);
      const declared = stream.headers.get("content-length");
      if (declared !== null) {
        if (Number(declared) <= limit.maxBytes) return "continue" as const;
        stream.respond(limit.status, { body: "payload too large\n" });
        return "stop" as const;
      }
      if (!stream.headers.has("transfer-encoding") && stream.method === "GET") {
        return "continue" as const;
      }
      return stream.body({ maxBytes: limit.maxBytes }).then(
        () => "continue" as const,
        (error) => {
          if (error?.name !== "BodyTooLargeError") throw error;
          stream.respond(limit.status, { body: "payload too large\n" });
          return "stop" as const;
        },
      );
    },
  };
  return {
    createFilterChain(chain) {
      chain.addReceiver(filter, "before_route");
    },
  };
};
createStreamFilterFactory.parseConfig = parseLimitConfig;
