/**
 * Parsing of HTTP/1.x response heads and trailer lines.
 *
 * The head's end is found on bytes (`src/http1/head_end.ts`); only the head itself is
 * turned into a string, and it is decoded as Latin-1 (`src/http1/latin1.ts`) so every
 * byte survives into `Headers` and back onto the wire.
 *
 * @module
 */

import { parseDecimal } from "../http1/decimal.ts";
import { isProtectedField } from "../http1/hop_by_hop.ts";

const CR = 13;

/** A response head or chunk framing that breaks HTTP/1.1's grammar. */
export class MalformedResponseError extends Error {
  /** Makes the error. */
  constructor(message: string) {
    super(message);
    this.name = "MalformedResponseError";
  }
}

/** A parsed response status line and header block. */
export class ResponseHead {
  /** Minor version: 1 for HTTP/1.1, 0 for HTTP/1.0. */
  version = 1;
  status = 0;
  statusText = "";
  headers: Headers = new Headers();
  /** The Content-Length, or -1 when there is none. */
  contentLength = -1;
  /** The Transfer-Encoding value, or null when there is none. */
  transferEncoding: string | null = null;
  /** Connection names `close`. */
  connectionClose = false;
  /** Connection names `keep-alive`. */
  connectionKeepAlive = false;
  /** The `timeout=N` of a Keep-Alive field, in seconds, or -1 when there is none. */
  keepAliveTimeout = -1;
  /** Other field names Connection lists (hop-by-hop too); undefined when none. */
  connectionNamed: string[] | undefined = undefined;

  /** Whether the last transfer coding is `chunked`. */
  get chunked(): boolean {
    const te = this.transferEncoding;
    if (te === null) return false;
    const comma = te.lastIndexOf(",");
    return te.slice(comma + 1).trim().toLowerCase() === "chunked";
  }
}

/**
 * Parses a response head: status line and header fields, obsolete line folding
 * included. Framing headers (Content-Length, Transfer-Encoding, Connection) are also
 * read into the head's fields. Hop-by-hop fields (RFC 9110 section 7.6.1), and those
 * Connection names, are left out of `headers`: they described the upstream connection.
 *
 * @param text the head, decoded as Latin-1, blank line included
 * @returns the head
 * @throws {MalformedResponseError} when the head breaks the grammar
 */
export function parseResponseHead(text: string): ResponseHead {
  let nl = text.indexOf("\n");
  if (nl === -1) throw new MalformedResponseError("Status line has no line end");
  let lineEnd = nl > 0 && text.charCodeAt(nl - 1) === CR ? nl - 1 : nl;
  const head = new ResponseHead();
  parseStatusLine(text, lineEnd, head);

  let name = "";
  let value = "";
  let pos = nl + 1;
  while (pos < text.length) {
    nl = text.indexOf("\n", pos);
    if (nl === -1) nl = text.length;
    lineEnd = nl > pos && text.charCodeAt(nl - 1) === CR ? nl - 1 : nl;
    if (lineEnd === pos) break;
    const first = text.charCodeAt(pos);
    if (first === 32 || first === 9) {
      // obs-fold: a continuation of the previous field's value (RFC 9112 section 5.2)
      if (name === "") throw new MalformedResponseError("Header block starts with a folded line");
      value += " " + text.slice(pos, lineEnd).trim();
    } else {
      if (name !== "") addField(head, name, value);
      const colon = text.indexOf(":", pos);
      if (colon <= pos || colon > lineEnd) {
        throw new MalformedResponseError(
          `Header line ${JSON.stringify(text.slice(pos, lineEnd))} has no field name`,
        );
      }
      name = text.slice(pos, colon);
      value = text.slice(colon + 1, lineEnd);
    }
    pos = nl + 1;
  }
  if (name !== "") addField(head, name, value);
  const named = head.connectionNamed;
  if (named !== undefined) {
    for (const field of named) if (!isProtectedField(field)) head.headers.delete(field);
  }
  return head;
}

