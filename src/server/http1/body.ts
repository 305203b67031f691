/**
 * A request body as a `ReadableStream` over the connection's bytes, framed by
 * Content-Length or chunked. When the response was written before the body was read to
 * its end, the server reads and drops the rest ({@linkcode RequestBody.discard}) so the
 * next request on the connection starts where it should, or closes the connection when
 * the rest is too long or too slow.
 *
 * @module
 */

import {
  type ByteWindow,
  ChunkedDecoder,
  type ChunkSink,
  MalformedChunkedError,
} from "../../http1/chunked.ts";
import { BadRequestError } from "./request_head.ts";

/** What a body reads from: the connection's buffer and its reads. */
export interface BodySource extends ByteWindow {
  /**
   * Reads more bytes into the buffer under the body read timeout.
   *
   * @returns How many arrived; 0 at the end of the stream; -1 when the read failed.
   */
  fillBody(): Promise<number>;
  /**
   * Reads straight into `into` (the buffer must be empty) under the body read timeout.
   *
   * @returns How many arrived; 0 at the end of the stream; -1 when the read failed.
   */
  readBody(into: Uint8Array): Promise<number>;
  /** Sends `100 Continue` once, before the first read of a body whose client waits for it. */
  sendContinue(): Promise<void>;
  /** The body ended before its framing said (EOF, reset, timeout): the client is gone. */
  bodyFailed(): void;
}

/** Content-Length bodies above this are read straight into fresh chunks of this size. */
const DIRECT_READ = 64 * 1024;
/** The request trailer block is at most 16 KiB (the trailers themselves are dropped). */
const CHUNKED_OPTIONS = { maxTrailerBytes: 16 * 1024 };

/** The client's body ended before its framing said it would. */
export class IncompleteBodyError extends Error {
  /** Makes the error. */
  constructor() {
    super("The client closed the connection before the request body ended");
    this.name = "IncompleteBodyError";
  }
}

/** One request's body. */
export class RequestBody implements UnderlyingDefaultSource<Uint8Array> {
  /** The stream the lifecycle reads. */
  readonly stream: ReadableStream<Uint8Array>;
  /** The whole body was read. */
  done = false;
  /** Why the body failed: a {@linkcode BadRequestError} for broken framing. */
  error: unknown = undefined;
  #source: BodySource;
  #remaining: number;
  #chunked: ChunkedDecoder | null;
  #chunks: ChunkData | null;
  #continue: boolean;
  #pulling: Promise<unknown> | null = null;
  #controller: ReadableStreamDefaultController<Uint8Array> | null = null;
  #detached = false;

  /**
   * @param source The connection.
   * @param contentLength The Content-Length, or -1 for a chunked body.
   * @param expectContinue The client waits for `100 Continue` before it sends the body.
   */
  constructor(source: BodySource, contentLength: number, expectContinue: boolean) {
    this.#source = source;
    this.#remaining = contentLength;
    this.#chunked = contentLength < 0 ? new ChunkedDecoder(CHUNKED_OPTIONS) : null;
    this.#chunks = contentLength < 0 ? new ChunkData() : null;
    this.#continue = expectContinue;
    this.stream = new ReadableStream<Uint8Array>(this, { highWaterMark: 0 });
  }

  /** @internal The stream's start: keeps the controller. */
  start(controller: ReadableStreamDefaultController<Uint8Array>): void {
    this.#controller = controller;
  }

  /** @internal The stream's pull. */
  pull(controller: ReadableStreamDefaultController<Uint8Array>): Promise<void> {
    const pulling = this.#pull(controller, Infinity);
    // #pull clears the field when it ends; a pull that ended synchronously stays resolved.
    if (!this.done && this.error === undefined) this.#pulling = pulling;
    return pulling as Promise<unknown> as Promise<void>;
  }

  /** @internal The reader cancelled: the rest is discarded after the response. */
  cancel(): void {
    this.#controller = null;
  }

  /**
   * Reads and drops the rest of the body, after the response was written. The lifecycle's
   * reader, if any, gets an error from now on.
   *
   * @param maxBytes Give up (false) when more than this is left.
   * @returns True when the body was read to its end, so the connection may go on.
   */
  async discard(maxBytes: number): Promise<boolean> {
    this.#detached = true;
    if (this.#pulling !== null) await this.#pulling;
    if (!this.done && this.#controller !== null) {
      try {
        this.#controller.error(new Error("The response was sent before the body was read"));
      } catch {
        // already closed or errored
      }
      this.#controller = null;
    }
    let budget = maxBytes;
    while (!this.done && this.error === undefined) {
      if (!this.#chunked && this.#remaining > budget) return false;
      const got = await this.#pull(DISCARD, budget);
      budget -= got;
      if (budget < 0) return false;
    }
    return this.done;
  }

  /** Reads one piece into `sink`; returns the number of data bytes it got. */
  async #pull(sink: Sink, limit: number): Promise<number> {
    const source = this.#source;
    try {
      if (this.#continue) {
        this.#continue = false;
        await source.sendContinue();
      }
      for (;;) {
        if (this.#chunked !== null) {
          const chunks = this.#chunks!;
          chunks.to = sink;
          const got = this.#chunked.decode(source, chunks, limit);
          if (this.#chunked.finished) {
            this.#finish(sink);
            return got;
          }
          if (got > 0) return got;
          if (await source.fillBody() <= 0) throw this.#incomplete();
          continue;
        }
        const buffered = source.end - source.start;
        if (buffered > 0) {
          const take = Math.min(buffered, this.#remaining);
          sink.enqueue(source.buf.slice(source.start, source.start + take));
          source.start += take;
          this.#remaining -= take;
          if (this.#remaining === 0) this.#finish(sink);
          return take;
        }
        if (this.#remaining >= DIRECT_READ && sink !== DISCARD) {
          const chunk = new Uint8Array(DIRECT_READ);
          const n = await source.readBody(chunk);
          if (n <= 0) throw this.#incomplete();
          sink.enqueue(n === DIRECT_READ ? chunk : chunk.subarray(0, n));
          this.#remaining -= n;
          if (this.#remaining === 0) this.#finish(sink);
          return n;
        }
        if (await source.fillBody() <= 0) throw this.#incomplete();
      }
    } catch (caught) {
      // Broken chunked framing is the client's fault: a 400.
      const error = caught instanceof MalformedChunkedError
        ? new BadRequestError(400, caught.message)
        : caught;
      this.error ??= error;
      if (!(error instanceof BadRequestError)) source.bodyFailed();
      if (sink !== DISCARD && !this.#detached) sink.error(error);
      return 0;
    } finally {
      this.#pulling = null;
    }
  }

  #incomplete(): Error {
    return new IncompleteBodyError();
  }

  #finish(sink: Sink): void {
    this.done = true;
    if (sink !== DISCARD && !this.#detached) {
      (sink as ReadableStreamDefaultController<Uint8Array>).close();
    }
  }
}

interface Sink {
  enqueue(chunk: Uint8Array): void;
  error(error: unknown): void;
}

/** The sink of a discarded body. */
const DISCARD: Sink = {
  enqueue() {},
  error() {},
};

/** Hands a chunked body's data to the current sink as copies, and drops its trailers. */
class ChunkData implements ChunkSink {
  to: Sink = DISCARD;

  chunkData(buf: Uint8Array, start: number, end: number): void {
    if (this.to !== DISCARD) this.to.enqueue(buf.slice(start, end));
  }

  trailerLine(): void {
    // the lifecycle has no request trailers
  }
}
