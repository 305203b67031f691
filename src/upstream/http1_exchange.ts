/**
 * One request and its response on an HTTP/1.1 connection: writes the request, reads
 * the response head (skipping 1xx), then streams the body by its framing and hands the
 * connection back to its pool when the body ends.
 *
 * One object per request plays every part: it is the body stream's source, the abort
 * signal's listener, the chunked decoder's sink and the trailers' holder, so a request
 * costs no closures.
 *
 * @module
 */

import {
  UpstreamProtocolError,
  type UpstreamRequest,
  UpstreamResetError,
  type UpstreamResponse,
} from "./types.ts";
import type { ConnectionOwner, Http1Connection } from "./http1_connection.ts";
import { ChunkedDecoder, type ChunkSink, MalformedChunkedError } from "../http1/chunked.ts";
import { findResponseHeadEnd, HEAD_INCOMPLETE } from "../http1/head_end.ts";
import { decodeLatin1 } from "../http1/latin1.ts";
import {
  addTrailerLine,
  MalformedResponseError,
  parseResponseHead,
  type ResponseHead,
} from "./http1_parser.ts";
import { Http1Response, type TrailerSource } from "./http1_response.ts";
import { bodyFraming, CHUNKED, encodeRequestHead } from "./http1_writer.ts";

/** Longest response head accepted. */
const MAX_HEAD = 64 * 1024;
/** Largest single read straight into a body chunk. */
const MAX_DIRECT_READ = 64 * 1024;
/** The trailer block of a response is at most 64 KiB. */
const CHUNKED_OPTIONS = { maxTrailerBytes: 64 * 1024 };

// phases of an exchange
const HEAD = 0;
const BODY = 1;
const DONE = 2;

// response body framings
const NONE = 0;
const LENGTH = 1;
const CHUNKS = 2;
const UNTIL_CLOSE = 3;

