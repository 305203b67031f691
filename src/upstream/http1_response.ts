/**
 * The response object of the HTTP/1.1 client.
 *
 * @module
 */

import type { UpstreamResponse } from "./types.ts";
import type { ResponseHead } from "./http1_parser.ts";

/** Where a response's trailers come from. */
export interface TrailerSource {
  /** The trailers promise, made on first use. */
  trailers(): Promise<Headers>;
}

/** A response from the HTTP/1.1 pool. */
export class Http1Response implements UpstreamResponse {
  /** Status code. */
  readonly status: number;
  /** Reason phrase. */
  readonly statusText: string;
  /** Response headers, hop-by-hop ones included. */
  readonly headers: Headers;
  /**
   * The whole body when it had already arrived with the head (a Content-Length body);
   * its connection is then already back in the pool. A caller that checks this first
   * can answer with the bytes and skip the stream, which is much cheaper in Deno.
   * Null when the body streams or there is none.
   */
  readonly bufferedBody: Uint8Array | null;
  #source: TrailerSource;
  #body: ReadableStream<Uint8Array> | null | undefined;

  /**
   * Made by the exchange.
   *
   * @param head the parsed head
   * @param source gives the trailers
   * @param bufferedBody the whole body, already read
   * @param body the body stream; undefined to make it from `bufferedBody` on demand
   */
  constructor(
    head: ResponseHead,
    source: TrailerSource,
    bufferedBody: Uint8Array | null,
    body: ReadableStream<Uint8Array> | null | undefined,
  ) {
    this.status = head.status;
    this.statusText = head.statusText;
    this.headers = head.headers;
    this.bufferedBody = bufferedBody;
    this.#source = source;
    this.#body = body;
  }

  /** The body stream; made on first access when the body is {@linkcode bufferedBody}. */
  get body(): ReadableStream<Uint8Array> | null {
    if (this.#body === undefined) {
      this.#body = new ReadableStream(new BytesSource(this.bufferedBody!));
    }
    return this.#body;
  }

  /** Replaces the body, for callers that transform it. */
  set body(body: ReadableStream<Uint8Array> | null) {
    this.#body = body;
  }

  /** Trailers of a chunked body; empty for other bodies and when the body fails. */
  get trailers(): Promise<Headers> {
    return this.#source.trailers();
  }
}

/** A stream source that yields one buffer. */
class BytesSource implements UnderlyingDefaultSource<Uint8Array> {
  #bytes: Uint8Array;

  constructor(bytes: Uint8Array) {
    this.#bytes = bytes;
  }

  start(controller: ReadableStreamDefaultController<Uint8Array>): void {
    controller.enqueue(this.#bytes);
    controller.close();
  }
}
