/**
 * Decoding of a chunked response body (RFC 9112 section 7.1) in place in a
 * connection's read buffer.
 *
 * @module
 */

import type { Http1Connection } from "./http1_connection.ts";
import {
  addTrailerLine,
  decodeLatin1,
  indexOfLf,
  MalformedResponseError,
  parseChunkSize,
} from "./http1_parser.ts";

/** Longest chunk-size line (with extensions) accepted. */
const MAX_CHUNK_LINE = 4 * 1024;
/** Longest trailer block accepted. */
const MAX_TRAILERS = 64 * 1024;

const LF = 10;
const CR = 13;

const SIZE = 0;
const DATA = 1;
const DATA_END = 2;
const TRAILERS = 3;
const FINISHED = 4;

/** The state of one chunked body's decoding. */
export class ChunkedDecoder {
  #state = SIZE;
  #remaining = 0;
  /** Trailer fields, once the first arrives. */
  trailers: Headers | null = null;

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

  /** Accounts for `n` data bytes of the current chunk read past the buffer. */
  consumed(n: number): void {
    this.#remaining -= n;
    if (this.#remaining === 0) this.#state = DATA_END;
  }

  /**
   * Decodes the buffered bytes of `conn`. The data of every complete and partial chunk
   * is moved together to the front of the unconsumed bytes, so one slice takes it.
   *
   * @param conn the connection whose `buf[start, end)` holds the received bytes; its
   *   `start` moves past what was decoded
   * @returns how many data bytes now sit at the old `start`
   * @throws {MalformedResponseError} when the framing is broken
   */
  decode(conn: Http1Connection): number {
    const buf = conn.buf;
    const end = conn.end;
    const outStart = conn.start;
    let pos = outStart;
    let out = outStart;
    scan: while (true) {
      switch (this.#state) {
        case SIZE: {
          const lf = indexOfLf(buf, pos, end);
          if (lf === -1) {
            if (end - pos > MAX_CHUNK_LINE) {
              throw new MalformedResponseError("a chunk-size line is too long");
            }
            break scan;
          }
          const size = parseChunkSize(buf, pos, lf);
          if (size < 0) throw new MalformedResponseError("a chunk-size line is not valid");
          pos = lf + 1;
          if (size === 0) {
            this.#state = TRAILERS;
          } else {
            this.#remaining = size;
            this.#state = DATA;
          }
          break;
        }
        case DATA: {
          const available = end - pos;
          if (available === 0) break scan;
          const take = available < this.#remaining ? available : this.#remaining;
          if (out !== pos) buf.copyWithin(out, pos, pos + take);
          out += take;
          pos += take;
          this.consumed(take);
          break;
        }
        case DATA_END: {
          if (pos >= end) break scan;
          if (buf[pos] === LF) {
            pos += 1;
          } else if (buf[pos] === CR) {
            if (pos + 1 >= end) break scan;
            if (buf[pos + 1] !== LF) {
              throw new MalformedResponseError("chunk data is not followed by CRLF");
            }
            pos += 2;
          } else {
            throw new MalformedResponseError("chunk data is longer than its chunk size");
          }
          this.#state = SIZE;
          break;
        }
        case TRAILERS: {
          const lf = indexOfLf(buf, pos, end);
          if (lf === -1) {
            if (end - pos > MAX_TRAILERS) {
              throw new MalformedResponseError("the trailer block is too long");
            }
            break scan;
          }
          const lineEnd = lf > pos && buf[lf - 1] === CR ? lf - 1 : lf;
          if (lineEnd === pos) {
            this.#state = FINISHED;
          } else {
            addTrailerLine(this.trailers ??= new Headers(), decodeLatin1(buf, pos, lineEnd));
          }
          pos = lf + 1;
          break;
        }
        default:
          break scan;
      }
    }
    conn.start = pos;
    return out - outStart;
  }
}
