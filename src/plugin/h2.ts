/**
 * A small HTTP/2 client connection (RFC 9113) over `Deno.connect`, for unary gRPC calls
 * to a local plugin: a client that opens streams, sends one header block and a body,
 * and reads the answer's header blocks and data.
 *
 * It is written for the plugin path rather than taken from `node:http2` because on
 * Deno 2.9.6 `node:http2` costs about 200 µs of CPU per call (one socket write per
 * frame batch of each stream, layers of stream objects); here the frames of every call
 * made in one turn of the event loop go out in one write, and a read parses every frame
 * that arrived.
 *
 * What it does: the connection preface and SETTINGS (push off, large windows), HPACK
 * (./hpack.ts), flow control both ways, CONTINUATION, PING answers, RST_STREAM both
 * ways, GOAWAY (streams above the last id are reported as refused), the peer's
 * MAX_CONCURRENT_STREAMS (further streams wait for a free slot) and MAX_FRAME_SIZE.
 * What it leaves out, as a client of one gRPC server: server push (refused in the
 * settings), priorities (ignored), TLS.
 *
 * @module
 */

import { type HeaderField, HpackDecoder, HpackError } from "./hpack.ts";

/** HTTP/2 error codes. */
export const H2Error = {
  NO_ERROR: 0x0,
  PROTOCOL_ERROR: 0x1,
  INTERNAL_ERROR: 0x2,
  FLOW_CONTROL_ERROR: 0x3,
  FRAME_SIZE_ERROR: 0x6,
  REFUSED_STREAM: 0x7,
  CANCEL: 0x8,
  COMPRESSION_ERROR: 0x9,
  ENHANCE_YOUR_CALM: 0xb,
  INADEQUATE_SECURITY: 0xc,
} as const;

const DATA = 0x0;
const HEADERS = 0x1;
const RST_STREAM = 0x3;
const SETTINGS = 0x4;
const PUSH_PROMISE = 0x5;
const PING = 0x6;
const GOAWAY = 0x7;
const WINDOW_UPDATE = 0x8;
const CONTINUATION = 0x9;

const END_STREAM = 0x1;
const ACK = 0x1;
const END_HEADERS = 0x4;
const PADDED = 0x8;
const PRIORITY = 0x20;

