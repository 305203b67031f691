/**
 * Proxy manners for headers: hop-by-hop fields never cross the proxy, and the upstream
 * learns who the client was through the X-Forwarded-* fields.
 *
 * @module
 */

/** Fields that describe one connection, not the message (RFC 9110 §7.6.1, plus legacy). */
const HOP_BY_HOP = [
  "connection",
  "keep-alive",
  "proxy-connection",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
];

/**
 * Removes hop-by-hop fields, including every field the `Connection` header names.
 * `transfer-encoding` goes too: each side frames the body its own way.
 */
export function stripHopByHop(headers: Headers): void {
  const connection = headers.get("connection");
  if (connection !== null) {
    for (const token of connection.split(",")) {
      const name = token.trim();
      if (name !== "") headers.delete(name);
    }
  }
  for (let i = 0; i < HOP_BY_HOP.length; i++) headers.delete(HOP_BY_HOP[i]);
}

/**
 * Adds X-Forwarded-For (appending the client's address), X-Forwarded-Proto and
 * X-Forwarded-Host (when absent), and an `x-request-id` when the client sent none.
 */
export function addForwardedHeaders(
  headers: Headers,
  clientIp: string,
  scheme: string,
  authority: string,
): void {
  const forwardedFor = headers.get("x-forwarded-for");
  headers.set("x-forwarded-for", forwardedFor === null ? clientIp : `${forwardedFor}, ${clientIp}`);
  if (!headers.has("x-forwarded-proto")) headers.set("x-forwarded-proto", scheme);
  if (!headers.has("x-forwarded-host") && authority !== "") {
    headers.set("x-forwarded-host", authority);
  }
  if (!headers.has("x-request-id")) headers.set("x-request-id", crypto.randomUUID());
}

/** Total size of a header block as it arrived on the wire (approximately: names, values, separators). */
export function headerBlockSize(headers: Headers): number {
  let size = 0;
  for (const [name, value] of headers) size += name.length + value.length + 4;
  return size;
}
