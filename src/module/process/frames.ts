/**
 * The framing of messages between Mosaic and a process sandbox, over the child's stdin
 * and stdout. A frame is JSON with its byte arrays carried beside it, raw:
 *
 * ```
 * [0x4d 'M'] [flags u8] [binaries u16] [payload length u32]   header, 8 bytes
 * [JSON length u32] [length u32 of each binary]               payload …
 * [JSON, UTF-8] [binary 0] [binary 1] …
 * ```
 *
 * A `Uint8Array` in a message becomes `{"\u0000b": index}` in the JSON, and `undefined`
 * in an array becomes `{"\u0000u": 0}`, so bodies cross without base64 and tuples keep
 * their holes. Flag bit 0 says the JSON holds such tags, so a frame without them is
 * parsed without a reviver.
 *
 * Why JSON and not `node:v8`'s structured serialization: measured on Deno 2.9.6, a
 * `v8.serialize` + `v8.deserialize` round trip of a typical filter call costs 45–70 µs,
 * JSON 4–5 µs, and every request pays for four of them.
 *
 * @module
 */

/** The first byte of every frame: a child that writes to its stdout is caught at once. */
export const FRAME_MAGIC = 0x4d;

/** The largest frame either side accepts: bodies travel in one frame. */
export const MAX_FRAME_BYTES = 64 * 1024 * 1024;

const HEADER_BYTES = 8;
const FLAG_TAGGED = 1;
const BINARY_TAG = "\u0000b";
const UNDEFINED_TAG = "\u0000u";

/** A frame could not be made or read. */
export class FrameError extends Error {
  /** Makes the error. */
  constructor(message: string) {
    super(message);
    this.name = "FrameError";
  }
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * Encodes one message as a frame.
 *
 * @param message A value of JSON types, byte arrays and `undefined`s.
 * @returns The frame's bytes.
 * @throws {FrameError} When the frame would be larger than {@linkcode MAX_FRAME_BYTES}.
 * @throws {TypeError} When the message holds a BigInt or a cycle.
 */
export function encodeFrame(message: unknown): Uint8Array {
  const binaries: Uint8Array[] = [];
  let tagged = false;
  const json = encoder.encode(
    JSON.stringify(message, function (this: unknown, _key: string, value: unknown) {
      if (value instanceof Uint8Array) {
        tagged = true;
        binaries.push(value);
        return { [BINARY_TAG]: binaries.length - 1 };
      }
      if (value === undefined && Array.isArray(this)) {
        tagged = true;
        return { [UNDEFINED_TAG]: 0 };
      }
      return value;
    }),
  );
  if (binaries.length > 0xffff) throw new FrameError("A message holds more than 65535 byte arrays");
  let payload = 4 + 4 * binaries.length + json.length;
  for (const binary of binaries) payload += binary.length;
  if (payload > MAX_FRAME_BYTES) {
    throw new FrameError(
      `A message of ${payload} bytes is larger than the ${MAX_FRAME_BYTES}-byte frame limit`,
    );
  }
  const frame = new Uint8Array(HEADER_BYTES + payload);
  const view = new DataView(frame.buffer);
  frame[0] = FRAME_MAGIC;
  frame[1] = tagged ? FLAG_TAGGED : 0;
  view.setUint16(2, binaries.length);
  view.setUint32(4, payload);
  view.setUint32(8, json.length);
  let offset = 12;
  for (const binary of binaries) {
    view.setUint32(offset, binary.length);
    offset += 4;
  }
  frame.set(json, offset);
  offset += json.length;
  for (const binary of binaries) {
    frame.set(binary, offset);
    offset += binary.length;
  }
  return frame;
}

/** Reassembles frames from chunks of a byte stream. */
export class FrameDecoder {
  #buffer = new Uint8Array(64 * 1024);
  #start = 0;
  #end = 0;

  /**
   * Adds a chunk and calls `onMessage` for every frame it completes, in order.
   *
   * @throws {FrameError} When the stream holds something other than frames.
   */
  push(chunk: Uint8Array, onMessage: (message: unknown) => void): void {
    this.#append(chunk);
    while (this.#end - this.#start >= HEADER_BYTES) {
      const b = this.#buffer;
      const s = this.#start;
      if (b[s] !== FRAME_MAGIC) {
        const text = decoder.decode(b.subarray(s, Math.min(this.#end, s + 60)));
        throw new FrameError(`Expected a frame, got bytes that read ${JSON.stringify(text)}`);
      }
      const view = new DataView(b.buffer, b.byteOffset + s);
      const payload = view.getUint32(4);
      if (payload > MAX_FRAME_BYTES) {
        throw new FrameError(`A frame of ${payload} bytes is larger than the limit`);
      }
      if (this.#end - s < HEADER_BYTES + payload) return;
      const message = parse(b, s, b[s + 1], view.getUint16(2));
      this.#start = s + HEADER_BYTES + payload;
      if (this.#start === this.#end) this.#start = this.#end = 0;
      onMessage(message);
    }
  }

  #append(chunk: Uint8Array): void {
    const needed = this.#end - this.#start + chunk.length;
    if (this.#end + chunk.length > this.#buffer.length) {
      if (needed > this.#buffer.length / 2) {
        const grown = new Uint8Array(Math.max(needed * 2, this.#buffer.length));
        grown.set(this.#buffer.subarray(this.#start, this.#end));
        this.#buffer = grown;
      } else {
        this.#buffer.copyWithin(0, this.#start, this.#end);
      }
      this.#end -= this.#start;
      this.#start = 0;
    }
    this.#buffer.set(chunk, this.#end);
    this.#end += chunk.length;
  }
}

function parse(buffer: Uint8Array, start: number, flags: number, count: number): unknown {
  const view = new DataView(buffer.buffer, buffer.byteOffset + start + HEADER_BYTES);
  const jsonLength = view.getUint32(0);
  let offset = start + HEADER_BYTES + 4 + 4 * count;
  const json = decoder.decode(buffer.subarray(offset, offset + jsonLength));
  if ((flags & FLAG_TAGGED) === 0) return JSON.parse(json);
  offset += jsonLength;
  const binaries: Uint8Array[] = [];
  for (let i = 0; i < count; i++) {
    const length = view.getUint32(4 + 4 * i);
    // A copy: the decoder's buffer is reused for the next frames.
    binaries.push(buffer.slice(offset, offset + length));
    offset += length;
  }
  return JSON.parse(json, (_key, value) => {
    if (value === null || typeof value !== "object" || Array.isArray(value)) return value;
    if (BINARY_TAG in value) return binaries[value[BINARY_TAG]];
    if (UNDEFINED_TAG in value) return undefined;
    return value;
  });
}
