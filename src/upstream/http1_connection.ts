/**
 * One HTTP/1.1 connection to an upstream: the socket with a reusable read buffer and a
 * reusable write buffer. Only `read`, `write`, `close`, `ref` and `unref` of `Deno.Conn`
 * are used, so a `Deno.TlsConn` works the same.
 *
 * Between exchanges the connection is watched: {@linkcode Http1Connection.watch} starts
 * the read that the next exchange's {@linkcode Http1Connection.fill} takes over for its
 * response head. That read is one the next response needs anyway, so watching costs no
 * extra promise per request. When it completes while no exchange owns the connection
 * (stray bytes, EOF or an error while idle), the owner is told to drop the connection.
 *
 * @module
 */

const INITIAL_READ_BUFFER = 16 * 1024;
/** The read buffer grows up to this for long heads and trailer blocks, never beyond. */
const MAX_READ_BUFFER = 128 * 1024;
const INITIAL_WRITE_BUFFER = 4 * 1024;
/** Bodies and chunks up to this size are copied behind their head and sent in one write. */
const MAX_COALESCED = 64 * 1024;

import { encodeLatin1Into } from "../http1/latin1.ts";

const encoder = new TextEncoder();

/** What a connection's current exchange tells its pool when it ends. */
export interface ConnectionOwner {
  /** `host:port` of the upstream, for error messages. */
  readonly label: string;
  /** The exchange ended cleanly and the connection may carry another request. */
  release(conn: Http1Connection): void;
  /** The connection must not be reused: close it and free its slot. */
  discard(conn: Http1Connection): void;
  /**
   * The watched read of an idle connection completed: the upstream sent bytes nobody
   * asked for, closed the connection or reset it. The connection must be dropped.
   */
  idleEnded(conn: Http1Connection): void;
}

/** A socket to an upstream with its buffers and counters. */
export class Http1Connection {
  /** The socket. */
  readonly conn: Deno.Conn;
  /** Read buffer; bytes `[start, end)` are received and not yet consumed. */
  buf: Uint8Array = new Uint8Array(INITIAL_READ_BUFFER);
  /** First unconsumed byte in {@linkcode buf}. */
  start = 0;
  /** One past the last received byte in {@linkcode buf}. */
  end = 0;
  /** Requests written on this connection, the current one included. */
  requests = 0;
  /** When the connection last became idle (`Date.now()`). */
  idleSince = 0;
  /** When the idle connection must be closed (`Date.now()` scale); Infinity for never. */
  expiresAt = Infinity;
  /**
   * Set by the owner while the connection sits idle, cleared when an exchange takes it.
   * A watched read that completes while this is set ends the connection.
   */
  idle = false;
  /** The last response's `Keep-Alive: timeout=N` in ms, or -1 when it gave none. */
  keepAliveTimeoutMs = -1;
  #owner: ConnectionOwner | null;
  #wbuf: Uint8Array = new Uint8Array(INITIAL_WRITE_BUFFER);
  #closed = false;
  /** The watched read, until an exchange's {@linkcode fill} takes it over. */
  #watched: Promise<number> | null = null;
  /** Why the watched read failed; thrown by the {@linkcode fill} that takes it over. */
  #watchError: unknown = undefined;
  /** {@linkcode requests} when the watched read started. */
  #watchedAt = 0;

  /**
   * Wraps a connected socket.
   *
   * @param conn the socket
   * @param owner told when a watched idle connection ends; none means never watched
   */
  constructor(conn: Deno.Conn, owner: ConnectionOwner | null = null) {
    this.conn = conn;
    this.#owner = owner;
  }

  /** Whether {@linkcode close} was called. */
  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Starts watching the connection between exchanges: one read into the empty buffer,
   * which the next exchange's {@linkcode fill} takes over. The read buffer must be
   * empty (`start === end`). Does nothing when a watched read is already pending.
   */
  watch(): void {
    if (this.#watched !== null || this.#closed) return;
    this.start = this.end = 0;
    this.#watchedAt = this.requests;
    this.#watched = this.#watchRead();
  }

  /**
   * Marks the watched connection idle: a completion of its read now ends it, and the
   * read no longer keeps the process alive.
   */
  park(): void {
    this.idle = true;
    this.conn.unref();
  }

  /** An exchange takes the idle connection: its watched read is the exchange's now. */
  take(): void {
    this.idle = false;
    this.conn.ref();
  }

  async #watchRead(): Promise<number> {
    let n: number | null;
    try {
      n = await this.conn.read(this.buf);
    } catch (err) {
      // Kept for the exchange that takes the read over, and never a rejected promise
      // left without a handler while the connection is idle.
      this.#watchError = err;
      n = -1;
    }
    if (this.idle) {
      // stray bytes, EOF or a reset while idle: the connection is not clean any more
      this.#watched = null;
      this.#owner?.idleEnded(this);
      return 0;
    }
    if (this.requests === this.#watchedAt) {
      // Taken by an exchange that has not written its request yet, so whatever came is
      // not its response (bytes the upstream had sent before the connection was freed).
      this.close();
      this.#watchError ??= new Error("The upstream sent bytes before the request was written");
      return -1;
    }
    if (n === null || n < 0) return n === null ? 0 : -1;
    this.end += n;
    return n;
  }