const PREFACE = new TextEncoder().encode("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
/** The largest frame we accept: the protocol's default, which we do not raise. */
const MAX_FRAME_IN = 16384;
/** The stream window we give the peer (SETTINGS_INITIAL_WINDOW_SIZE). */
const STREAM_WINDOW = 16 * 1024 * 1024;
/** The connection window we give the peer. */
const CONNECTION_WINDOW = 256 * 1024 * 1024;
/** The largest header block we accept (after CONTINUATION). */
const MAX_HEADER_BLOCK = 256 * 1024;

/** Where to connect. */
export type H2Target =
  | { transport: "tcp"; hostname: string; port: number }
  | { transport: "unix"; path: string };

/** What the connection tells a stream's owner. */
export interface StreamHandler {
  /** A complete header block (response headers or trailers). */
  onHeaders(fields: HeaderField[], endStream: boolean): void;
  /** Body bytes (a copy the handler may keep). */
  onData(data: Uint8Array, endStream: boolean): void;
  /** The peer reset the stream with `code`. */
  onReset(code: number): void;
  /**
   * The stream is gone without an answer: the connection failed or closed, or the peer's
   * GOAWAY refused it (`refused`: the peer did not process it).
   */
  onLost(error: Error, refused: boolean): void;
}

/** Raised when the connection fails; `code` is the HTTP/2 error code when one applies. */
export class H2ConnectionError extends Error {
  /** Creates the error. */
  constructor(message: string, readonly code: number = H2Error.INTERNAL_ERROR, options?: {
    cause?: unknown;
  }) {
    super(message, options);
    this.name = "H2ConnectionError";
  }
}

interface Stream {
  id: number;
  handler: StreamHandler;
  /** What we may still send before the peer's next WINDOW_UPDATE. */
  sendWindow: number;
  /** Bytes of the body not sent yet. */
  body: Uint8Array;
  sent: number;
  /** Received bytes not yet returned to the peer's window. */
  unacked: number;
  /** The peer ended its side. */
  remoteDone: boolean;
}

interface Waiting {
  block: Uint8Array;
  body: Uint8Array;
  handler: StreamHandler;
  stream: { id: number; cancelled: boolean };
}

/** One HTTP/2 connection to a server. */
export class H2Connection {
  #conn: Deno.Conn | undefined;
  readonly #connecting: Promise<Deno.Conn>;
  readonly #streams = new Map<number, Stream>();
  readonly #waiting: Waiting[] = [];
  readonly #blocked = new Set<Stream>();
  readonly #decoder = new HpackDecoder();
  #nextId = 1;
  #dead = false;
  #closing = false;
  #goaway = false;
  #error: Error | undefined;
  // Peer settings.
  #peerMaxStreams = Infinity;
  #peerInitialWindow = 65535;
  #peerMaxFrame = 16384;
  #connSendWindow = 65535;
  #connUnacked = 0;
  // Header block being continued.
  #contId = 0;
  #contEnd = false;
  #contChunks: Uint8Array[] = [];
  #contBytes = 0;
  // Output: frames are appended to #out while #flushing writes the previous batch.
  #out: Uint8Array = new Uint8Array(16384);
  #outLen = 0;
  #spare: Uint8Array = new Uint8Array(16384);
  #flushing = false;
  #settingsSeen = false;
  #readyResolve!: () => void;
  #readyReject!: (err: Error) => void;
  /** Resolves when the server's first SETTINGS arrived; rejects when the connection fails first. */
  readonly ready: Promise<void>;
  /** Called once, when the connection is gone (failed or closed). */
  onClose: ((conn: H2Connection) => void) | undefined;

  /** Starts connecting; streams may be opened at once (they wait for the socket). */
  constructor(target: H2Target) {
    this.ready = new Promise<void>((resolve, reject) => {
      this.#readyResolve = resolve;
      this.#readyReject = reject;
    });
    this.ready.catch(() => {});
    this.#connecting = target.transport === "unix"
      ? Deno.connect({ transport: "unix", path: target.path })
      : Deno.connect({ hostname: target.hostname, port: target.port }).then((c) => {
        c.setNoDelay(true);
        return c;
      });
    // The preface and our settings go first.
    this.#put(PREFACE);
    this.#frame(SETTINGS, 0, 0, 18, (b, p) => {
      setting(b, p, 0x2, 0); // ENABLE_PUSH
      setting(b, p + 6, 0x4, STREAM_WINDOW); // INITIAL_WINDOW_SIZE
      setting(b, p + 12, 0x3, 1000); // MAX_CONCURRENT_STREAMS (for pushes; none)
    });
    this.#windowUpdate(0, CONNECTION_WINDOW - 65535);
    this.#connecting.then((conn) => {
      if (this.#dead) {
        conn.close();
        return;
      }
      this.#conn = conn;
      void this.#readLoop(conn);
      this.#schedule();
    }, (err) =>
      this.#fail(
        new H2ConnectionError(`cannot connect: ${err.message}`, undefined, {
          cause: err,
        }),
      ));
  }

  /** Streams open or waiting for a slot. */
  get active(): number {
    return this.#streams.size + this.#waiting.length;
  }

  /** False once the connection failed, is closing or got GOAWAY: open no new streams. */
  get usable(): boolean {
    return !this.#dead && !this.#closing && !this.#goaway;
  }

  /** The peer's MAX_CONCURRENT_STREAMS. */
  get streamLimit(): number {
    return this.#peerMaxStreams;
  }

  /** Why the connection failed, if it did. */
  get error(): Error | undefined {
    return this.#error;
  }

  /**
   * Opens a stream: sends the header block, then `body` with END_STREAM.
   *
   * @param block An HPACK header block.
   * @param body The request body (may be empty).
   * @param handler Told about the answer.
   * @returns A handle for {@linkcode H2Connection.cancel}.
   */
  request(block: Uint8Array, body: Uint8Array, handler: StreamHandler): {
    id: number;
    cancelled: boolean;
  } {
    const handle = { id: 0, cancelled: false };
    if (!this.usable) {
      const err = this.#error ?? new H2ConnectionError("the connection is closing");
      queueMicrotask(() => handler.onLost(err, true));
      return handle;
    }
    if (this.#streams.size >= this.#peerMaxStreams) {
      this.#waiting.push({ block, body, handler, stream: handle });
      return handle;
    }
    this.#open(block, body, handler, handle);
    return handle;
  }

  /** Resets a stream (RST_STREAM CANCEL); its handler hears nothing more. */
  cancel(handle: { id: number; cancelled: boolean }): void {
    if (handle.cancelled) return;
    handle.cancelled = true;
    if (handle.id === 0) {
      const i = this.#waiting.findIndex((w) => w.stream === handle);
      if (i !== -1) this.#waiting.splice(i, 1);
      return;
    }
    const stream = this.#streams.get(handle.id);
    if (stream === undefined) return;
    this.#frame(RST_STREAM, 0, handle.id, 4, (b, p) => u32(b, p, H2Error.CANCEL));
    this.#remove(stream);
  }

  /** Closes gracefully: GOAWAY now, the socket once open streams finished. */
  close(): void {
    if (this.#dead || this.#closing) return;
    this.#closing = true;
    this.#frame(GOAWAY, 0, 0, 8, (b, p) => {
      u32(b, p, 0);
      u32(b, p + 4, H2Error.NO_ERROR);
    });
    for (const w of this.#waiting.splice(0)) {
      w.handler.onLost(new H2ConnectionError("the connection is closing"), true);
    }
    this.#maybeFinish();
  }

  /** Closes at once; open streams are lost. */
  destroy(error?: Error): void {
    this.#fail(error ?? new H2ConnectionError("the connection was closed"));
  }

  #open(
    block: Uint8Array,
    body: Uint8Array,
    handler: StreamHandler,
    handle: { id: number; cancelled: boolean },
  ): void {
    const id = this.#nextId;
    this.#nextId += 2;
    if (this.#nextId > 0x7fffffff) this.#goaway = true; // ids run out: use a new connection
    handle.id = id;
    const stream: Stream = {
      id,
      handler,
      sendWindow: this.#peerInitialWindow,
      body,
      sent: 0,
      unacked: 0,
      remoteDone: false,
    };
    this.#streams.set(id, stream);
    // HEADERS, and CONTINUATION when the block is larger than a frame.
    const max = this.#peerMaxFrame;
    const noBody = body.length === 0;
    if (block.length <= max) {
      const flags = END_HEADERS | (noBody ? END_STREAM : 0);
      this.#frame(HEADERS, flags, id, block.length, (b, p) => b.set(block, p));
    } else {
      for (let off = 0; off < block.length; off += max) {
        const part = block.subarray(off, off + max);
        const last = off + max >= block.length;
        const type = off === 0 ? HEADERS : CONTINUATION;
        const flags = (last ? END_HEADERS : 0) | (off === 0 && noBody ? END_STREAM : 0);
        this.#frame(type, flags, id, part.length, (b, p) => b.set(part, p));
      }
    }
    if (!noBody) this.#sendBody(stream);
  }

  /** Sends as much of a stream's body as the windows allow. */
  #sendBody(stream: Stream): void {
    const body = stream.body;
    while (stream.sent < body.length) {
      const n = Math.min(
        body.length - stream.sent,
        stream.sendWindow,
        this.#connSendWindow,
        this.#peerMaxFrame,
      );
      if (n <= 0) {
        this.#blocked.add(stream);
        return;
      }
      const start = stream.sent;
      stream.sent += n;
      stream.sendWindow -= n;
      this.#connSendWindow -= n;
      const flags = stream.sent === body.length ? END_STREAM : 0;
      this.#frame(DATA, flags, stream.id, n, (b, p) => b.set(body.subarray(start, start + n), p));
    }
    this.#blocked.delete(stream);
  }

  #remove(stream: Stream): void {
    if (this.#streams.get(stream.id) !== stream) return;
    this.#streams.delete(stream.id);
    this.#blocked.delete(stream);
    // A slot opened: start a waiting stream.
    while (
      this.#waiting.length > 0 && this.#streams.size < this.#peerMaxStreams && this.usable
    ) {
      const w = this.#waiting.shift()!;
      this.#open(w.block, w.body, w.handler, w.stream);
    }
    this.#maybeFinish();
  }

  #maybeFinish(): void {
    if ((this.#closing || this.#goaway) && this.#streams.size === 0 && !this.#dead) {
      // Let the last frames (GOAWAY, RST_STREAM) go out, then close.
      this.#dead = true;
      const conn = this.#conn;
      const done = () => {
        try {
          conn?.close();
        } catch {
          // Already closed.
        }
        this.#readyReject(new H2ConnectionError("the connection was closed"));
        this.onClose?.(this);
      };
      if (this.#flushing || this.#outLen > 0) void this.#drainThen(done);
      else done();
    }
  }

  async #drainThen(done: () => void): Promise<void> {
    // #flush goes on while there is output; wait for it to finish.
    while (this.#conn !== undefined && (this.#flushing || this.#outLen > 0)) {
      this.#schedule();
      await new Promise((r) => setTimeout(r, 1));
    }
    done();
  }

  #fail(error: Error): void {
    if (this.#dead && this.#error !== undefined) return;
    const wasDead = this.#dead;
    this.#dead = true;
    this.#error = error;
    this.#readyReject(error);
    try {
      this.#conn?.close();
    } catch {
      // Already closed.
    }
    const streams = [...this.#streams.values()];
    this.#streams.clear();
    this.#blocked.clear();
    const waiting = this.#waiting.splice(0);
    for (const s of streams) s.handler.onLost(error, false);
    for (const w of waiting) w.handler.onLost(error, true);
    if (!wasDead) this.onClose?.(this);
  }

  // --- output ---

  /** Room for `n` more bytes in the output buffer. */
  #reserve(n: number): number {
    if (this.#outLen + n > this.#out.length) {
      let size = this.#out.length * 2;
      while (size < this.#outLen + n) size *= 2;
      const bigger = new Uint8Array(size);
      bigger.set(this.#out.subarray(0, this.#outLen));
      this.#out = bigger;
    }
    const at = this.#outLen;
    this.#outLen += n;
    return at;
  }

  #put(bytes: Uint8Array): void {
    const at = this.#reserve(bytes.length);
    this.#out.set(bytes, at);
    this.#schedule();
  }

  #frame(
    type: number,
    flags: number,
    id: number,
    length: number,
    fill: (buf: Uint8Array, at: number) => void,
  ): void {
    if (this.#dead) return;
    const at = this.#reserve(9 + length);
    const b = this.#out;
    b[at] = length >>> 16;
    b[at + 1] = (length >>> 8) & 0xff;
    b[at + 2] = length & 0xff;
    b[at + 3] = type;
    b[at + 4] = flags;
    u32(b, at + 5, id);
    if (length > 0) fill(b, at + 9);
    this.#schedule();
  }

  #windowUpdate(id: number, increment: number): void {
    this.#frame(WINDOW_UPDATE, 0, id, 4, (b, p) => u32(b, p, increment));
  }

  /** Starts a write of what is queued, unless one is under way (it takes the rest). */
  #schedule(): void {
    if (this.#flushing || this.#conn === undefined || this.#outLen === 0) return;
    this.#flushing = true;
    // Every frame queued in this turn goes out in one write.
    queueMicrotask(() => void this.#flush());
  }

  async #flush(): Promise<void> {
    const conn = this.#conn!;
    try {
      while (this.#outLen > 0) {
        const out = this.#out;
        const len = this.#outLen;
        this.#out = this.#spare;
        this.#outLen = 0;
        let off = 0;
        while (off < len) off += await conn.write(out.subarray(off, len));
        this.#spare = out;
      }
    } catch (err) {
      this.#outLen = 0;
      this.#fail(
        new H2ConnectionError(`write failed: ${(err as Error).message}`, undefined, {
          cause: err,
        }),
      );
    } finally {
      this.#flushing = false;
    }
  }

  // --- input ---

  async #readLoop(conn: Deno.Conn): Promise<void> {
    let buf = new Uint8Array(64 * 1024);
    let start = 0;
    let end = 0;
    try {
      while (!this.#dead) {
        if (buf.length - end < 9 + MAX_FRAME_IN) {
          if (start > 0) {
            buf.copyWithin(0, start, end);
            end -= start;
            start = 0;
          } else {
            const bigger = new Uint8Array(buf.length * 2);
            bigger.set(buf.subarray(0, end));
            buf = bigger;
          }
        }
        const n = await conn.read(buf.subarray(end));
        if (n === null) {
          this.#fail(new H2ConnectionError("the server closed the connection"));
          return;
        }
        end += n;
        while (end - start >= 9 && !this.#dead) {
          const length = (buf[start] << 16) | (buf[start + 1] << 8) | buf[start + 2];
          if (length > MAX_FRAME_IN) {
            throw new H2ConnectionError(`frame of ${length} bytes`, H2Error.FRAME_SIZE_ERROR);
          }
          if (end - start < 9 + length) break;
          const type = buf[start + 3];
          const flags = buf[start + 4];
          const id = readU32(buf, start + 5) & 0x7fffffff;
          this.#onFrame(type, flags, id, buf, start + 9, start + 9 + length);
          start += 9 + length;
        }
        if (start === end) start = end = 0;
      }
    } catch (err) {
      if (this.#dead) return; // closed by us
      const code = err instanceof H2ConnectionError
        ? err.code
        : err instanceof HpackError
        ? H2Error.COMPRESSION_ERROR
        : H2Error.INTERNAL_ERROR;
      if (code !== H2Error.INTERNAL_ERROR || err instanceof H2ConnectionError) {
        // Tell the peer why before going.
        this.#frame(GOAWAY, 0, 0, 8, (b, p) => {
          u32(b, p, 0);
          u32(b, p + 4, code);
        });
      }
      const message = (err as Error).message;
      this.#fail(
        err instanceof H2ConnectionError
          ? err
          : new H2ConnectionError(`connection failed: ${message}`, code, { cause: err }),
      );
    }
  }

  #onFrame(
    type: number,
    flags: number,
    id: number,
    buf: Uint8Array,
    start: number,
    end: number,
  ): void {
    if (this.#contId !== 0 && type !== CONTINUATION) {
      throw new H2ConnectionError("a frame inside a header block", H2Error.PROTOCOL_ERROR);
    }
    switch (type) {
      case DATA:
        return this.#onData(flags, id, buf, start, end);
      case HEADERS: {
        if (id === 0) throw new H2ConnectionError("HEADERS on stream 0", H2Error.PROTOCOL_ERROR);
        let p = start;
        let e = end;
        if (flags & PADDED) {
          const pad = buf[p++];
          e -= pad;
        }
        if (flags & PRIORITY) p += 5;
        if (p > e) throw new H2ConnectionError("bad HEADERS padding", H2Error.PROTOCOL_ERROR);
        const fragment = buf.subarray(p, e);
        if (flags & END_HEADERS) {
          this.#onHeaderBlock(id, fragment, (flags & END_STREAM) !== 0);
        } else {
          this.#contId = id;
          this.#contEnd = (flags & END_STREAM) !== 0;
          this.#contChunks = [fragment.slice()];
          this.#contBytes = fragment.length;
        }
        return;
      }
      case CONTINUATION: {
        if (this.#contId === 0 || id !== this.#contId) {
          throw new H2ConnectionError("unexpected CONTINUATION", H2Error.PROTOCOL_ERROR);
        }
        this.#contBytes += end - start;
        if (this.#contBytes > MAX_HEADER_BLOCK) {
          throw new H2ConnectionError("header block too large", H2Error.ENHANCE_YOUR_CALM);
        }
        this.#contChunks.push(buf.slice(start, end));
        if (flags & END_HEADERS) {
          const block = new Uint8Array(this.#contBytes);
          let off = 0;
          for (const c of this.#contChunks) {
            block.set(c, off);
            off += c.length;
          }
          const streamId = this.#contId;
          this.#contId = 0;
          this.#contChunks = [];
          this.#onHeaderBlock(streamId, block, this.#contEnd);
        }
        return;
      }
      case RST_STREAM: {
        if (end - start !== 4) {
          throw new H2ConnectionError("RST_STREAM of bad size", H2Error.FRAME_SIZE_ERROR);
        }
        const stream = this.#streams.get(id);
        if (stream === undefined) return;
        this.#remove(stream);
        stream.handler.onReset(readU32(buf, start));
        return;
      }
      case SETTINGS:
        return this.#onSettings(flags, buf, start, end);
      case PING:
        // Acked at once. (Holding the ack for the next frames saves a write per call
        // against grpc-go servers, which ping on every burst of data to size their
        // windows, but its timer cost the proxy more CPU than the write.)
        if (!(flags & ACK)) {
          const payload = buf.slice(start, end);
          this.#frame(PING, ACK, 0, 8, (b, p) => b.set(payload, p));
        }
        return;
      case GOAWAY: {
        const last = readU32(buf, start) & 0x7fffffff;
        const code = readU32(buf, start + 4);
        this.#goaway = true;
        const why = new H2ConnectionError(`the server sent GOAWAY (code ${code})`, code);
        for (const stream of [...this.#streams.values()]) {
          if (stream.id > last) {
            this.#streams.delete(stream.id);
            this.#blocked.delete(stream);
            stream.handler.onLost(why, true);
          }
        }
        for (const w of this.#waiting.splice(0)) w.handler.onLost(why, true);
        this.#maybeFinish();
        return;
      }
      case WINDOW_UPDATE: {
        const increment = readU32(buf, start) & 0x7fffffff;
        if (id === 0) {
          this.#connSendWindow += increment;
          for (const stream of [...this.#blocked]) this.#sendBody(stream);
        } else {
          const stream = this.#streams.get(id);
          if (stream === undefined) return;
          stream.sendWindow += increment;
          this.#sendBody(stream);
        }
        return;
      }
      case PUSH_PROMISE:
        throw new H2ConnectionError("PUSH_PROMISE, which we disabled", H2Error.PROTOCOL_ERROR);
      default:
        // PRIORITY and unknown frame types are ignored.
        return;
    }
  }

  #onHeaderBlock(id: number, block: Uint8Array, endStream: boolean): void {
    // Decoded even for a stream we dropped: the HPACK table must stay in step.
    const fields = this.#decoder.decode(block);
    const stream = this.#streams.get(id);
    if (stream === undefined) return;
    if (endStream) this.#remoteDone(stream);
    stream.handler.onHeaders(fields, endStream);
  }

  #onData(flags: number, id: number, buf: Uint8Array, start: number, end: number): void {
    const length = end - start;
    let p = start;
    let e = end;
    if (flags & PADDED) {
      const pad = buf[p++];
      e -= pad;
      if (p > e) throw new H2ConnectionError("bad DATA padding", H2Error.PROTOCOL_ERROR);
    }
    // The whole frame counts against the windows, padding included.
    this.#connUnacked += length;
    if (this.#connUnacked >= CONNECTION_WINDOW / 2) {
      this.#windowUpdate(0, this.#connUnacked);
      this.#connUnacked = 0;
    }
    const stream = this.#streams.get(id);
    if (stream === undefined) return;
    const endStream = (flags & END_STREAM) !== 0;
    stream.unacked += length;
    if (!endStream && stream.unacked >= STREAM_WINDOW / 2) {
      this.#windowUpdate(id, stream.unacked);
      stream.unacked = 0;
    }
    if (endStream) this.#remoteDone(stream);
    stream.handler.onData(buf.slice(p, e), endStream);
  }

  /** The peer ended its side: the stream is done (a body we still send is cut). */
  #remoteDone(stream: Stream): void {
    stream.remoteDone = true;
    if (stream.sent < stream.body.length) {
      this.#frame(RST_STREAM, 0, stream.id, 4, (b, p) => u32(b, p, H2Error.NO_ERROR));
    }
    this.#remove(stream);
  }

  #onSettings(flags: number, buf: Uint8Array, start: number, end: number): void {
    if (flags & ACK) return;
    if ((end - start) % 6 !== 0) {
      throw new H2ConnectionError("SETTINGS of bad size", H2Error.FRAME_SIZE_ERROR);
    }
    for (let p = start; p < end; p += 6) {
      const key = (buf[p] << 8) | buf[p + 1];
      const value = readU32(buf, p + 2);
      switch (key) {
        case 0x3:
          this.#peerMaxStreams = value;
          break;
        case 0x4: {
          if (value > 0x7fffffff) {
            throw new H2ConnectionError("window too large", H2Error.FLOW_CONTROL_ERROR);
          }
          const delta = value - this.#peerInitialWindow;
          this.#peerInitialWindow = value;
          for (const stream of this.#streams.values()) stream.sendWindow += delta;
          break;
        }
        case 0x5:
          if (value < 16384 || value > 16777215) {
            throw new H2ConnectionError("bad MAX_FRAME_SIZE", H2Error.PROTOCOL_ERROR);
          }
          this.#peerMaxFrame = value;
          break;
      }
    }
    this.#frame(SETTINGS, ACK, 0, 0, () => {});
    for (const stream of [...this.#blocked]) this.#sendBody(stream);
    if (!this.#settingsSeen) {
      this.#settingsSeen = true;
      this.#readyResolve();
    }
    // A lower stream limit leaves streams waiting; a higher one starts them.
    while (this.#waiting.length > 0 && this.#streams.size < this.#peerMaxStreams) {
      const w = this.#waiting.shift()!;
      this.#open(w.block, w.body, w.handler, w.stream);
    }
  }
}

function u32(b: Uint8Array, p: number, v: number): void {
  b[p] = v >>> 24;
  b[p + 1] = (v >>> 16) & 0xff;
  b[p + 2] = (v >>> 8) & 0xff;
  b[p + 3] = v & 0xff;
}

function readU32(b: Uint8Array, p: number): number {
  return ((b[p] << 24) | (b[p + 1] << 16) | (b[p + 2] << 8) | b[p + 3]) >>> 0;
}

function setting(b: Uint8Array, p: number, key: number, value: number): void {
  b[p] = key >>> 8;
  b[p + 1] = key & 0xff;
  u32(b, p + 2, value);
}
