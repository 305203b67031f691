/**
 * Strict decoding of a chunked request body (RFC 9112 section 7.1) from a connection's
 * read buffer. Every line ends in CRLF; a chunk size is hex digits, optionally followed by
 * extensions after `;`; anything else (a bare LF, a space inside the size, a sign, a size
 * past 2^52) is a 400, never a guess, so the proxy and its upstream cannot disagree on
 * where the body ends.
 *
 * @module
 */

import { BadRequestError } from "./request_head.ts";

/** What the decoder reads from: a buffer whose bytes `[start, end)` are unread. */
export interface ByteWindow {
  buf: Uint8Array;
  start: number;
  end: number;
}

/** Something that takes decoded body bytes (a stream controller). */
export interface ChunkSink {
  enqueue(chunk: Uint8Array): void;
}

const CR = 13;
const LF = 10;
const SEMICOLON = 59;

/** Longest chunk-size line (with extensions) accepted. */
const MAX_SIZE_LINE = 4 * 1024;
/** Longest trailer block accepted. */
const MAX_TRAILERS = 16 * 1024;

const SIZE = 0;
const DATA = 1;
const DATA_END = 2;
const TRAILERS = 3;
const FINISHED = 4;

/** The state of one chunked body. */
export class ChunkedDecoder {
  #state = SIZE;
  #remaining = 0;
  #trailerBytes = 0;

  /** Whether the last chunk and the trailer block were read. */
  get finished(): boolean {
    return this.#state === FINISHED;
  }

  /**
   * Decodes what `window` holds; data goes to `sink` as copies, and `window.start` moves
   * past everything decoded. Trailer fields are checked and dropped (the lifecycle has no
   * request trailers).
   *
   * @param window The buffered bytes.
   * @param sink Where the data goes.
   * @param limit Hand at most about this many data bytes to `sink` in one call.
   * @returns The number of data bytes handed to `sink`.
   * @throws {BadRequestError} when the framing is broken.
   */
  decode(window: ByteWindow, sink: ChunkSink, limit: number): number {
    const buf = window.buf;
    const end = window.end;
    let pos = window.start;
    let out = 0;
    try {
      for (;;) {
        if (this.#state === SIZE) {
          const lf = buf.indexOf(LF, pos);
          if (lf === -1 || lf >= end) {
            if (end - pos > MAX_SIZE_LINE) throw bad("a chunk-size line is too long");
            break;
          }
          const size = parseChunkSize(buf, pos, lf);
          pos = lf + 1;
          if (size === 0) {
            this.#state = TRAILERS;
          } else {
            this.#remaining = size;
            this.#state = DATA;
          }
        } else if (this.#state === DATA) {
          if (pos === end || out >= limit) break;
          const take = Math.min(this.#remaining, end - pos);
          sink.enqueue(buf.slice(pos, pos + take));
          out += take;
          pos += take;
          this.#remaining -= take;
          if (this.#remaining === 0) this.#state = DATA_END;
        } else if (this.#state === DATA_END) {
          if (end - pos < 2) {
            if (pos < end && buf[pos] !== CR) throw bad("chunk data is not followed by CRLF");
            break;
          }
          if (buf[pos] !== CR || buf[pos + 1] !== LF) {
            throw bad("chunk data is not followed by CRLF");
          }
          pos += 2;
          this.#state = SIZE;
        } else if (this.#state === TRAILERS) {
          const lf = buf.indexOf(LF, pos);
          if (lf === -1 || lf >= end) {
            if (this.#trailerBytes + end - pos > MAX_TRAILERS) {
              throw bad("the trailers are too long");
            }
            break;
          }
          if (lf === pos || buf[lf - 1] !== CR) throw bad("a trailer line does not end in CRLF");
          this.#trailerBytes += lf + 1 - pos;
          if (this.#trailerBytes > MAX_TRAILERS) throw bad("the trailers are too long");
          if (lf === pos + 1) {
            pos = lf + 1;
            this.#state = FINISHED;
            break;
          }
          checkTrailerLine(buf, pos, lf - 1);
          pos = lf + 1;
        } else {
          break;
        }
      }
    } finally {
      window.start = pos;
    }
    return out;
  }
}

function bad(message: string): BadRequestError {
  return new BadRequestError(400, message);
}

/** Parses `hex [ *(SP/HTAB) ";" ext ] CR` before the LF at `lf`. */
function parseChunkSize(buf: Uint8Array, start: number, lf: number): number {
  if (lf === start || buf[lf - 1] !== CR) throw bad("a chunk-size line does not end in CRLF");
  const lineEnd = lf - 1;
  let size = 0;
  let i = start;
  for (; i < lineEnd; i++) {
    const c = buf[i];
    let d: number;
    if (c >= 48 && c <= 57) d = c - 48;
    else if (c >= 97 && c <= 102) d = c - 87;
    else if (c >= 65 && c <= 70) d = c - 55;
    else break;
    if (i - start >= 13) throw bad("a chunk size is too large");
    size = size * 16 + d;
  }
  if (i === start) throw bad("a chunk size is not a hex number");
  if (i === lineEnd) return size;
  // chunk-ext: BWS ";" …; its bytes are visible ASCII, spaces, tabs or obs-text.
  while (i < lineEnd && (buf[i] === 32 || buf[i] === 9)) i++;
  if (buf[i] !== SEMICOLON) throw bad("a chunk size is followed by something other than ;");
  for (; i < lineEnd; i++) {
    const c = buf[i];
    if ((c < 0x20 && c !== 9) || c === 0x7f) throw bad("a chunk extension has a control character");
  }
  return size;
}

/** A trailer field is `token ":" value` without control characters. */
function checkTrailerLine(buf: Uint8Array, start: number, end: number): void {
  const colon = buf.indexOf(58, start);
  if (colon <= start || colon >= end) throw bad("a trailer line is not a header field");
  for (let i = start; i < end; i++) {
    const c = buf[i];
    if ((c < 0x20 && c !== 9) || c === 0x7f) throw bad("a trailer line has a control character");
  }
}
