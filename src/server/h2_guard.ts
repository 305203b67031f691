/**
 * Flood limits for HTTP/2 connections, applied where Mosaic pipes the connection to its
 * inner HTTP/2 server (h2c on plain listeners, h2 by ALPN on the TLS bridge): the pipe
 * reads the frame headers of both directions (9 bytes each, payloads are skipped, never
 * copied; the state carries across reads) and stops a client that sends what costs the
 * server much and the client nothing:
 * - PING, SETTINGS, RST_STREAM, GOAWAY and unknown frame types beyond a rate per
 *   connection (a token bucket: `controlBurst` at once, `controlPerSecond` after), as
 *   nginx's flood checks and Envoy's `max_outbound_control_frames` do (every PING and
 *   SETTINGS asks for an ACK; a reset stream is work thrown away);
 * - more consecutive HEADERS, CONTINUATION or DATA frames with an empty payload and no
 *   END_STREAM than `maxConsecutiveEmptyFrames` (Envoy's
 *   `max_consecutive_inbound_frames_with_empty_payload`, 1);
 * - more PRIORITY frames than `maxPriorityPerStream` × (1 + streams opened) (Envoy's
 *   `max_inbound_priority_frames_per_stream`, 100);
 * - more WINDOW_UPDATE frames than 1 + 2 × (streams opened + `maxWindowUpdatesPerData` ×
 *   DATA frames the server sent) (Envoy's
 *   `max_inbound_window_update_frames_per_data_frame_sent`, 10);
 * - a frame longer than `maxFrameSize` (16384: the inner server advertises no larger
 *   SETTINGS_MAX_FRAME_SIZE, and the client's own SETTINGS do not raise it), a
 *   FRAME_SIZE_ERROR.
 *
 * The pipe then sends a GOAWAY (ENHANCE_YOUR_CALM, or FRAME_SIZE_ERROR) when the server
 * direction stands at a frame boundary, closes the connection and logs one warning.
 *
 * @module
 */

/** The limits of {@linkcode H2Guard}. */
export interface H2Limits {
  /** Control frames (PING, SETTINGS, RST_STREAM, GOAWAY, unknown types) at once. */
  controlBurst: number;
  /** Control frames per second, sustained. */
  controlPerSecond: number;
  /** Consecutive HEADERS/CONTINUATION/DATA frames with no payload and no END_STREAM. */
  maxConsecutiveEmptyFrames: number;
  /** PRIORITY frames per stream opened (plus one). */
  maxPriorityPerStream: number;
  /** WINDOW_UPDATE frames per DATA frame the server sent. */
  maxWindowUpdatesPerData: number;
  /** The largest frame payload the server accepts. */
  maxFrameSize: number;
}

/** The defaults: Envoy's ratios, and 100 control frames a second with a burst of 200. */
export const DEFAULT_H2_LIMITS: Readonly<H2Limits> = Object.freeze({
  controlBurst: 200,
  controlPerSecond: 100,
  maxConsecutiveEmptyFrames: 1,
  maxPriorityPerStream: 100,
  maxWindowUpdatesPerData: 10,
  maxFrameSize: 16_384,
});

/** Why a connection is closed. */
export interface H2Violation {
  /** The frame type that broke the limit, e.g. `PING`. */
  frameType: string;
  /** In words, for the log line. */
  reason: string;
  /** The GOAWAY error code: ENHANCE_YOUR_CALM (0xb) or FRAME_SIZE_ERROR (0x6). */
  errorCode: number;
}

/** HTTP/2 error codes the guard sends (RFC 9113 section 7). */
export const FRAME_SIZE_ERROR = 0x6;
export const ENHANCE_YOUR_CALM = 0xb;

const DATA = 0x0;
const HEADERS = 0x1;
const PRIORITY = 0x2;
const WINDOW_UPDATE = 0x8;
const CONTINUATION = 0x9;
const END_STREAM = 0x1;
const GOAWAY = 0x7;

const FRAME_NAMES = [
  "DATA",
  "HEADERS",
  "PRIORITY",
  "RST_STREAM",
  "SETTINGS",
  "PUSH_PROMISE",
  "PING",
  "GOAWAY",
  "WINDOW_UPDATE",
  "CONTINUATION",
];

