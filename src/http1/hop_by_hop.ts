/**
 * Which header fields describe one connection rather than the message (RFC 9110
 * section 7.6.1): the proxy never forwards them. The HTTP/1.1 parsers leave them out as
 * they read a head, and the lifecycle strips them from messages other servers parsed.
 *
 * @module
 */

/** The fixed hop-by-hop fields (RFC 9110 section 7.6.1, plus the legacy ones), lower case. */
export const HOP_BY_HOP_FIELDS: readonly string[] = [
  "connection",
  "keep-alive",
  "proxy-connection",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
];

/**
 * Fields a `Connection` header can never remove: the proxy's own (it sets them after the
 * strip, but a trusted client's must survive too) and those that frame or route the
 * message.
 *
 * @param name A lower-case field name.
 */
export function isProtectedField(name: string): boolean {
  return name === "host" || name === "content-length" || name === "x-request-id" ||
    name === "forwarded" || name.startsWith("x-forwarded-") || name.startsWith("x-envoy-");
}
