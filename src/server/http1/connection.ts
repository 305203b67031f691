/**
 * One client connection of the HTTP/1.1 server: read a request head, hand the request to
 * the stream lifecycle, write its response, drop what is left of its body, and go on
 * while the connection may be kept alive. Pipelined requests are served one after the
 * other, in order, from the same read buffer.
 *
 * Timeouts are deadlines, not timers: the connection sets `deadline` when it starts to
 * wait for something, and the server's one sweep timer calls {@linkcode expire} on the
 * connections whose deadline passed. Waiting for:
 * - a request head: the header timeout from the head's first byte (or from accept, for
 *   the first request); 408, then close;
 * - the next request on a kept-alive connection: the idle timeout; close;
 * - more of a request body: the body read timeout between reads; close (the request's
 *   signal aborts).
 *
 * A request that is being handled has no deadline of its own (the route's timeout bounds
 * the upstream), so an Upgrade or CONNECT request, answered as an ordinary request, never
 * turns a timeout off for the rest of the connection.
 *
 * @module
 */

import type { ListenerContext } from "../../proxy/stream.ts";
import { handleStream } from "../../proxy/stream.ts";
import type { StreamResponse } from "../../proxy/downstream.ts";
import { type BodySource, RequestBody } from "./body.ts";
import { findHeadEnd, HEAD_BARE_LF } from "../../http1/head_end.ts";
import {
  BadRequestError,
  BodyFraming,
  MAX_REQUEST_LINE,
  parseRequestHead,
  type RequestHead,
} from "./request_head.ts";
import { type ResponseOutput, writeResponse } from "./response_writer.ts";
import { reasonPhrase } from "./status.ts";

/** The byte stream a connection runs on: a `Deno.Conn`, or a TLS socket adapted to one. */
export interface ByteConn {
  read(p: Uint8Array): Promise<number | null>;
  write(p: Uint8Array): Promise<number>;
  close(): void;
}

/** Something the server's sweep watches: a client connection or an h2c tunnel. */
export interface Watched {
  /** When {@linkcode expire} is due (`Date.now()` scale); Infinity for never. */
  deadline: number;
  /** The deadline passed. */
  expire(): void;
  /** A request is being handled on it (it is cut, not closed at once, by a drain). */
  readonly busy: boolean;
  /** The server drains: close now when idle; true when it closed. */
  drainIdle(): boolean;
  /** Closes it at once. */
  close(): void;
}

/** What a connection needs from its server. */
export interface ConnectionServer {
  /** What new requests are handled with (swapped by reloads). */
  readonly context: ListenerContext;
  readonly headerTimeoutMs: number;
  readonly idleTimeoutMs: number;
  readonly bodyTimeoutMs: number;
  /** `Http1` refuses the h2c preface; `Http2` refuses HTTP/1.x requests. */
  readonly protocol: "Http1" | "Http2" | "Auto";
  /** The server drains: every response says `Connection: close`. */
  readonly draining: boolean;
  /**
   * Takes over a connection that sent the HTTP/2 preface; `first` holds the bytes read
   * so far, the preface included. Absent: the preface is refused.
   */
  readonly h2c: ((conn: ByteConn, remoteAddr: Deno.NetAddr, first: Uint8Array) => void) | null;
  /** The connection ended (or was handed over). */
  ended(conn: Watched): void;
}

const CR = 13;
const LF = 10;
/** A connection's read buffer to start with: most request heads fit. */
const INITIAL_BUFFER = 4 * 1024;
/** The read buffer while a chunked body streams. */
const BODY_BUFFER = 16 * 1024;
/** At most this much of an unread body is read and dropped to keep the connection. */
const MAX_DISCARD = 1024 * 1024;
/** …within this long. */
const DISCARD_MS = 5_000;

const NONE = 0;
const HEAD = 1;
const IDLE = 2;
const BODY = 3;
const DISCARD = 4;

const encoder = new TextEncoder();
const CONTINUE = encoder.encode("HTTP/1.1 100 Continue\r\n\r\n");

/** A client connection. */
export class ClientConnection implements BodySource, ResponseOutput, Watched {
  /** Read buffer; bytes `[start, end)` are received and not yet consumed. */
  buf: Uint8Array = new Uint8Array(INITIAL_BUFFER);
  start = 0;
  end = 0;
  deadline = Infinity;
  readonly conn: ByteConn;
  readonly remoteAddr: Deno.NetAddr;
  #server: ConnectionServer;
  #kind = NONE;
  #pending: Promise<number> | null = null;
  #peerEnded = false;
  #closed = false;
  #handedOver = false;
  #inRequest = false;
  #controller: AbortController | null = null;
  #minor = 1;
  #continueSent = false;
  #requests = 0;