function parseStatusLine(text: string, end: number, head: ResponseHead): void {
  // "HTTP/1.1 200 OK": version, space, three digits, optional space and reason
  if (
    end < 12 || !text.startsWith("HTTP/1.") || text.charCodeAt(8) !== 32 ||
    (end > 12 && text.charCodeAt(12) !== 32)
  ) {
    throw new MalformedResponseError(
      `Status line ${JSON.stringify(text.slice(0, Math.min(end, 80)))} is not HTTP/1.x`,
    );
  }
  const minor = text.charCodeAt(7) - 48;
  const d0 = text.charCodeAt(9) - 48;
  const d1 = text.charCodeAt(10) - 48;
  const d2 = text.charCodeAt(11) - 48;
  if (
    minor < 0 || minor > 9 || d0 < 0 || d0 > 9 || d1 < 0 || d1 > 9 || d2 < 0 || d2 > 9
  ) {
    throw new MalformedResponseError(
      `Status line ${JSON.stringify(text.slice(0, Math.min(end, 80)))} has no valid status`,
    );
  }
  if (d0 < 1 || d0 > 5) {
    // RFC 9110 section 15: status codes are 100 to 599
    throw new MalformedResponseError(
      `Status line ${JSON.stringify(text.slice(0, Math.min(end, 80)))} has status ` +
        `${d0}${d1}${d2}, outside 100-599`,
    );
  }
  head.version = minor;
  head.status = d0 * 100 + d1 * 10 + d2;
  head.statusText = end > 13 ? text.slice(13, end) : "";
}

function addField(head: ResponseHead, name: string, value: string): void {
  const last = name.charCodeAt(name.length - 1);
  if (last === 32 || last === 9) {
    // RFC 9112 section 5.1: whitespace before the colon must be rejected (smuggling)
    throw new MalformedResponseError(`Header name ${JSON.stringify(name)} ends in whitespace`);
  }
  // compare lengths first so that most fields cost no lowercasing
  switch (name.length) {
    case 2:
      if (name.toLowerCase() === "te") return;
      break;
    case 7: {
      const lower = name.toLowerCase();
      if (lower === "upgrade" || lower === "trailer") return;
      break;
    }
    case 10: {
      const lower = name.toLowerCase();
      if (lower === "connection") return readConnection(head, value);
      if (lower === "keep-alive") return readKeepAlive(head, value);
      break;
    }
    case 14:
      if (name.toLowerCase() === "content-length") setContentLength(head, value);
      break;
    case 16:
      if (name.toLowerCase() === "proxy-connection") return;
      break;
    case 17:
      if (name.toLowerCase() === "transfer-encoding") {
        const v = value.trim();
        head.transferEncoding = head.transferEncoding === null
          ? v
          : `${head.transferEncoding}, ${v}`;
        return;
      }
      break;
  }
  try {
    head.headers.append(name, value);
  } catch {
    throw new MalformedResponseError(`Header ${JSON.stringify(name)} is not a valid field`);
  }
}

function setContentLength(head: ResponseHead, value: string): void {
  // "5" or a list of identical values such as "5, 5" (RFC 9110 section 8.6)
  for (const part of value.split(",")) {
    const n = parseDecimal(part.trim());
    if (n < 0) {
      throw new MalformedResponseError(`Content-Length ${JSON.stringify(value)} is not a number`);
    }
    if (head.contentLength !== -1 && head.contentLength !== n) {
      throw new MalformedResponseError(
        `Content-Length values ${head.contentLength} and ${n} conflict`,
      );
    }
    head.contentLength = n;
  }
}

function readConnection(head: ResponseHead, value: string): void {
  for (const token of value.split(",")) {
    const t = token.trim().toLowerCase();
    if (t === "close") head.connectionClose = true;
    else if (t === "keep-alive") head.connectionKeepAlive = true;
    else if (t !== "") (head.connectionNamed ??= []).push(t);
  }
}

function readKeepAlive(head: ResponseHead, value: string): void {
  // Keep-Alive: timeout=5, max=1000 (RFC 2068 section 19.7.1.1, as servers send it)
  for (const param of value.split(",")) {
    const eq = param.indexOf("=");
    if (eq === -1 || param.slice(0, eq).trim().toLowerCase() !== "timeout") continue;
    const n = parseDecimal(param.slice(eq + 1).trim());
    if (n >= 0) head.keepAliveTimeout = n;
  }
}

/**
 * Parses one trailer field line (`name: value`, without its line end) into `trailers`.
 *
 * @throws {MalformedResponseError} when the line is not a valid field
 */
export function addTrailerLine(trailers: Headers, line: string): void {
  const colon = line.indexOf(":");
  if (colon <= 0) {
    throw new MalformedResponseError(`Trailer line ${JSON.stringify(line)} has no field name`);
  }
  try {
    trailers.append(line.slice(0, colon), line.slice(colon + 1));
  } catch {
    throw new MalformedResponseError(`Trailer line ${JSON.stringify(line)} is not a valid field`);
  }
}