/** The name of a frame type, e.g. `PING`, or `type 0x2a` for an extension frame. */
export function frameTypeName(type: number): string {
  return FRAME_NAMES[type] ?? `type 0x${type.toString(16)}`;
}

/** The client connection preface's length (`PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n`). */
const PREFACE_LENGTH = 24;
const HEADER_LENGTH = 9;

/**
 * Walks the frame headers of one direction of an HTTP/2 byte stream, read by read.
 * `frame` is called once per frame header, with the payload left unread.
 */
class FrameScanner {
  /** Bytes still to skip: the preface, then each frame's payload. */
  #skip: number;
  /** A frame header split across reads. */
  #header = new Uint8Array(HEADER_LENGTH);
  #have = 0;

  constructor(skip: number) {
    this.#skip = skip;
  }

  /** At a frame boundary: no header or payload half read. */
  get atBoundary(): boolean {
    return this.#skip === 0 && this.#have === 0;
  }

  /**
   * Scans `chunk`; stops at the first frame for which `frame` returns a violation.
   *
   * @returns That violation, or null.
   */
  scan(
    chunk: Uint8Array,
    frame: (length: number, type: number, flags: number, streamId: number) => H2Violation | null,
  ): H2Violation | null {
    const end = chunk.length;
    let i = 0;
    for (;;) {
      if (this.#skip > 0) {
        const take = Math.min(this.#skip, end - i);
        this.#skip -= take;
        i += take;
        if (this.#skip > 0) return null;
      }
      if (i >= end) return null;
      let h: Uint8Array;
      let at: number;
      if (this.#have === 0 && end - i >= HEADER_LENGTH) {
        h = chunk;
        at = i;
        i += HEADER_LENGTH;
      } else {
        const take = Math.min(HEADER_LENGTH - this.#have, end - i);
        this.#header.set(chunk.subarray(i, i + take), this.#have);
        this.#have += take;
        i += take;
        if (this.#have < HEADER_LENGTH) return null;
        this.#have = 0;
        h = this.#header;
        at = 0;
      }
      const length = (h[at] << 16) | (h[at + 1] << 8) | h[at + 2];
      const streamId = ((h[at + 5] & 0x7f) << 24 | (h[at + 6] << 16) | (h[at + 7] << 8) |
        h[at + 8]) >>> 0;
      const violation = frame(length, h[at + 3], h[at + 4], streamId);
      if (violation !== null) return violation;
      this.#skip = length;
    }
  }
}

/** The flood limits of one HTTP/2 connection: feed it both directions of the pipe. */
export class H2Guard {
  #limits: H2Limits;
  #now: () => number;
  #inbound = new FrameScanner(PREFACE_LENGTH);
  #outbound = new FrameScanner(0);
  #tokens: number;
  #refilled: number;
  #emptyInARow = 0;
  #priority = 0;
  #windowUpdates = 0;
  #streamsOpened = 0;
  #dataSent = 0;
  #lastStreamId = 0;
  #violation: H2Violation | null = null;
  readonly #onInbound = (length: number, type: number, flags: number, streamId: number) =>
    this.#inboundFrame(length, type, flags, streamId);
  readonly #onOutbound = (_length: number, type: number) => {
    if (type === DATA) this.#dataSent++;
    return null;
  };

  /**
   * @param limits The limits; the defaults are {@linkcode DEFAULT_H2_LIMITS}.
   * @param now The clock, in ms (tests pass their own).
   */
  constructor(
    limits: Partial<H2Limits> = {},
    now: () => number = performance.now.bind(performance),
  ) {
    this.#limits = { ...DEFAULT_H2_LIMITS, ...limits };
    this.#now = now;
    this.#tokens = this.#limits.controlBurst;
    this.#refilled = now();
  }

  /**
   * Client → server bytes, the client preface first (as they came, in any pieces).
   *
   * @returns The violation, once a limit is broken (and from then on), or null.
   */
  inbound(chunk: Uint8Array): H2Violation | null {
    if (this.#violation === null) this.#violation = this.#inbound.scan(chunk, this.#onInbound);
    return this.#violation;
  }

  /** Server → client bytes: counts the DATA frames the server sent. */
  outbound(chunk: Uint8Array): void {
    this.#outbound.scan(chunk, this.#onOutbound);
  }

  /** True when the server → client bytes fed so far end on a frame boundary. */
  get outboundAtBoundary(): boolean {
    return this.#outbound.atBoundary;
  }

  /** The highest stream the client opened, for a GOAWAY. */
  get lastStreamId(): number {
    return this.#lastStreamId;
  }

  #inboundFrame(length: number, type: number, flags: number, streamId: number): H2Violation | null {
    const limits = this.#limits;
    if (length > limits.maxFrameSize) {
      return {
        frameType: frameTypeName(type),
        reason: `a ${frameTypeName(type)} frame of ${length} bytes, above the max frame size ` +
          `of ${limits.maxFrameSize}`,
        errorCode: FRAME_SIZE_ERROR,
      };
    }
    switch (type) {
      case DATA:
      case HEADERS:
      case CONTINUATION:
        if (type === HEADERS && (streamId & 1) === 1 && streamId > this.#lastStreamId) {
          this.#lastStreamId = streamId;
          this.#streamsOpened++;
        }
        if (length === 0 && (flags & END_STREAM) === 0) {
          if (++this.#emptyInARow > limits.maxConsecutiveEmptyFrames) {
            return calm(
              type,
              `more than ${limits.maxConsecutiveEmptyFrames} empty frame(s) in a row`,
            );
          }
        } else {
          this.#emptyInARow = 0;
        }
        return null;
      case PRIORITY:
        if (++this.#priority > limits.maxPriorityPerStream * (1 + this.#streamsOpened)) {
          return calm(type, `more than ${limits.maxPriorityPerStream} per stream opened`);
        }
        return null;
      case WINDOW_UPDATE:
        if (
          ++this.#windowUpdates >
            1 + 2 * (this.#streamsOpened + limits.maxWindowUpdatesPerData * this.#dataSent)
        ) {
          return calm(
            type,
            `more than ${limits.maxWindowUpdatesPerData} per DATA frame sent`,
          );
        }
        return null;
      default:
        // PING, SETTINGS, RST_STREAM, GOAWAY, PUSH_PROMISE, extension frames.
        return this.#take() ? null : calm(
          type,
          `more than ${limits.controlBurst} control frames at once or ${limits.controlPerSecond}/s`,
        );
    }
  }

  /** Takes a token from the control frame bucket (refilled by the time passed). */
  #take(): boolean {
    const limits = this.#limits;
    const now = this.#now();
    this.#tokens = Math.min(
      limits.controlBurst,
      this.#tokens + (now - this.#refilled) * limits.controlPerSecond / 1000,
    );
    this.#refilled = now;
    if (this.#tokens < 1) return false;
    this.#tokens--;
    return true;
  }
}

function calm(type: number, reason: string): H2Violation {
  const name = frameTypeName(type);
  return { frameType: name, reason: `${name} flood: ${reason}`, errorCode: ENHANCE_YOUR_CALM };
}

/**
 * A GOAWAY frame (stream 0, no debug data).
 *
 * @param lastStreamId The last stream the server may have processed.
 * @param errorCode E.g. {@linkcode ENHANCE_YOUR_CALM}.
 */
export function goawayFrame(lastStreamId: number, errorCode: number): Uint8Array {
  const frame = new Uint8Array(HEADER_LENGTH + 8);
  const view = new DataView(frame.buffer);
  frame[2] = 8;
  frame[3] = GOAWAY;
  view.setUint32(HEADER_LENGTH, lastStreamId & 0x7fffffff);
  view.setUint32(HEADER_LENGTH + 4, errorCode);
  return frame;
}

/**
 * True for the error a request's handler or response body fails with when the client
 * cancelled the stream (RST_STREAM, or the connection closed mid-request): Deno aborts
 * the request's signal, and whatever reads from it fails with an `AbortError`. Not a
 * failure of the proxy, so it is no ERR line.
 */
export function isClientCancel(error: unknown): boolean {
  return typeof error === "object" && error !== null &&
    (error as { name?: unknown }).name === "AbortError";
}
