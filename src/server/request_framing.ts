/**
 * Follows the request framing of one HTTP/1.1 connection as bytes go by, without
 * changing them: where a request head starts and ends, and where its body ends. The
 * header read timeout needs exactly that, since `Deno.serve` (hyper) has none.
 *
 * @module
 */

const CR = 13;
const LF = 10;

/** Where the tracker is in the byte stream. */
export type FramingState =
  /** Between requests: no byte of a head yet. */
  | "idle"
  /** Inside a request head. */
  | "head"
  /** Inside a body; `remaining` bytes (Content-Length) or chunks to go. */
  | "body"
  /** Not HTTP/1.1 framing any more (h2c preface, Upgrade, CONNECT, garbage): pass through. */
  | "opaque";

const enum Chunk {
  Size,
  SizeLf,
  Data,
  DataCr,
  DataLf,
  Trailer,
  TrailerLf,
}

const LATIN1 = new TextDecoder("latin1");

/** Largest head the tracker buffers to read its framing headers. */
const MAX_HEAD = 128 * 1024;

/** A byte-level tracker of request boundaries on one connection. */
export class RequestFraming {
  /** The current state. */
  state: FramingState = "idle";
  /** Request heads completed so far. */
  heads = 0;
  #head: number[] = [];
  #headLength = 0;
  #remaining = 0;
  #chunked = false;
  #chunk = Chunk.Size;
  #chunkSize = 0;
  #lineLength = 0;

  /**
   * Feeds bytes sent by the client, in order. The caller reads `state` after each call:
   * `head` means a request head is incomplete.
   */
  push(bytes: Uint8Array): void {
    for (let i = 0; i < bytes.length && this.state !== "opaque"; i++) {
      const byte = bytes[i];
      switch (this.state) {
        case "idle":
          if (byte === CR || byte === LF) break; // stray CRLF between requests
          this.state = "head";
          this.#head.length = 0;
          this.#headLength = 0;
          this.#pushHead(byte);
          break;
        case "head":
          this.#pushHead(byte);
          break;
        case "body":
          i = this.#body(bytes, i);
          break;
      }
    }
  }

  #pushHead(byte: number): void {
    this.#headLength++;
    if (this.#head.length < MAX_HEAD) this.#head.push(byte);
    const h = this.#head;
    const n = h.length;
    if (
      byte === LF && n >= 4 && h[n - 2] === CR && h[n - 3] === LF && h[n - 4] === CR ||
      byte === LF && n >= 2 && h[n - 2] === LF
    ) {
      this.#endHead();
    } else if (this.#headLength > MAX_HEAD) {
      // Far past any server's limit: the server refuses it; stop following.
      this.state = "opaque";
    }
  }

  #endHead(): void {
    this.heads++;
    const lines = LATIN1.decode(new Uint8Array(this.#head)).split(/\r?\n/);
    const requestLine = lines[0];
    if (requestLine.startsWith("PRI * HTTP/2") || requestLine.startsWith("CONNECT ")) {
      this.state = "opaque";
      return;
    }
    let length = 0;
    let chunked = false;
    let upgrade = false;
    for (let i = 1; i < lines.length; i++) {
      const line = lines[i];
      const colon = line.indexOf(":");
      if (colon <= 0) continue;
      const name = line.slice(0, colon).trim().toLowerCase();
      const value = line.slice(colon + 1).trim().toLowerCase();
      if (name === "content-length") length = Number(value) || 0;
      else if (name === "transfer-encoding") chunked = value.endsWith("chunked");
      else if (name === "upgrade") upgrade = true;
    }
    if (upgrade) {
      this.state = "opaque";
      return;
    }
    this.#chunked = chunked;
    this.#remaining = chunked ? 0 : length;
    this.#chunk = Chunk.Size;
    this.#chunkSize = 0;
    this.#lineLength = 0;
    this.state = chunked || length > 0 ? "body" : "idle";
  }

  /** Consumes body bytes from `i`; returns the index of the last byte it consumed. */
  #body(bytes: Uint8Array, i: number): number {
    if (!this.#chunked) {
      const take = Math.min(this.#remaining, bytes.length - i);
      this.#remaining -= take;
      if (this.#remaining === 0) this.state = "idle";
      return i + take - 1;
    }
    const byte = bytes[i];
    switch (this.#chunk) {
      case Chunk.Size:
        if (byte === CR) this.#chunk = Chunk.SizeLf;
        else if (byte === LF) this.#afterSize();
        else if (byte === 0x3b || byte === 0x20 || this.#lineLength > 0) this.#lineLength++; // extension
        else {
          const digit = hexValue(byte);
          if (digit < 0) this.state = "opaque";
          else this.#chunkSize = this.#chunkSize * 16 + digit;
        }
        break;
      case Chunk.SizeLf:
        if (byte === LF) this.#afterSize();
        else this.state = "opaque";
        break;
      case Chunk.Data: {
        const take = Math.min(this.#chunkSize, bytes.length - i);
        this.#chunkSize -= take;
        if (this.#chunkSize === 0) this.#chunk = Chunk.DataCr;
        return i + take - 1;
      }
      case Chunk.DataCr:
        if (byte === CR) this.#chunk = Chunk.DataLf;
        else if (byte === LF) this.#chunk = Chunk.Size;
        else this.state = "opaque";
        break;
      case Chunk.DataLf:
        if (byte === LF) this.#chunk = Chunk.Size;
        else this.state = "opaque";
        break;
      case Chunk.Trailer:
        if (byte === CR) this.#chunk = Chunk.TrailerLf;
        else if (byte === LF) this.#endTrailerLine();
        else this.#lineLength++;
        break;
      case Chunk.TrailerLf:
        if (byte === LF) this.#endTrailerLine();
        else this.state = "opaque";
        break;
    }
    return i;
  }

  #afterSize(): void {
    this.#lineLength = 0;
    if (this.#chunkSize === 0) this.#chunk = Chunk.Trailer;
    else this.#chunk = Chunk.Data;
  }

  #endTrailerLine(): void {
    if (this.#lineLength === 0) {
      this.state = "idle"; // the empty line after the last chunk's trailers
    } else {
      this.#lineLength = 0;
      this.#chunk = Chunk.Trailer;
    }
  }
}

function hexValue(byte: number): number {
  if (byte >= 48 && byte <= 57) return byte - 48;
  if (byte >= 97 && byte <= 102) return byte - 87;
  if (byte >= 65 && byte <= 70) return byte - 55;
  return -1;
}
