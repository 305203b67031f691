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

import type { CreateStreamFilterFactory, RequestStream } from "../../../mod.ts";

interface LimitConfig {
  maxBytes: number;
  status: number;
}

/** Creates the payload limit filter's factory. */
export const createStreamFilterFactory: CreateStreamFilterFactory = (config) => {
  const parsed = parseLimit(config);
  const filter = {
    onReceive(stream: RequestStream) {
      const limit = stream.config === config ? parsed : parseLimit(stream.config);
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

function parseLimit(config: unknown): LimitConfig {
  const c = config as Record<string, unknown> | null;
  if (c === null || typeof c !== "object") {
    throw new TypeError("payload_limit: config must be a map with max_entity_size");
  }
  const maxBytes = c.max_entity_size;
  if (typeof maxBytes !== "number" || !Number.isInteger(maxBytes) || maxBytes < 0) {
    throw new TypeError(
      `payload_limit: max_entity_size must be a whole number of bytes, got ${
        JSON.stringify(maxBytes)
      }`,
    );
  }
  const status = c.http_status ?? 413;
  if (typeof status !== "number" || status < 200 || status > 599) {
    throw new TypeError(`payload_limit: http_status must be from 200 to 599, got ${status}`);
  }
  return { maxBytes, status };
}
