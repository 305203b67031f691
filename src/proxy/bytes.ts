/**
 * A message body that streams through untouched unless a filter asks for it, shared by
 * the request and response sides.
 *
 * @module
 */

const encoder = new TextEncoder();

/** Turns a string or bytes into bytes (strings as UTF-8). */
export function toBytes(body: string | Uint8Array): Uint8Array {
  return typeof body === "string" ? encoder.encode(body) : body;
}

/** A body that is a stream until read or replaced, then bytes with a matching length. */
export class MessageBody {
  /** What will be sent: the original stream, bytes, or nothing. */
  source: ReadableStream<Uint8Array> | Uint8Array | null;
  #read: Promise<Uint8Array> | undefined;

  /** Wraps a body and the headers that describe its framing. */
  constructor(source: ReadableStream<Uint8Array> | Uint8Array | null, readonly headers: Headers) {
    this.source = source;
  }

  /**
   * Buffers the whole body once; later calls return the same bytes.
   *
   * @throws {BodyTooLargeError} when the body exceeds `maxBytes`; the body is then lost.
   */
  bytes(maxBytes = Infinity): Promise<Uint8Array> {
    if (this.#read !== undefined) return this.#read.then((b) => checkSize(b, maxBytes));
    const source = this.source;
    if (source === null) return this.#read = Promise.resolve(new Uint8Array(0));
    if (source instanceof Uint8Array) {
      this.#read = Promise.resolve(source);
      return this.#read.then((b) => checkSize(b, maxBytes));
    }
    this.#read = readAll(source, maxBytes).then((bytes) => {
      this.#setBytes(bytes);
      return bytes;
    });
    return this.#read;
  }

  /** Replaces the body; a stream not yet read is cancelled so its connection is freed. */
  replace(body: string | Uint8Array): void {
    const bytes = toBytes(body);
    if (this.source instanceof ReadableStream && this.#read === undefined) {
      this.source.cancel().catch(() => {});
    }
    this.#read = Promise.resolve(bytes);
    this.#setBytes(bytes);
  }

  #setBytes(bytes: Uint8Array): void {
    this.source = bytes;
    this.headers.delete("transfer-encoding");
    this.headers.set("content-length", String(bytes.byteLength));
  }
}

/** A body was larger than the reader allowed. */
export class BodyTooLargeError extends RangeError {
  /** Makes the error. */
  constructor(readonly maxBytes: number) {
    super(`The body is larger than ${maxBytes} bytes`);
    this.name = "BodyTooLargeError";
  }
}

function checkSize(bytes: Uint8Array, maxBytes: number): Uint8Array {
  if (bytes.byteLength > maxBytes) throw new BodyTooLargeError(maxBytes);
  return bytes;
}

async function readAll(source: ReadableStream<Uint8Array>, maxBytes: number): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  let size = 0;
  const reader = source.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > maxBytes) {
      reader.cancel().catch(() => {});
      throw new BodyTooLargeError(maxBytes);
    }
    chunks.push(value);
  }
  if (chunks.length === 1) return chunks[0];
  const bytes = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return bytes;
}
