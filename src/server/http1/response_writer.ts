/**
 * Writes a response on an HTTP/1.1 connection: status line, header fields and body, in as
 * few writes as possible. A head and a body of bytes that fit in one buffer go out in one
 * write; a stream goes out chunk by chunk, with its own Content-Length when it has one and
 * chunked otherwise (close-delimited for an HTTP/1.0 client). HEAD, 1xx, 204 and 304
 * responses have no body.
 *
 * Header values are written as Latin-1, as they were read, so obs-text survives.
 *
 * @module
 */

import type { StreamResponse } from "../../proxy/downstream.ts";
import { parseDecimal } from "../../http1/decimal.ts";
import { encodeLatin1Into } from "../../http1/latin1.ts";
import { reasonPhrase } from "./status.ts";

/** Where a response is written. */
export interface ResponseOutput {
  /** Writes all of `bytes`; rejects when the connection failed. */
  writeAll(bytes: Uint8Array): Promise<void>;
}

/** What the writer needs to know of the request. */
export interface ResponseFor {
  readonly method: string;
  /** 1 for HTTP/1.1, 0 for HTTP/1.0. */
  readonly minor: number;
}

/** Bodies and chunks up to this size are copied behind their head or size line. */
const COALESCE = 16 * 1024;
const BUFFER_SIZE = COALESCE + 4096;
/** Write buffers kept for reuse; idle connections hold none. */
const POOL_LIMIT = 256;
const pool: Uint8Array[] = [];

function takeBuffer(size: number): Uint8Array {
  if (size > BUFFER_SIZE) return new Uint8Array(size);
  return pool.pop() ?? new Uint8Array(BUFFER_SIZE);
}

function giveBuffer(buffer: Uint8Array): void {
  if (buffer.length === BUFFER_SIZE && pool.length < POOL_LIMIT) pool.push(buffer);
}

let dateText = "";
let dateSecond = 0;

/** The `Date` value, recomputed at most once a second. */
function httpDate(): string {
  const now = Date.now();
  const second = now - (now % 1000);
  if (second !== dateSecond) {
    dateSecond = second;
    dateText = new Date(second).toUTCString();
  }
  return dateText;
}

const LAST_CHUNK = new TextEncoder().encode("0\r\n\r\n");

/** Scratch state of the header walk in {@linkcode writeResponse}; it runs synchronously. */
interface HeadFields {
  text: string;
  givenLength: string;
  hasDate: boolean;
  close: boolean;
}

const HEAD_FIELDS: HeadFields = { text: "", givenLength: "", hasDate: false, close: false };

/**
 * Adds one response field to the head, except the hop-by-hop ones: the writer sets the
 * framing and the connection's own fields itself.
 */
function appendResponseField(this: HeadFields, value: string, name: string): void {
  switch (name.length) {
    case 2:
      if (name === "te") return;
      break;
    case 7:
      if (name === "upgrade" || name === "trailer") return;
      break;
    case 16:
      if (name === "proxy-connection") return;
      break;
    case 4:
      if (name === "date") this.hasDate = true;
      break;
    case 10:
      if (name === "connection" || name === "keep-alive") {
        if (name === "connection" && value.toLowerCase().includes("close")) this.close = true;
        return;
      }
      break;
    case 14:
      if (name === "content-length") {
        this.givenLength = value;
        return;
      }
      break;
    case 17:
      if (name === "transfer-encoding") return;
      break;
  }
  this.text += `${name}: ${value}\r\n`;
}

/**
 * Writes `response` to `out`.
 *
 * @param out The connection.
 * @param response What the lifecycle answered.
 * @param request The request's method and version.
 * @param close Say `Connection: close` (the connection closes after this response).
 * @returns False when the connection must close after this response even though `close`
 *   was false (a close-delimited body, a stream shorter than its Content-Length).
 * @throws {Error} when the connection failed or the body stream errored; the response is
 *   then cut short and the connection must be closed.
 */
