/**
 * The text of an HTTP/1.1 request head, and how its body is framed.
 *
 * @module
 */

import { parseDecimal } from "../http1/decimal.ts";

/** Framing of a request without a body: no Content-Length, no Transfer-Encoding. */
export const NO_BODY = -2;
/** Framing of a request body sent with `transfer-encoding: chunked`. */
export const CHUNKED = -1;

/**
 * Decides how a request body is framed.
 *
 * @param method the request method
 * @param body the body
 * @param headers the request headers, for a streamed body's Content-Length
 * @returns the Content-Length to send, {@linkcode CHUNKED} or {@linkcode NO_BODY}
 */
export function bodyFraming(
  method: string,
  body: Uint8Array | ReadableStream<Uint8Array> | null,
  headers: Headers,
): number {
  if (body === null) {
    // RFC 9110 section 8.6: a request whose method expects content says it has none
    return method === "POST" || method === "PUT" || method === "PATCH" ? 0 : NO_BODY;
  }
  if (body instanceof Uint8Array) return body.length;
  const length = headers.get("content-length");
  if (length !== null) {
    const n = parseDecimal(length.trim());
    if (n >= 0) return n;
  }
  return CHUNKED;
}

/** Scratch state of {@linkcode encodeRequestHead}; it runs synchronously, so one suffices. */
class HeadText {
  text = "";
  hasHost = false;
}

const scratch = new HeadText();

function appendField(this: HeadText, value: string, name: string): void {
  switch (name.length) {
    case 4:
      if (name === "host") this.hasHost = true;
      break;
    // The framing headers are set from the body actually sent: a filter may have
    // replaced the body, and a stale Content-Length would corrupt the connection. The
    // other hop-by-hop fields (a filter may have set one) describe the downstream
    // connection, never this one.
    case 14:
      if (name === "content-length") return;
      break;
    case 17:
      if (name === "transfer-encoding") return;
      break;
    case 2:
      if (name === "te") return;
      break;
    case 7:
      if (name === "upgrade" || name === "trailer") return;
      break;
    case 10:
      if (name === "connection" || name === "keep-alive") return;
      break;
    case 16:
      if (name === "proxy-connection") return;
      break;
  }
  this.text += name + ": " + value + "\r\n";
}

/**
 * Builds the request head, blank line included. Header names come out lowercase, as
 * `Headers` holds them.
 *
 * @param method the request method
 * @param path the path with query
 * @param headers the headers to send; Content-Length and Transfer-Encoding are replaced
 * @param defaultHost the Host to send when `headers` has none
 * @param framing from {@linkcode bodyFraming}
 * @returns the head text
 */
export function encodeRequestHead(
  method: string,
  path: string,
  headers: Headers,
  defaultHost: string,
  framing: number,
): string {
  scratch.text = method + " " + path + " HTTP/1.1\r\n";
  scratch.hasHost = false;
  // forEach is several times faster than the Headers iterator in Deno
  headers.forEach(appendField, scratch);
  let text = scratch.text;
  scratch.text = "";
  if (!scratch.hasHost) text += "host: " + defaultHost + "\r\n";
  if (framing >= 0) text += "content-length: " + framing + "\r\n";
  else if (framing === CHUNKED) text += "transfer-encoding: chunked\r\n";
  return text + "\r\n";
}