  /**
   * @param conn The accepted connection.
   * @param remoteAddr The client's address.
   * @param server The server it belongs to.
   */
  constructor(conn: ByteConn, remoteAddr: Deno.NetAddr, server: ConnectionServer) {
    this.conn = conn;
    this.remoteAddr = remoteAddr;
    this.#server = server;
  }

  /** A request is being handled. */
  get busy(): boolean {
    return this.#inRequest;
  }

  /** Serves requests until the connection closes. */
  async run(): Promise<void> {
    try {
      while (await this.#serveOne());
    } catch (error) {
      this.#server.context.logger.debug("Connection from {client} failed: {error}", {
        client: this.remoteAddr.hostname,
        error,
      });
    } finally {
      if (!this.#handedOver) this.close();
      this.#server.ended(this);
    }
  }

  /** Serves one request; true when the connection may carry another. */
  async #serveOne(): Promise<boolean> {
    const server = this.#server;
    const ctx = server.context;
    let head: RequestHead;
    try {
      const headEnd = await this.#readHead(ctx.maxHeaderBytes);
      if (headEnd < 0) return false;
      head = parseRequestHead(this.buf, this.start, headEnd);
      if (head.h2Preface) return this.#prefaceReceived();
      if (server.protocol === "Http2") {
        throw new BadRequestError(505, "this listener serves HTTP/2 only");
      }
      this.start = headEnd;
    } catch (error) {
      if (!(error instanceof BadRequestError)) throw error;
      ctx.logger.debug("Refused a request from {client} on listener {listener}: {reason}", {
        client: this.remoteAddr.hostname,
        listener: ctx.name,
        reason: error.message,
      });
      await this.#answerAndClose(error.status, error.message);
      return false;
    }
    this.#requests++;
    this.#minor = head.minor;
    this.#continueSent = head.minor === 0;
    const hasBody = head.framing === BodyFraming.Chunked ||
      (head.framing === BodyFraming.Length && head.contentLength > 0);
    const body = hasBody
      ? new RequestBody(
        this,
        head.framing === BodyFraming.Chunked ? -1 : head.contentLength,
        head.expectContinue,
      )
      : null;
    // The server answers the expectation itself, when the body is first read.
    if (head.expectContinue) head.headers.delete("expect");
    const keepAlive = head.minor === 1 ? !head.close : head.keepAlive;