export async function writeResponse(
  out: ResponseOutput,
  response: StreamResponse,
  request: ResponseFor,
  close: boolean,
): Promise<boolean> {
  const status = response.status;
  const body = response.body;
  const headers = response.headers;
  const noBody = status < 200 || status === 204 || status === 304 || request.method === "HEAD";
  const fields = HEAD_FIELDS;
  fields.text = `HTTP/1.1 ${status} ${reasonPhrase(status)}\r\n`;
  fields.givenLength = "";
  fields.hasDate = false;
  fields.close = close;
  // forEach is several times faster than the Headers iterator in Deno.
  headers.forEach(appendResponseField, fields);
  let head = fields.text;
  const givenLength = fields.givenLength;
  const hasDate = fields.hasDate;
  close = fields.close;
  fields.text = "";
  if (!hasDate) head += `date: ${httpDate()}\r\n`;

  // Framing: -1 chunked, -2 close-delimited, else a length.
  let length: number;
  let stream: ReadableStream<Uint8Array> | null = null;
  if (body === null) {
    length = 0;
    if (noBody && givenLength !== "") head += `content-length: ${givenLength}\r\n`;
  } else if (body instanceof Uint8Array) {
    length = body.length;
  } else {
    stream = body;
    const n = givenLength === "" ? -1 : parseDecimal(givenLength.trim());
    length = n >= 0 ? n : request.minor === 1 ? -1 : -2;
  }
  if (noBody) {
    if (stream !== null) stream.cancel().catch(() => {});
    if (status >= 200 && status !== 204 && body !== null) {
      head += `content-length: ${length >= 0 ? length : givenLength}\r\n`;
    }
  } else if (length >= 0) {
    head += `content-length: ${length}\r\n`;
  } else if (length === -1) {
    head += "transfer-encoding: chunked\r\n";
  } else {
    close = true;
  }
  head += close
    ? "connection: close\r\n\r\n"
    : request.minor === 0
    ? "connection: keep-alive\r\n\r\n"
    : "\r\n";

  // Head, and bytes that fit behind it, in one write.
  const inline = !noBody && body instanceof Uint8Array && body.length <= COALESCE ? body : null;
  const buffer = takeBuffer(head.length + (inline?.length ?? 0));
  let used = encodeLatin1Into(head, buffer, 0);
  if (used < 0) {
    // `Headers` holds bytes only, so this is a bug upstream of the writer.
    giveBuffer(buffer);
    throw new TypeError("The response head has a char above 0xFF, which has no Latin-1 byte");
  }
  if (inline !== null) {
    buffer.set(inline, used);
    used += inline.length;
  }
  try {
    await out.writeAll(buffer.subarray(0, used));
  } finally {
    giveBuffer(buffer);
  }
  if (noBody) return !close;
  if (inline === null && body instanceof Uint8Array) {
    await out.writeAll(body);
    return !close;
  }
  if (stream === null) return !close;
  return await writeStream(out, stream, length) && !close;
}

/** Writes a streamed body; returns false when the connection cannot carry another response. */
async function writeStream(
  out: ResponseOutput,
  stream: ReadableStream<Uint8Array>,
  length: number,
): Promise<boolean> {
  const reader = stream.getReader();
  let sent = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      if (value.length === 0) continue;
      if (length === -1) {
        await writeChunk(out, value);
      } else if (length === -2) {
        await out.writeAll(value);
      } else {
        const room = length - sent;
        if (value.length > room) {
          // More than the Content-Length said: send what was promised, then close.
          if (room > 0) await out.writeAll(value.subarray(0, room));
          reader.cancel().catch(() => {});
          return false;
        }
        await out.writeAll(value);
      }
      sent += value.length;
    }
  } catch (error) {
    reader.cancel(error).catch(() => {});
    throw error;
  }
  if (length === -1) {
    await out.writeAll(LAST_CHUNK);
    return true;
  }
  // A close-delimited body ends with the connection; a short one must not be followed.
  return length >= 0 && sent === length;
}

async function writeChunk(out: ResponseOutput, data: Uint8Array): Promise<void> {
  const prefix = `${data.length.toString(16)}\r\n`;
  if (data.length > COALESCE) {
    const line = takeBuffer(prefix.length);
    const n = encodeLatin1Into(prefix, line, 0);
    try {
      await out.writeAll(line.subarray(0, n));
    } finally {
      giveBuffer(line);
    }
    await out.writeAll(data);
    await out.writeAll(CRLF);
    return;
  }
  const buffer = takeBuffer(prefix.length + data.length + 2);
  let used = encodeLatin1Into(prefix, buffer, 0);
  buffer.set(data, used);
  used += data.length;
  buffer[used++] = 13;
  buffer[used++] = 10;
  try {
    await out.writeAll(buffer.subarray(0, used));
  } finally {
    giveBuffer(buffer);
  }
}

const CRLF = new Uint8Array([13, 10]);