/** One request/response on one connection. */
export class Http1Exchange
  implements UnderlyingDefaultSource<Uint8Array>, TrailerSource, ChunkSink {
  /**
   * Set when the request failed because a reused connection turned out to be closed
   * by the upstream before any response byte, and the request can be sent again. The
   * socket is then closed but its pool slot is left to the caller for the retry.
   */
  stale = false;
  #owner: ConnectionOwner;
  #conn: Http1Connection;
  #request: UpstreamRequest;
  #phase = HEAD;
  #framing = NONE;
  /** Bytes of a Content-Length body still to come. */
  #remaining = 0;
  #chunks: ChunkedDecoder | null = null;
  /** Where the next chunk data moves to, in the read buffer, while chunks decode. */
  #chunkOut = 0;
  /** Trailer fields of a chunked body, once the first arrives. */
  #trailers: Headers | null = null;
  #keepAlive = true;
  /** Response bytes arrived; a failure is then no longer a stale connection. */
  #received = false;
  /** A streamed request body is still being sent. */
  #sending = false;
  /** Why the request body could not be sent in full, when it was its own fault. */
  #requestBodyError: unknown = undefined;
  #controller: ReadableStreamDefaultController<Uint8Array> | null = null;
  #spare: Uint8Array | null = null;
  #trailersPromise: Promise<Headers> | null = null;
  #resolveTrailers: ((trailers: Headers) => void) | null = null;

  /** Prepares an exchange; {@linkcode run} starts it. */
  constructor(owner: ConnectionOwner, conn: Http1Connection, request: UpstreamRequest) {
    this.#owner = owner;
    this.#conn = conn;
    this.#request = request;
  }

  /**
   * Sends the request and reads the response head.
   *
   * @returns the response, its body streaming
   * @throws {UpstreamResetError} when the upstream closed or sent garbage before a full head
   */
  async run(): Promise<UpstreamResponse> {
    const conn = this.#conn;
    const request = this.#request;
    const signal = request.signal;
    conn.requests++;
    if (signal !== undefined) {
      signal.addEventListener("abort", this);
      // aborted while a connection was being found: fail through the usual path
      if (signal.aborted) conn.close();
    }
    let head: ResponseHead;
    try {
      const body = request.body;
      const framing = bodyFraming(request.method, body, request.headers);
      const text = encodeRequestHead(
        request.method,
        request.path,
        request.headers,
        this.#owner.label,
        framing,
      );
      try {
        await conn.writeHead(text, body instanceof Uint8Array ? body : null);
        if (body !== null && !(body instanceof Uint8Array)) {
          this.#sending = true;
          this.#sendBody(body, framing);
        }
      } catch {
        // The upstream may have answered and closed before reading everything; the
        // head read below decides what this write failure means.
      }
      head = await this.#readHead();
    } catch (err) {
      throw this.#failBeforeHead(err);
    }
    return this.#startBody(head);
  }

  /** The trailers promise, made on first use. */
  trailers(): Promise<Headers> {
    if (this.#trailersPromise === null) {
      if (this.#phase === DONE) {
        this.#trailersPromise = Promise.resolve(this.#trailers ?? new Headers());
      } else {
        const { promise, resolve } = Promise.withResolvers<Headers>();
        this.#trailersPromise = promise;
        this.#resolveTrailers = resolve;
      }
    }
    return this.#trailersPromise;
  }

  async #readHead(): Promise<ResponseHead> {
    const conn = this.#conn;
    while (true) {
      let headEnd = findResponseHeadEnd(conn.buf, conn.start, conn.end);
      while (headEnd === HEAD_INCOMPLETE) {
        if (conn.end - conn.start >= MAX_HEAD) {
          throw new UpstreamResetError(
            `Upstream ${this.#owner.label} sent a response head longer than ${MAX_HEAD} bytes`,
          );
        }
        const n = await conn.fill();
        if (n <= 0) {
          if (n < 0) throw conn.takeReadError();
          throw new UpstreamResetError(
            `Upstream ${this.#owner.label} closed the connection before a full response head`,
          );
        }
        this.#received = true;
        headEnd = findResponseHeadEnd(conn.buf, conn.start, conn.end);
      }
      let head: ResponseHead;
      try {
        head = parseResponseHead(decodeLatin1(conn.buf, conn.start, headEnd));
      } catch (err) {
        if (!(err instanceof MalformedResponseError)) throw err;
        throw new UpstreamResetError(
          `Upstream ${this.#owner.label} sent a malformed response head: ${err.message}`,
        );
      }
      conn.start = headEnd;
      // 100 Continue, 103 Early Hints and other interim responses precede the real one.
      if (head.status >= 200) return head;
      if (head.status === 101) {
        if (this.#request.headers.has("upgrade")) return head;
        throw new UpstreamProtocolError(
          `Upstream ${this.#owner.label} sent 101 Switching Protocols to a request without Upgrade`,
        );
      }
    }
  }

  /** Cleans up after a failure before the response head, and says what to throw. */
  #failBeforeHead(err: unknown): unknown {
    this.#phase = DONE;
    this.#stopListening();
    const signal = this.#request.signal;
    if (signal !== undefined && signal.aborted) {
      this.#owner.discard(this.#conn);
      return signal.reason;
    }
    if (this.#requestBodyError !== undefined) {
      this.#owner.discard(this.#conn);
      return this.#requestBodyError;
    }
    const body = this.#request.body;
    // A malformed or oversized head counts as received bytes, so it is never retried.
    if (
      !this.#received && this.#conn.requests > 1 && (body === null || body instanceof Uint8Array)
    ) {
      // a keep-alive race: the upstream closed the idle connection as we reused it
      this.stale = true;
      this.#conn.close();
      return err;
    }
    this.#owner.discard(this.#conn);
    if (err instanceof UpstreamResetError) return err;
    return new UpstreamResetError(
      `Upstream ${this.#owner.label} reset the connection before a full response head`,
      { cause: err },
    );
  }

  #startBody(head: ResponseHead): UpstreamResponse {
    const conn = this.#conn;
    const status = head.status;
    this.#keepAlive = head.version >= 1 ? !head.connectionClose : head.connectionKeepAlive;
    conn.keepAliveTimeoutMs = head.keepAliveTimeout >= 0 ? head.keepAliveTimeout * 1000 : -1;
    if (this.#request.method === "HEAD" || status === 204 || status === 304 || status < 200) {
      // 101 switches protocols; this client does not follow, so the connection is spent
      if (status < 200) this.#keepAlive = false;
      this.#finish();
      return new Http1Response(head, this, null, null);
    }
    if (head.transferEncoding !== null) {
      if (head.chunked) {
        this.#framing = CHUNKS;
        this.#chunks = new ChunkedDecoder(CHUNKED_OPTIONS);
      } else {
        this.#framing = UNTIL_CLOSE;
      }
      // RFC 9112 section 6.3: Transfer-Encoding overrides Content-Length, which must not
      // reach the client; both headers is a smuggling smell, so do not reuse either
      if (head.contentLength !== -1) {
        head.headers.delete("content-length");
        this.#keepAlive = false;
      }
    } else if (head.contentLength >= 0) {
      const length = head.contentLength;
      if (length === 0) {
        this.#finish();
        return new Http1Response(head, this, null, null);
      }
      if (conn.end - conn.start >= length) {
        const bytes = conn.buf.slice(conn.start, conn.start + length);
        conn.start += length;
        this.#finish();
        return new Http1Response(head, this, bytes, undefined);
      }
      this.#framing = LENGTH;
      this.#remaining = length;
    } else {
      this.#framing = UNTIL_CLOSE;
    }
    if (this.#framing === UNTIL_CLOSE) this.#keepAlive = false;
    this.#phase = BODY;
    return new Http1Response(head, this, null, new ReadableStream<Uint8Array>(this));
  }

  /** Stream source: keeps the controller. */
  start(controller: ReadableStreamDefaultController<Uint8Array>): void {
    this.#controller = controller;
  }

  /** Stream source: delivers buffered bytes at once, else reads. */
  pull(controller: ReadableStreamDefaultController<Uint8Array>): Promise<void> | undefined {
    if (this.#phase !== BODY) return;
    try {
      if (this.#drain(controller)) return;
    } catch (err) {
      this.#fail(err);
      return;
    }
    return this.#pullAsync(controller);
  }

  /** Stream source: the consumer gave up on the body; the connection cannot be reused. */
  cancel(): void {
    if (this.#phase === DONE) return;
    this.#phase = DONE;
    this.#end(false);
  }

  /** Abort listener: closes the connection, which ends whatever is pending. */
  handleEvent(): void {
    if (this.#phase === HEAD) {
      // the pending write or read fails; run() then reports the signal's reason
      this.#conn.close();
    } else if (this.#phase === BODY) {
      this.#fail(this.#request.signal!.reason);
    }
  }

  /**
   * Moves buffered body bytes into the stream.
   *
   * @returns whether a chunk was enqueued or the body ended
   */
  #drain(controller: ReadableStreamDefaultController<Uint8Array>): boolean {
    const conn = this.#conn;
    const available = conn.end - conn.start;
    switch (this.#framing) {
      case LENGTH: {
        if (available === 0) return false;
        const take = available < this.#remaining ? available : this.#remaining;
        controller.enqueue(conn.buf.slice(conn.start, conn.start + take));
        conn.start += take;
        this.#remaining -= take;
        if (this.#remaining === 0) this.#complete(controller);
        return true;
      }
      case UNTIL_CLOSE:
        if (available === 0) return false;
        controller.enqueue(conn.buf.slice(conn.start, conn.end));
        conn.start = conn.end;
        return true;
      default:
        return this.#drainChunks(controller);
    }
  }

  /**
   * Decodes buffered chunked framing and enqueues the data found. The data of every
   * complete and partial chunk is moved together to the front of the unconsumed bytes
   * ({@linkcode chunkData}), so one slice takes it.
   */
  #drainChunks(controller: ReadableStreamDefaultController<Uint8Array>): boolean {
    const conn = this.#conn;
    const chunks = this.#chunks!;
    const outStart = conn.start;
    this.#chunkOut = outStart;
    let length: number;
    try {
      length = chunks.decode(conn, this, Infinity);
    } catch (err) {
      if (!(err instanceof MalformedChunkedError || err instanceof MalformedResponseError)) {
        throw err;
      }
      throw new UpstreamResetError(
        `Upstream ${this.#owner.label} sent a malformed chunked body: ${err.message}`,
      );
    }
    if (length > 0) controller.enqueue(conn.buf.slice(outStart, outStart + length));
    if (chunks.finished) {
      this.#complete(controller);
      return true;
    }
    return length > 0;
  }

  async #pullAsync(controller: ReadableStreamDefaultController<Uint8Array>): Promise<void> {
    const conn = this.#conn;
    try {
      while (true) {
        if (conn.start === conn.end && this.#canReadDirect()) {
          if (this.#readDirect(controller, await this.#readInto())) return;
          continue;
        }
        const n = await conn.fill();
        if (n < 0) throw conn.takeReadError();
        if (n === 0) {
          if (this.#framing === UNTIL_CLOSE) {
            this.#complete(controller);
            return;
          }
          throw new UpstreamResetError(
            `Upstream ${this.#owner.label} closed the connection in the middle of a response body`,
          );
        }
        if (this.#phase !== BODY) return;
        if (this.#drain(controller)) return;
      }
    } catch (err) {
      if (this.#phase !== BODY) return;
      const signal = this.#request.signal;
      this.#fail(
        signal !== undefined && signal.aborted
          ? signal.reason
          : err instanceof UpstreamResetError
          ? err
          : new UpstreamResetError(
            `Upstream ${this.#owner.label} failed in the middle of a response body`,
            { cause: err },
          ),
      );
    }
  }

  /** Chunked decoder's sink: moves chunk data down to where the data before it ends. */
  chunkData(buf: Uint8Array, start: number, end: number): void {
    const out = this.#chunkOut;
    if (out !== start) buf.copyWithin(out, start, end);
    this.#chunkOut = out + end - start;
  }

  /** Chunked decoder's sink: keeps a trailer field. */
  trailerLine(buf: Uint8Array, start: number, end: number): void {
    addTrailerLine(this.#trailers ??= new Headers(), decodeLatin1(buf, start, end));
  }

  /** Body bytes may be read straight into a fresh chunk, past the read buffer. */
  #canReadDirect(): boolean {
    return this.#framing !== CHUNKS || this.#chunks!.dataAhead > 0;
  }

  /**
   * Reads body bytes into a buffer of their own, never past the body's (or chunk's)
   * end, so nothing after it is consumed.
   *
   * @returns the bytes, or null at end of stream
   */
  async #readInto(): Promise<Uint8Array | null> {
    let size = MAX_DIRECT_READ;
    const left = this.#framing === LENGTH
      ? this.#remaining
      : this.#framing === CHUNKS
      ? this.#chunks!.dataAhead
      : size;
    // The last read of a Content-Length body asks for one byte more: a byte that comes
    // with it was sent past the body's end, and must not be left in the socket for the
    // next request on this connection to take as its response.
    let past = false;
    if (left < size) {
      size = left;
      if (this.#framing === LENGTH) {
        size++;
        past = true;
      }
    }
    let spare = this.#spare;
    if (spare === null || spare.length < size) spare = new Uint8Array(size);
    let n = await this.#conn.conn.read(size === spare.length ? spare : spare.subarray(0, size));
    if (n === null) {
      this.#spare = spare;
      return null;
    }
    if (past && n === size) {
      // direct reads happen only with the read buffer empty; the stray byte goes there,
      // so the connection is not reused
      const conn = this.#conn;
      conn.buf[0] = spare[--n];
      conn.start = 0;
      conn.end = 1;
    }
    // Hand the buffer over when the read filled most of it; copy out small reads so
    // that a trickling upstream does not pin a large buffer per chunk.
    if (n * 2 >= spare.length) {
      this.#spare = null;
      return n === spare.length ? spare : spare.subarray(0, n);
    }
    this.#spare = spare;
    return spare.slice(0, n);
  }

  /**
   * Accounts for a direct read.
   *
   * @returns whether the pull is satisfied
   */
  #readDirect(
    controller: ReadableStreamDefaultController<Uint8Array>,
    chunk: Uint8Array | null,
  ): boolean {
    if (this.#phase !== BODY) return true;
    if (chunk === null) {
      if (this.#framing === UNTIL_CLOSE) {
        this.#complete(controller);
        return true;
      }
      throw new UpstreamResetError(
        `Upstream ${this.#owner.label} closed the connection in the middle of a response body`,
      );
    }
    controller.enqueue(chunk);
    if (this.#framing === CHUNKS) {
      this.#chunks!.consumed(chunk.length);
    } else if (this.#framing === LENGTH) {
      this.#remaining -= chunk.length;
      if (this.#remaining === 0) this.#complete(controller);
    }
    return true;
  }

  /** The body ended by its framing. */
  #complete(controller: ReadableStreamDefaultController<Uint8Array>): void {
    this.#phase = DONE;
    controller.close();
    this.#finish();
  }

  /** The exchange ended cleanly: reuse the connection if everything allows it. */
  #finish(): void {
    this.#phase = DONE;
    const conn = this.#conn;
    // leftover bytes mean the upstream sent more than it framed: do not trust the rest
    this.#end(this.#keepAlive && !this.#sending && conn.start === conn.end);
  }

  /** The body failed: error the stream and drop the connection. */
  #fail(reason: unknown): void {
    this.#phase = DONE;
    this.#end(false);
    try {
      this.#controller?.error(reason);
    } catch {
      // the stream was already closed or errored
    }
  }

  #end(reuse: boolean): void {
    this.#stopListening();
    if (reuse) this.#owner.release(this.#conn);
    else this.#owner.discard(this.#conn);
    const resolve = this.#resolveTrailers;
    if (resolve !== null) {
      this.#resolveTrailers = null;
      resolve(this.#trailers ?? new Headers());
    }
  }

  #stopListening(): void {
    const signal = this.#request.signal;
    if (signal !== undefined) signal.removeEventListener("abort", this);
  }

  /** Streams the request body upstream while the response is awaited. */
  async #sendBody(body: ReadableStream<Uint8Array>, framing: number): Promise<void> {
    const conn = this.#conn;
    let reader: ReadableStreamDefaultReader<Uint8Array>;
    try {
      reader = body.getReader();
    } catch (err) {
      this.#requestBodyFailed(err);
      return;
    }
    let sent = 0;
    try {
      while (true) {
        let result: ReadableStreamReadResult<Uint8Array>;
        try {
          result = await reader.read();
        } catch (err) {
          this.#requestBodyFailed(err);
          return;
        }
        if (result.done) break;
        const chunk = result.value;
        if (chunk.length === 0) continue;
        if (this.#phase === DONE) {
          // the response ended (or failed) first; the rest of the body has no reader
          reader.cancel().catch(ignore);
          return;
        }
        if (framing === CHUNKED) {
          await conn.writeChunk(chunk, sent === 0);
        } else {
          if (sent + chunk.length > framing) {
            this.#requestBodyFailed(
              new RangeError(`Request body is longer than its Content-Length of ${framing}`),
            );
            reader.cancel().catch(ignore);
            return;
          }
          await conn.write(chunk);
          if (sent + chunk.length === framing) {
            // Everything framed is sent: the connection may be reused even if the
            // stream has not reported its end yet.
            this.#sending = false;
          }
        }
        sent += chunk.length;
      }
      if (framing === CHUNKED) {
        await conn.writeLastChunk(sent === 0);
      } else if (sent < framing) {
        this.#requestBodyFailed(
          new RangeError(`Request body ended after ${sent} of its ${framing} bytes`),
        );
        return;
      }
      this.#sending = false;
    } catch {
      // A write failed: the upstream stopped reading, maybe after answering early. The
      // response is still read; #sending stays set, so the connection is not reused.
      reader.cancel().catch(ignore);
    }
  }

  /** The request body itself failed (a downstream abort, a wrong length). */
  #requestBodyFailed(err: unknown): void {
    this.#requestBodyError = err;
    if (this.#phase === HEAD) this.#conn.close();
    else if (this.#phase === BODY) this.#fail(err);
  }
}

function ignore(): void {}