  /**
   * Reads more bytes into the read buffer, compacting or growing it first if needed.
   * The first call after {@linkcode watch} takes over the watched read, whose promise
   * never rejects: it gives -1 on failure, and {@linkcode takeReadError} the reason.
   *
   * @returns how many bytes arrived; 0 at end of stream; -1 when a watched read failed
   */
  fill(): Promise<number> {
    const watched = this.#watched;
    if (watched === null) return this.#fill();
    this.#watched = null;
    return watched;
  }

  /** Why the watched read failed, after {@linkcode fill} gave -1. */
  takeReadError(): unknown {
    const err = this.#watchError;
    this.#watchError = undefined;
    return err;
  }

  async #fill(): Promise<number> {
    if (this.start === this.end) {
      this.start = this.end = 0;
    } else if (this.start > 0 && this.buf.length - this.end < 4096) {
      this.buf.copyWithin(0, this.start, this.end);
      this.end -= this.start;
      this.start = 0;
    }
    if (this.end === this.buf.length) {
      if (this.buf.length >= MAX_READ_BUFFER) {
        throw new RangeError(`Read buffer is full at ${MAX_READ_BUFFER} bytes`);
      }
      const bigger = new Uint8Array(this.buf.length * 2);
      bigger.set(this.buf.subarray(this.start, this.end));
      this.end -= this.start;
      this.start = 0;
      this.buf = bigger;
    }
    const n = await this.conn.read(this.buf.subarray(this.end));
    if (n === null || n < 0) return n === null ? 0 : -1;
    this.end += n;
    return n;
  }

  /**
   * Writes a request head and, when given, a body in as few writes as possible.
   *
   * The head is written as Latin-1, one byte per char: header values hold the bytes
   * they were read as (obs-text 0x80-0xFF included), so they reach the upstream
   * unchanged. Only a head with a char above 0xFF (a path a filter set; `Headers` holds
   * bytes only) has no Latin-1 form, and is written as UTF-8.
   *
   * @param head the head text
   * @param body bytes to send right after the head, or null
   */
  writeHead(head: string, body: Uint8Array | null): Promise<void> {
    const bodyLength = body === null ? 0 : body.length;
    const coalesced = bodyLength <= MAX_COALESCED ? bodyLength : 0;
    this.#reserve(head.length + coalesced);
    let written = encodeLatin1Into(head, this.#wbuf, 0);
    if (written < 0) {
      // A UTF-16 code unit encodes to at most 3 bytes.
      this.#reserve(head.length * 3 + coalesced);
      written = encoder.encodeInto(head, this.#wbuf).written;
    }
    const wbuf = this.#wbuf;
    if (body === null || bodyLength === 0) return this.write(wbuf.subarray(0, written));
    if (bodyLength <= MAX_COALESCED) {
      wbuf.set(body, written);
      return this.write(wbuf.subarray(0, written + bodyLength));
    }
    return this.#writeTwo(wbuf.subarray(0, written), body);
  }

  /** Makes the write buffer hold at least `size` bytes. */
  #reserve(size: number): void {
    if (this.#wbuf.length < size) {
      this.#wbuf = new Uint8Array(Math.max(size, this.#wbuf.length * 2));
    }
  }

  /**
   * Writes one chunk of a chunked body. The CRLF that ends the previous chunk's data
   * is sent in front of this chunk's size, which saves a write per chunk.
   *
   * @param data the chunk's bytes, not empty
   * @param first whether no chunk was written before
   */
  writeChunk(data: Uint8Array, first: boolean): Promise<void> {
    const prefix = (first ? "" : "\r\n") + data.length.toString(16) + "\r\n";
    const copy = data.length <= MAX_COALESCED;
    const size = prefix.length + (copy ? data.length : 0);
    if (this.#wbuf.length < size) {
      this.#wbuf = new Uint8Array(Math.max(size, this.#wbuf.length * 2));
    }
    const wbuf = this.#wbuf;
    const written = encoder.encodeInto(prefix, wbuf).written;
    if (!copy) return this.#writeTwo(wbuf.subarray(0, written), data);
    wbuf.set(data, written);
    return this.write(wbuf.subarray(0, written + data.length));
  }

  /**
   * Ends a chunked body with the last chunk and no trailers.
   *
   * @param first whether no chunk was written before
   */
  writeLastChunk(first: boolean): Promise<void> {
    return this.write(first ? LAST_CHUNK.subarray(2) : LAST_CHUNK);
  }

  /** Writes all of `bytes`. */
  async write(bytes: Uint8Array): Promise<void> {
    let offset = await this.conn.write(bytes);
    while (offset < bytes.length) offset += await this.conn.write(bytes.subarray(offset));
  }

  async #writeTwo(first: Uint8Array, second: Uint8Array): Promise<void> {
    await this.write(first);
    await this.write(second);
  }

  /** Closes the socket; pending reads and writes fail. Safe to call twice. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.idle = false;
    try {
      this.conn.close();
    } catch {
      // already closed by the runtime
    }
  }
}

/** CRLF ending the last data chunk, the zero-size chunk and the empty trailer block. */
const LAST_CHUNK = encoder.encode("\r\n0\r\n\r\n");
