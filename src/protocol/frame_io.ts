/**
 * Frames off a connection and onto it: a reader that cuts the byte stream into whole
 * frames with the codec's `frameLength` (refusing one over the limit before buffering
 * it), and a writer that queues encoded frames and writes them in order, batched.
 *
 * @module
 */

import { type ProtocolCodec, ProtocolError } from "./api.ts";

/** A frame longer than the configured limit. */
export class FrameTooLargeError extends ProtocolError {
  /** Makes the error. */
  constructor(length: number, limit: number) {
    super(`frame of ${length} bytes is over the limit of ${limit} bytes`);
    this.name = "FrameTooLargeError";
  }
}

const READ_SIZE = 64 * 1024;

/**
 * Reads whole frames from `conn` and hands each one's bytes to `onFrame`; returns when
 * the peer closes.
 *
 * @throws {ProtocolError} when the bytes do not make frames (the caller closes the connection)
 */
export async function readFrames(
  conn: Deno.Conn,
  codec: ProtocolCodec,
  maxFrameBytes: number,
  onFrame: (bytes: Uint8Array) => void,
): Promise<void> {
  let buffer = new Uint8Array(READ_SIZE);
  let start = 0;
  let end = 0;
  for (;;) {
    if (end === buffer.length) {
      // Compact, or grow for a frame larger than the buffer (within the limit).
      const used = end - start;
      if (start > 0 && used < buffer.length / 2) {
        buffer.copyWithin(0, start, end);
      } else {
        const next = new Uint8Array(buffer.length * 2);
        next.set(buffer.subarray(start, end));
        buffer = next;
      }
      start = 0;
      end = used;
    }
    const n = await conn.read(buffer.subarray(end));
    if (n === null) {
      if (end > start) throw new ProtocolError(`connection closed inside a frame`);
      return;
    }
    end += n;
    while (end > start) {
      const available = buffer.subarray(start, end);
      const length = codec.frameLength(available);
      if (length === undefined) break;
      if (length > maxFrameBytes) throw new FrameTooLargeError(length, maxFrameBytes);
      if (length > available.length) {
        if (length > buffer.length) {
          const next = new Uint8Array(Math.max(length, READ_SIZE));
          next.set(available);
          buffer = next;
          start = 0;
          end = available.length;
        }
        break;
      }
      // The frame is copied out so the buffer can be reused at once.
      onFrame(available.slice(0, length));
      start += length;
    }
    if (start === end) start = end = 0;
  }
}

/** Writes encoded frames to a connection in order; frames queued meanwhile go in one write. */
export class FrameWriter {
  #conn: Deno.Conn;
  #queue: Uint8Array[] = [];
  #writing = false;
  #closed = false;
  #onError: (error: unknown) => void;

  /** Writes to `conn`; a failed write calls `onError` once and drops the rest. */
  constructor(conn: Deno.Conn, onError: (error: unknown) => void) {
    this.#conn = conn;
    this.#onError = onError;
  }

  /** Queues one frame; returns at once. */
  write(bytes: Uint8Array): void {
    if (this.#closed) return;
    this.#queue.push(bytes);
    if (!this.#writing) this.#pump();
  }

  /** Drops what is queued and writes no more. */
  close(): void {
    this.#closed = true;
    this.#queue.length = 0;
  }

  async #pump(): Promise<void> {
    this.#writing = true;
    try {
      while (this.#queue.length > 0 && !this.#closed) {
        const batch = this.#queue;
        this.#queue = [];
        const bytes = batch.length === 1 ? batch[0] : concat(batch);
        for (let off = 0; off < bytes.length;) {
          off += await this.#conn.write(bytes.subarray(off));
        }
      }
    } catch (error) {
      this.#closed = true;
      this.#queue.length = 0;
      this.#onError(error);
    } finally {
      this.#writing = false;
    }
  }
}

function concat(parts: Uint8Array[]): Uint8Array {
  let length = 0;
  for (const part of parts) length += part.length;
  const out = new Uint8Array(length);
  let off = 0;
  for (const part of parts) {
    out.set(part, off);
    off += part.length;
  }
  return out;
}
