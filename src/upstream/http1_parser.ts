/**
 * Parsing of HTTP/1.x response heads, chunk-size lines and trailer lines from bytes.
 *
 * The head's end is found on bytes; only the head itself is turned into a string, and
 * it is decoded as Latin-1 so every byte survives into `Headers` and back onto the wire.
 *
 * @module
 */

const LF = 10;
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

  /** Whether the last transfer coding is `chunked`. */
  get chunked(): boolean {
    const te = this.transferEncoding;
    if (te === null) return false;
    const comma = te.lastIndexOf(",");
    return te.slice(comma + 1).trim().toLowerCase() === "chunked";
  }
}

/**
 * Finds the end of a head: the index just past its blank line (CRLF CRLF, or bare LFs).
 *
 * @param buf the bytes
 * @param start where the head begins
 * @param end where the buffered bytes end
 * @returns the index after the blank line, or -1 when the head is not complete yet
 */
export function findHeadEnd(buf: Uint8Array, start: number, end: number): number {
  let i = buf.indexOf(LF, start);
  while (i !== -1 && i < end) {
    const next = i + 1;
    if (next < end && buf[next] === LF) return next + 1;
    if (next + 1 < end && buf[next] === CR && buf[next + 1] === LF) return next + 2;
    i = buf.indexOf(LF, next);
  }
  return -1;
}

/**
 * Finds the next LF in `buf[start..end)`.
 *
 * @returns its index, or -1
 */
export function indexOfLf(buf: Uint8Array, start: number, end: number): number {
  const i = buf.indexOf(LF, start);
  return i < end ? i : -1;
}

const utf8 = new TextDecoder("utf-8", { fatal: true });

/**
 * Decodes bytes as Latin-1 (each byte one UTF-16 code unit), the way header bytes
 * round-trip through `Headers`.
 *
 * @param buf the bytes
 * @param start first byte
 * @param end one past the last byte
 * @returns the string
 */
export function decodeLatin1(buf: Uint8Array, start: number, end: number): string {
  // ASCII, by far the common case, decodes fastest through the native decoder; it is
  // ASCII exactly when the decoded length equals the byte length.
  try {
    const text = utf8.decode(buf.subarray(start, end));
    if (text.length === end - start) return text;
  } catch {
    // invalid UTF-8: fall through to Latin-1
  }
  let text = "";
  for (let i = start; i < end; i += 4096) {
    const piece = buf.subarray(i, Math.min(end, i + 4096));
    text += String.fromCharCode.apply(null, piece as unknown as number[]);
  }
  return text;
}

/**
 * Parses a response head: status line and header fields, obsolete line folding
 * included. Framing headers (Content-Length, Transfer-Encoding, Connection) are also
 * read into the head's fields.
 *
 * @param text the head, as decoded by {@linkcode decodeLatin1}, blank line included
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
  try {
    head.headers.append(name, value);
  } catch {
    throw new MalformedResponseError(`Header ${JSON.stringify(name)} is not a valid field`);
  }
  // compare lengths first so that most fields cost no lowercasing
  switch (name.length) {
    case 14:
      if (name.toLowerCase() === "content-length") setContentLength(head, value);
      break;
    case 17:
      if (name.toLowerCase() === "transfer-encoding") {
        const v = value.trim();
        head.transferEncoding = head.transferEncoding === null
          ? v
          : `${head.transferEncoding}, ${v}`;
      }
      break;
    case 10: {
      const lower = name.toLowerCase();
      if (lower === "connection") readConnection(head, value);
      else if (lower === "keep-alive") readKeepAlive(head, value);
      break;
    }
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
 * Parses a non-negative decimal of at most 15 digits.
 *
 * @returns the number, or -1 when the text is not one
 */
export function parseDecimal(text: string): number {
  if (text.length === 0 || text.length > 15) return -1;
  let n = 0;
  for (let i = 0; i < text.length; i++) {
    const d = text.charCodeAt(i) - 48;
    if (d < 0 || d > 9) return -1;
    n = n * 10 + d;
  }
  return n;
}

/**
 * Parses a chunk-size line `1a;ext=1\r` (everything before its LF), skipping
 * chunk extensions.
 *
 * @param buf the bytes
 * @param start the line's first byte
 * @param lf the index of the line's LF
 * @returns the chunk size, or -1 when the line is malformed
 */
export function parseChunkSize(buf: Uint8Array, start: number, lf: number): number {
  let size = 0;
  let i = start;
  for (; i < lf; i++) {
    const c = buf[i];
    let d: number;
    if (c >= 48 && c <= 57) d = c - 48;
    else if (c >= 97 && c <= 102) d = c - 87;
    else if (c >= 65 && c <= 70) d = c - 55;
    else break;
    // 13 hex digits stay below 2^53
    if (i - start >= 13) return -1;
    size = size * 16 + d;
  }
  if (i === start) return -1;
  for (; i < lf; i++) {
    const c = buf[i];
    if (c === 59) return size; // ';' starts the extensions, which are ignored
    if (c !== 32 && c !== 9 && c !== CR) return -1;
  }
  return size;
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
