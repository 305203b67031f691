/**
 * Parsing of an HTTP/1.x request head (RFC 9112 sections 2 to 6) from bytes, strictly:
 * whatever a lenient peer could read differently (obs-fold, whitespace before a colon,
 * bare LF, conflicting framing) is refused, since a proxy that reads a request one way
 * while the upstream reads it another is the root of request smuggling.
 *
 * The head is checked on bytes, decoded once as Latin-1 (one char per byte, so obs-text
 * bytes pass through unchanged), and its fields are cut from that one string into one
 * `Headers`.
 *
 * @module
 */

import { parseDecimal } from "../../http1/decimal.ts";
import { decodeLatin1 } from "../../http1/latin1.ts";
import { isProtectedField } from "../../http1/hop_by_hop.ts";

const CR = 13;
const LF = 10;
const SP = 32;
const HTAB = 9;
const COLON = 58;

/** Longest request line accepted (414 above), as nginx's `large_client_header_buffers`. */
export const MAX_REQUEST_LINE = 16 * 1024;

/** A request head that cannot be served; the connection answers `status` and closes. */
export class BadRequestError extends Error {
  /** The status to answer: 400, 414, 431, 501 or 505. */
  readonly status: number;

  /**
   * @param status The status to answer.
   * @param message What is wrong, for the debug log and the response body.
   */
  constructor(status: number, message: string) {
    super(message);
    this.name = "BadRequestError";
    this.status = status;
  }
}

/** How a request's body is framed. */
export const enum BodyFraming {
  /** No body: neither Content-Length nor Transfer-Encoding. */
  None,
  /** `Content-Length` bytes. */
  Length,
  /** `Transfer-Encoding: chunked`. */
  Chunked,
}

/** One parsed request head. */
export interface RequestHead {
  method: string;
  /** The request target as sent. */
  target: string;
  /** 1 for HTTP/1.1, 0 for HTTP/1.0. */
  minor: number;
  headers: Headers;
  /** The Host field's value, or null when there is none. */
  host: string | null;
  framing: BodyFraming;
  /** The Content-Length, when `framing` is {@linkcode BodyFraming.Length}. */
  contentLength: number;
  /** Connection names `close`. */
  close: boolean;
  /** Connection names `keep-alive`. */
  keepAlive: boolean;
  /** `Expect: 100-continue` was sent. */
  expectContinue: boolean;
  /** The HTTP/2 connection preface (`PRI * HTTP/2.0`), for h2c with prior knowledge. */
  h2Preface: boolean;
  /**
   * `Upgrade` was sent. Like every hop-by-hop field it is not in `headers`: the parser
   * leaves those out (and the fields `Connection` names), so the request the lifecycle
   * sees is already clean of them.
   */
  upgrade: boolean;
}

/** `tchar` of RFC 9110 section 5.6.2, by byte. */
const TOKEN = new Uint8Array(256);
for (let c = 0; c < 256; c++) {
  const alnum = (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122);
  TOKEN[c] = alnum || "!#$%&'*+-.^_`|~".includes(String.fromCharCode(c)) ? 1 : 0;
}

/**
 * Parses a complete request head.
 *
 * @param buf The received bytes.
 * @param start The head's first byte (after any empty lines before it).
 * @param headEnd One past the head's blank line (`findHeadEnd` of `src/http1/head_end.ts`).
 * @returns The head.
 * @throws {BadRequestError} when the head breaks the grammar or frames its body ambiguously.
 */
