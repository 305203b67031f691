/**
 * Proxy manners for headers: hop-by-hop fields never cross the proxy. The forwarded
 * headers (X-Forwarded-*, x-request-id) are set in `forwarded.ts`.
 *
 * @module
 */

import { HOP_BY_HOP_FIELDS, isProtectedField } from "../http1/hop_by_hop.ts";

/**
 * Removes hop-by-hop fields, including every field the `Connection` header names (except
 * the protected ones, see `isProtectedField`). `transfer-encoding` goes too: each side frames the body its
 * own way.
 *
 * The lifecycle calls this on the request as it arrived, before any filter runs, and on
 * the upstream's response before any sender filter runs, so a peer's `Connection` can
 * never remove a field a filter added.
 */
export function stripHopByHop(headers: Headers): void {
  const connection = headers.get("connection");
  if (connection !== null) {
    for (const token of connection.split(",")) {
      const name = token.trim().toLowerCase();
      if (name !== "" && !isProtectedField(name)) headers.delete(name);
    }
  }
  for (let i = 0; i < HOP_BY_HOP_FIELDS.length; i++) headers.delete(HOP_BY_HOP_FIELDS[i]);
}

/** Total size of a header block as it arrived on the wire (approximately: names, values, separators). */
export function headerBlockSize(headers: Headers): number {
  BLOCK_SIZE.size = 0;
  // forEach is several times faster than the Headers iterator in Deno.
  headers.forEach(addFieldSize, BLOCK_SIZE);
  return BLOCK_SIZE.size;
}

const BLOCK_SIZE = { size: 0 };

function addFieldSize(this: { size: number }, value: string, name: string): void {
  this.size += name.length + value.length + 4;
}
