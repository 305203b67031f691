/**
 * Strict decoding of a chunked body (RFC 9112 section 7.1) from a connection's read
 * buffer, for both sides of the proxy: request bodies from clients and response bodies
 * from upstreams. Every line ends in CRLF; a chunk size is hex digits, optionally followed
 * by extensions after `;`; anything else (a bare LF, a space inside or after the size, a
 * sign, a size past 2^52) is a {@linkcode MalformedChunkedError}, never a guess, so the
 * proxy and its peers cannot disagree on where a body ends.
 *
 * The decoder keeps only the framing state. What happens to the data (copied into a
 * stream, or moved together in place) and to the trailer fields (dropped, or kept) is
 * the {@linkcode ChunkSink}'s part.
 *
 * @module
 */

const CR = 13;
const LF = 10;
const SEMICOLON = 59;
const COLON = 58;

/** Longest chunk-size line (with extensions) accepted. */
const MAX_SIZE_LINE = 4 * 1024;

const SIZE = 0;
const DATA = 1;
const DATA_END = 2;
const TRAILERS = 3;
const FINISHED = 4;

/** Chunked framing that breaks RFC 9112's grammar or a limit. */
export class MalformedChunkedError extends Error {
  /**
   * @param message What is wrong, e.g. `a chunk size is not a hex number`.
   */
  constructor(message: string) {
    super(message);
    this.name = "MalformedChunkedError";
  }
}

/** What the decoder reads from: a buffer whose bytes `[start, end)` are unread. */
export interface ByteWindow {
  buf: Uint8Array;
  start: number;
  end: number;
}

/** What takes a chunked body's contents from the decoder. */
export interface ChunkSink {
  /**
   * Takes the data bytes `buf[start, end)`; they stay valid only during the call, and
   * `buf` before `start` may be written (data already handed over, and framing).
   */
  chunkData(buf: Uint8Array, start: number, end: number): void;
  /**
   * Takes one trailer field line `buf[start, end)` (CRLF excluded), already checked to be
   * `name ":" value` without control characters.
   *
   * @throws {Error} to refuse it; the error reaches the decoder's caller.
   */
  trailerLine(buf: Uint8Array, start: number, end: number): void;
}

/** Options of a {@linkcode ChunkedDecoder}. */
export interface ChunkedDecoderOptions {
  /**
   * Longest trailer block accepted, its blank line included.
   *
   * @default {16384}
   */
  maxTrailerBytes?: number;
}

/** The state of one chunked body. */
export class ChunkedDecoder {
  #state = SIZE;
  #remaining = 0;
  #trailerBytes = 0;
  #maxTrailerBytes: number;

  /**
   * @param options The limits.
   */
  constructor(options: ChunkedDecoderOptions = {}) {
    this.#maxTrailerBytes = options.maxTrailerBytes ?? 16 * 1024;
  }

  /** Whether the last chunk and the trailer block were read. */
  get finished(): boolean {
    return this.#state === FINISHED;
  }

  /**
   * Bytes of the current chunk's data still to come, when its data is what comes next
   * on the wire (so it may be read straight into a body buffer); 0 otherwise.
   */
  get dataAhead(): number {
    return this.#state === DATA ? this.#remaining : 0;
  }

  /**
   * Accounts for `n` data bytes of the current chunk read past the buffer.
   *
   * @param n At most {@linkcode dataAhead}.
   */
  consumed(n: number): void {
    this.#remaining -= n;
    if (this.#remaining === 0) this.#state = DATA_END;
  }

  /**
   * Decodes what `window` holds, handing data and trailer lines to `sink`; `window.start`
   * moves past everything decoded, also when it throws.
   *
   * @param window The buffered bytes.
   * @param sink Where the data and the trailers go.
   * @param limit Hand at most about this many data bytes to `sink` in one call.
   * @returns The number of data bytes handed to `sink`.
   * @throws {MalformedChunkedError} when the framing is broken.
   *
   * @example
   * ```ts
   * const buf = new TextEncoder().encode("5\r\nhello\r\n0\r\n\r\n");
   * const window = { buf, start: 0, end: buf.length };
   * const sink = { chunkData() {}, trailerLine() {} };
   * new ChunkedDecoder().decode(window, sink, Infinity); // 5
   * ```
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
          const available = end - pos;
          const take = available < this.#remaining ? available : this.#remaining;
          sink.chunkData(buf, pos, pos + take);
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
            if (this.#trailerBytes + end - pos > this.#maxTrailerBytes) {
              throw bad("the trailers are too long");
            }
            break;
          }
          if (lf === pos || buf[lf - 1] !== CR) throw bad("a trailer line does not end in CRLF");
          this.#trailerBytes += lf + 1 - pos;
          if (this.#trailerBytes > this.#maxTrailerBytes) throw bad("the trailers are too long");
          if (lf === pos + 1) {
            pos = lf + 1;
            this.#state = FINISHED;
            break;
          }
          checkTrailerLine(buf, pos, lf - 1);
          sink.trailerLine(buf, pos, lf - 1);
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

function bad(message: string): MalformedChunkedError {
  return new MalformedChunkedError(message);
}

/**
 * Parses a chunk-size line, `hex [ *(SP/HTAB) ";" ext ] CR`, before its LF.
 *
 * @param buf The bytes.
 * @param start The line's first byte.
 * @param lf The index of the line's LF.
 * @returns The chunk size, below 2^52.
 * @throws {MalformedChunkedError} when the line is not one.
 *
 * @example
 * ```ts
 * const line = new TextEncoder().encode("1a;x=y\r\n");
 * parseChunkSize(line, 0, line.length - 1); // 26
 * ```
 */
export function parseChunkSize(buf: Uint8Array, start: number, lf: number): number {
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
    // 13 hex digits stay below 2^52.
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

/** A trailer field is `name ":" value` without control characters. */
function checkTrailerLine(buf: Uint8Array, start: number, end: number): void {
  const colon = buf.indexOf(COLON, start);
  if (colon <= start || colon >= end) throw bad("a trailer line is not a header field");
  for (let i = start; i < end; i++) {
    const c = buf[i];
    if ((c < 0x20 && c !== 9) || c === 0x7f) throw bad("a trailer line has a control character");
  }
}