export function parseRequestHead(buf: Uint8Array, start: number, headEnd: number): RequestHead {
  // One pass over the bytes: line ends are CRLF, names are tokens, values have no CTLs.
  let ascii = true;
  const lineEnd = checkRequestLine(buf, start, headEnd);
  const last = headEnd - 2; // the blank line's CR
  for (let pos = lineEnd + 2; pos < last;) {
    const first = buf[pos];
    if (first === SP || first === HTAB) {
      throw new BadRequestError(400, "obsolete line folding in the request head");
    }
    let i = pos;
    while (TOKEN[buf[i]] === 1) i++;
    if (buf[i] !== COLON) {
      throw new BadRequestError(
        400,
        i === pos || buf[i] === SP || buf[i] === HTAB
          ? "a header field name is empty or followed by whitespace"
          : "a header field name has a character that is not allowed",
      );
    }
    if (i === pos) throw new BadRequestError(400, "a header field name is empty");
    for (i++;; i++) {
      const c = buf[i];
      if (c >= 0x20 && c !== 0x7f) {
        if (c >= 0x80) ascii = false;
        continue;
      }
      if (c === HTAB) continue;
      if (c === CR && buf[i + 1] === LF) break;
      throw new BadRequestError(400, "a header field value has a control character");
    }
    pos = i + 2;
  }

  const text = decodeLatin1(buf, start, headEnd, ascii);
  const head: RequestHead = {
    method: "",
    target: "",
    minor: 1,
    headers: new Headers(),
    host: null,
    framing: BodyFraming.None,
    contentLength: 0,
    close: false,
    keepAlive: false,
    expectContinue: false,
    h2Preface: false,
    upgrade: false,
  };
  const lineLength = lineEnd - start;
  const sp1 = text.indexOf(" ");
  const sp2 = text.indexOf(" ", sp1 + 1);
  head.method = text.slice(0, sp1);
  head.target = text.slice(sp1 + 1, sp2);
  const version = text.slice(sp2 + 1, lineLength);
  if (version === "HTTP/1.1") head.minor = 1;
  else if (version === "HTTP/1.0") head.minor = 0;
  else if (version === "HTTP/2.0" && head.method === "PRI" && head.target === "*") {
    head.h2Preface = true;
    return head;
  } else throw new BadRequestError(505, `${version} is not supported`);

  let transferEncoding: string | null = null;
  let connectionNamed: string[] | undefined;
  let pos = lineLength + 2;
  const textEnd = text.length - 2;
  while (pos < textEnd) {
    const colon = text.indexOf(":", pos);
    const nl = text.indexOf("\r", colon);
    const name = text.slice(pos, colon);
    const value = trimOws(text, colon + 1, nl);
    // Hop-by-hop fields describe this connection and never reach `headers` (RFC 9110
    // section 7.6.1). Compare lengths first so that most fields cost no lowercasing.
    let hopByHop = false;
    switch (name.length) {
      case 2:
        hopByHop = name.toLowerCase() === "te";
        break;
      case 4:
        if (name.toLowerCase() === "host") {
          if (head.host !== null) throw new BadRequestError(400, "more than one Host field");
          head.host = value;
        }
        break;
      case 6:
        if (name.toLowerCase() === "expect" && value.toLowerCase() === "100-continue") {
          head.expectContinue = true;
        }
        break;
      case 7: {
        const lower = name.toLowerCase();
        if (lower === "upgrade") head.upgrade = hopByHop = true;
        else hopByHop = lower === "trailer";
        break;
      }
      case 10: {
        const lower = name.toLowerCase();
        if (lower === "connection") {
          connectionNamed = readConnection(head, value, connectionNamed);
          hopByHop = true;
        } else hopByHop = lower === "keep-alive";
        break;
      }
      case 14:
        if (name.toLowerCase() === "content-length") {
          if (head.framing === BodyFraming.Length) {
            throw new BadRequestError(400, "more than one Content-Length field");
          }
          head.contentLength = parseContentLength(value);
          head.framing = BodyFraming.Length;
        }
        break;
      case 16:
        hopByHop = name.toLowerCase() === "proxy-connection";
        break;
      case 17:
        if (name.toLowerCase() === "transfer-encoding") {
          transferEncoding = transferEncoding === null ? value : `${transferEncoding}, ${value}`;
          hopByHop = true;
        }
        break;
    }
    if (!hopByHop) head.headers.append(name, value);
    pos = nl + 2;
  }
  // The fields a client's Connection names are hop-by-hop too, except those the proxy
  // sets or frames the message with (a client must not remove them).
  if (connectionNamed !== undefined) {
    for (const name of connectionNamed) if (!isProtectedField(name)) head.headers.delete(name);
  }
  if (transferEncoding !== null) {
    // RFC 9112 section 6.1: both framings at once is how requests are smuggled.
    if (head.framing === BodyFraming.Length) {
      throw new BadRequestError(400, "both Transfer-Encoding and Content-Length");
    }
    if (head.minor === 0) throw new BadRequestError(400, "Transfer-Encoding in HTTP/1.0");
    if (transferEncoding.toLowerCase() !== "chunked") {
      const codings = transferEncoding.toLowerCase().split(",");
      throw new BadRequestError(
        codings[codings.length - 1].trim() === "chunked" ? 501 : 400,
        `Transfer-Encoding ${JSON.stringify(transferEncoding)} is not supported; only chunked is`,
      );
    }
    head.framing = BodyFraming.Chunked;
  }
  return head;
}

/** Checks `method SP target SP version CRLF`; returns the index of the line's CR. */
function checkRequestLine(buf: Uint8Array, start: number, headEnd: number): number {
  let i = start;
  while (TOKEN[buf[i]] === 1) i++;
  if (i === start || buf[i] !== SP) throw new BadRequestError(400, "the request line is malformed");
  const targetStart = ++i;
  // The target is visible ASCII; a raw space, CTL or non-ASCII byte is refused.
  while (buf[i] > 0x20 && buf[i] < 0x7f) i++;
  if (i === targetStart || buf[i] !== SP) {
    throw new BadRequestError(400, "the request target is empty or has a byte that is not allowed");
  }
  const versionStart = ++i;
  while (i < headEnd && buf[i] !== CR && buf[i] !== LF) i++;
  if (i - versionStart !== 8 || buf[i] !== CR || buf[i + 1] !== LF) {
    throw new BadRequestError(400, "the request line is malformed");
  }
  if (buf[versionStart] !== 0x48 /* H */) {
    throw new BadRequestError(400, "the request line is malformed");
  }
  return i;
}

/** The value without leading and trailing spaces and tabs. */
function trimOws(text: string, from: number, to: number): string {
  while (from < to && isOws(text.charCodeAt(from))) from++;
  while (to > from && isOws(text.charCodeAt(to - 1))) to--;
  return text.slice(from, to);
}

function isOws(c: number): boolean {
  return c === SP || c === HTAB;
}

/**
 * Reads `close` and `keep-alive` from a Connection value; returns `named` with the other
 * field names it lists added (undefined while there are none, the common case).
 */
function readConnection(
  head: RequestHead,
  value: string,
  named: string[] | undefined,
): string[] | undefined {
  const lower = value.toLowerCase();
  if (lower === "close") head.close = true;
  else if (lower === "keep-alive") head.keepAlive = true;
  else {
    for (const token of lower.split(",")) {
      const t = token.trim();
      if (t === "close") head.close = true;
      else if (t === "keep-alive") head.keepAlive = true;
      else if (t !== "") (named ??= []).push(t);
    }
  }
  return named;
}

/** A Content-Length of decimal digits only; lists, signs and spaces inside are refused. */
function parseContentLength(value: string): number {
  const n = parseDecimal(value);
  if (n < 0) throw new BadRequestError(400, `Content-Length ${JSON.stringify(value)} is not valid`);
  return n;
}