    this.#inRequest = true;
    // Watch the connection while the request runs: a reset aborts the request, and the
    // read is the one the next head needs anyway.
    if (body === null) this.#fill();
    const completed = Promise.withResolvers<void>();
    completed.promise.catch(ignore);
    let response: StreamResponse;
    try {
      response = await handleStream(ctx, {
        method: head.method,
        target: head.target,
        authority: head.host,
        headers: head.headers,
        body: body === null ? null : body.stream,
        signal: this.signal,
        // The head parser left out hop-by-hop fields, and the head's size was checked.
        sanitized: true,
      }, {
        remoteAddr: this.remoteAddr,
        protocol: head.minor === 1 ? "HTTP/1.1" : "HTTP/1.0",
        completed: completed.promise,
      });
    } catch (error) {
      ctx.logger.error("Listener {listener} failed a request: {error}", {
        listener: ctx.name,
        error,
      });
      response = { status: 500, headers: new Headers(), body: INTERNAL_ERROR };
    }
    if (this.#closed) {
      cancelBody(response);
      completed.reject(new Error("The client went away"));
      return false;
    }
    if (body !== null && body.error instanceof BadRequestError) {
      // Broken body framing: whatever the lifecycle made of it, the client gets a 400.
      cancelBody(response);
      completed.reject(body.error);
      ctx.logger.debug("Refused a request body from {client} on listener {listener}: {reason}", {
        client: this.remoteAddr.hostname,
        listener: ctx.name,
        reason: body.error.message,
      });
      await this.#answerAndClose(400, body.error.message);
      return false;
    }
    let reusable: boolean;
    try {
      reusable = await writeResponse(this, response, head, !keepAlive || server.draining);
      completed.resolve();
    } catch (error) {
      completed.reject(error);
      return false;
    }
    this.#inRequest = false;
    if (body !== null && !body.done) {
      // Answered before the body was read: drop the rest, so the next request on the
      // connection starts where it should, or give up and close.
      if (!reusable || body.error !== undefined) return false;
      this.#arm(DISCARD, DISCARD_MS);
      const drained = await body.discard(MAX_DISCARD);
      this.#disarm();
      if (!drained) return false;
    }
    if (this.buf.length > INITIAL_BUFFER && this.start === this.end && this.#pending === null) {
      this.buf = new Uint8Array(INITIAL_BUFFER);
      this.start = this.end = 0;
    }
    return reusable && !server.draining;
  }

  /** The request's signal: one per connection, aborted when it fails during a request. */
  get signal(): AbortSignal {
    return (this.#controller ??= new AbortController()).signal;
  }

  /** Waits for a complete request head; returns its end, or -1 when the connection ended. */
  async #readHead(maxHeaderBytes: number): Promise<number> {
    const server = this.#server;
    this.#arm(
      this.#requests === 0 || this.start < this.end ? HEAD : IDLE,
      this.#requests === 0 || this.start < this.end ? server.headerTimeoutMs : server.idleTimeoutMs,
    );
    // Where the search for the blank line resumes, from `start`.
    let scanned = 0;
    const limit = MAX_REQUEST_LINE + maxHeaderBytes;
    for (;;) {
      const buf = this.buf;
      // RFC 9112 section 2.2: empty lines before a request line are ignored.
      while (this.start < this.end && (buf[this.start] === CR || buf[this.start] === LF)) {
        this.start++;
        scanned = 0;
      }
      if (this.start < this.end) {
        if (this.#kind === IDLE) this.#arm(HEAD, server.headerTimeoutMs);
        const headEnd = findHeadEnd(buf, this.start + scanned, this.end);
        if (headEnd >= 0) {
          this.#disarm();
          if (headEnd - this.start > Math.min(MAX_REQUEST_LINE, maxHeaderBytes)) {
            checkHeadSize(buf, this.start, headEnd, limit, maxHeaderBytes);
          }
          return headEnd;
        }
        if (headEnd === HEAD_BARE_LF) {
          throw new BadRequestError(400, "a line of the request head ends in a bare LF");
        }
        scanned = this.end - this.start;
        if (scanned > MAX_REQUEST_LINE) {
          checkHeadSize(buf, this.start, this.end, limit, maxHeaderBytes);
        }
      } else if (server.draining) {
        return -1;
      }
      const n = await this.#fill(limit + 1);
      if (n <= 0) return -1;
    }
  }

  /** The HTTP/2 preface: hand the connection to the h2c server, or refuse it. */
  #prefaceReceived(): boolean {
    const server = this.#server;
    if (server.protocol === "Http1" || server.h2c === null) {
      throw new BadRequestError(505, "this listener serves HTTP/1.x only");
    }
    this.#handedOver = true;
    this.#disarm();
    server.h2c(this.conn, this.remoteAddr, this.buf.slice(this.start, this.end));
    return false;
  }

  /** Reads more into the buffer; one read at a time, shared by whoever waits for it. */
  #fill(maxBuffer = BODY_BUFFER): Promise<number> {
    return this.#pending ??= this.#read(maxBuffer);
  }

  async #read(maxBuffer: number): Promise<number> {
    if (this.#peerEnded) {
      this.#pending = null;
      return 0;
    }
    if (this.start === this.end) {
      this.start = this.end = 0;
    } else if (this.buf.length - this.end < 1024) {
      if (this.start > 0) {
        this.buf.copyWithin(0, this.start, this.end);
        this.end -= this.start;
        this.start = 0;
      }
      if (this.end === this.buf.length && this.buf.length < maxBuffer) {
        const bigger = new Uint8Array(Math.min(this.buf.length * 2, maxBuffer));
        bigger.set(this.buf.subarray(0, this.end));
        this.buf = bigger;
      }
    }
    let n: number | null;
    try {
      n = this.end === this.buf.length ? -1 : await this.conn.read(this.buf.subarray(this.end));
    } catch {
      n = -1;
    }
    this.#pending = null;
    if (n === null) {
      this.#peerEnded = true;
      return 0;
    }
    if (n < 0) {
      this.close();
      return -1;
    }
    this.end += n;
    return n;
  }

  /** @internal BodySource: more body bytes, under the body read timeout. */
  async fillBody(): Promise<number> {
    if (this.buf.length < BODY_BUFFER && this.start === this.end && this.#pending === null) {
      this.buf = new Uint8Array(BODY_BUFFER);
      this.start = this.end = 0;
    }
    if (this.#kind !== DISCARD) this.#arm(BODY, this.#server.bodyTimeoutMs);
    const n = await this.#fill();
    if (this.#kind === BODY) this.#disarm();
    return n;
  }

  /** @internal BodySource: body bytes straight into `into`, under the body read timeout. */
  async readBody(into: Uint8Array): Promise<number> {
    if (this.#kind !== DISCARD) this.#arm(BODY, this.#server.bodyTimeoutMs);
    let n: number | null;
    try {
      n = await this.conn.read(into);
    } catch {
      n = -1;
    }
    if (this.#kind === BODY) this.#disarm();
    if (n === null) {
      this.#peerEnded = true;
      return 0;
    }
    if (n < 0) this.close();
    return n;
  }

  /** @internal BodySource: `100 Continue`, once per request. */
  sendContinue(): Promise<void> {
    if (this.#continueSent) return Promise.resolve();
    this.#continueSent = true;
    return this.writeAll(CONTINUE);
  }

  /** @internal BodySource: the body ended early; the client is gone. */
  bodyFailed(): void {
    this.close();
  }

  /** Writes all of `bytes`. */
  async writeAll(bytes: Uint8Array): Promise<void> {
    let offset = await this.conn.write(bytes);
    while (offset < bytes.length) offset += await this.conn.write(bytes.subarray(offset));
  }

  /** The sweep found the deadline passed. */
  expire(): void {
    const kind = this.#kind;
    this.#disarm();
    if (kind === HEAD && !this.#inRequest && !this.#closed) {
      const ctx = this.#server.context;
      ctx.logger.debug("Listener {listener}: request head from {client} timed out; 408", {
        listener: ctx.name,
        client: this.remoteAddr.hostname,
      });
      this.#answerAndClose(408, "request header read timed out");
      return;
    }
    this.close();
  }

  /** The server drains: a connection waiting for its next request closes now. */
  drainIdle(): boolean {
    if (this.#inRequest || this.start < this.end) return false;
    this.close();
    return true;
  }

  /** Closes the connection; a request being handled sees its signal abort. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#disarm();
    try {
      this.conn.close();
    } catch {
      // already closed
    }
    if (this.#inRequest) this.#controller?.abort(new Error("The client connection closed"));
  }

  #arm(kind: number, ms: number): void {
    this.#kind = kind;
    this.deadline = ms > 0 ? Date.now() + ms : Infinity;
  }

  #disarm(): void {
    this.#kind = NONE;
    this.deadline = Infinity;
  }

  /** Answers a request the server refuses, then closes. */
  async #answerAndClose(status: number, message: string): Promise<void> {
    const text = `${message}\n`;
    const bytes = encoder.encode(
      `HTTP/1.1 ${status} ${reasonPhrase(status)}\r\ncontent-type: text/plain\r\n` +
        `content-length: ${text.length}\r\nconnection: close\r\n\r\n${text}`,
    );
    try {
      await this.writeAll(bytes);
    } catch {
      // the client is gone
    }
    this.close();
  }
}

/**
 * 414 for a request line past {@linkcode MAX_REQUEST_LINE}, 431 for a head past `limit` or
 * header fields past `maxHeaderBytes` (the listener's `max_header_bytes`, checked here so
 * the lifecycle need not walk the fields again).
 */
function checkHeadSize(
  buf: Uint8Array,
  start: number,
  end: number,
  limit: number,
  maxHeaderBytes: number,
): void {
  const lf = buf.indexOf(LF, start);
  if (lf === -1 || lf >= end || lf - start > MAX_REQUEST_LINE) {
    throw new BadRequestError(414, "the request line is too long");
  }
  if (end - start > limit || end - (lf + 1) - 2 > maxHeaderBytes) {
    throw new BadRequestError(431, "the request head is too large");
  }
}

const INTERNAL_ERROR = encoder.encode("internal error\n");

function ignore(): void {}

function cancelBody(response: StreamResponse): void {
  if (response.body instanceof ReadableStream) response.body.cancel().catch(ignore);
}
