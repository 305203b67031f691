/**
 * Bolt v1, SOFARPC's protocol (what `sofa-bolt-node` and SOFARPC Java speak), as a
 * Mosaic protocol codec written against `mod.ts` only: request, oneway, response and
 * heartbeat commands; the class name, header map and content; the serialization byte
 * passed through untouched (Hessian2 content is never decoded).
 *
 * ```
 * request  (22-byte head): proto type cmdcode(2) ver2 requestId(4) codec timeout(4)
 *                          classLen(2) headerLen(2) contentLen(4) class header content
 * response (20-byte head): proto type cmdcode(2) ver2 requestId(4) codec respStatus(2)
 *                          classLen(2) headerLen(2) contentLen(4) class header content
 * ```
 *
 * The header map is a sequence of (int32 length, UTF-8 bytes) pairs, key then value; a
 * value of length -1 is null (read as ""). Statuses map as MOSN maps them.
 *
 * @module
 */

import type {
  CreateProtocolCodec,
  ProtocolCodec,
  ProtocolFrame,
  RequestLine,
} from "../../../mod.ts";
import { ProtocolError } from "../../../mod.ts";

/** Bolt's response statuses (`com.alipay.remoting.ResponseStatus`). */
export const BoltStatus = {
  SUCCESS: 0x0000,
  ERROR: 0x0001,
  SERVER_EXCEPTION: 0x0002,
  UNKNOWN: 0x0003,
  SERVER_THREADPOOL_BUSY: 0x0004,
  ERROR_COMM: 0x0005,
  NO_PROCESSOR: 0x0006,
  TIMEOUT: 0x0007,
  CLIENT_SEND_ERROR: 0x0008,
  CODEC_EXCEPTION: 0x0009,
  CONNECTION_CLOSED: 0x0010,
  SERVER_SERIAL_EXCEPTION: 0x0011,
  SERVER_DESERIAL_EXCEPTION: 0x0012,
} as const;

/** The codec-private fields of a Bolt frame, carried through the proxy untouched. */
export interface BoltMeta {
  /** The command code: 0 heartbeat, 1 request, 2 response. */
  cmdCode: number;
  /** `ver2`, the command version. */
  version: number;
  /** The serialization byte (1 Hessian2, 11 protobuf, …). */
  codec: number;
  /** The class name (`com.alipay.sofa.rpc.core.request.SofaRequest`). */
  className: string;
}

const PROTOCOL_V1 = 1;
const TYPE_RESPONSE = 0;
const TYPE_REQUEST = 1;
const TYPE_ONEWAY = 2;
const CMD_HEARTBEAT = 0;
const CMD_REQUEST = 1;
const CMD_RESPONSE = 2;
const REQUEST_HEAD = 22;
const RESPONSE_HEAD = 20;
const HESSIAN2 = 1;

const utf8 = new TextDecoder("utf-8", { fatal: false });
const encoder = new TextEncoder();

/** Creates the Bolt v1 codec; it takes no config. */
export const createProtocolCodec: CreateProtocolCodec = () => new BoltCodec();

class BoltCodec implements ProtocolCodec {
  readonly name = "bolt";

  frameLength(bytes: Uint8Array): number | undefined {
    if (bytes.length < 2) {
      if (bytes.length === 1 && bytes[0] !== PROTOCOL_V1) throw notBolt(bytes[0]);
      return undefined;
    }
    if (bytes[0] !== PROTOCOL_V1) throw notBolt(bytes[0]);
    const type = bytes[1];
    if (type !== TYPE_RESPONSE && type !== TYPE_REQUEST && type !== TYPE_ONEWAY) {
      throw new ProtocolError(`unknown Bolt command type ${type}`);
    }
    const head = type === TYPE_RESPONSE ? RESPONSE_HEAD : REQUEST_HEAD;
    if (bytes.length < head) return undefined;
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const at = type === TYPE_RESPONSE ? 12 : 14;
    const contentLength = view.getInt32(at + 4);
    if (contentLength < 0) throw new ProtocolError(`negative Bolt content length ${contentLength}`);
    return head + view.getUint16(at) + view.getUint16(at + 2) + contentLength;
  }

  decode(bytes: Uint8Array): ProtocolFrame {
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const type = bytes[1];
    const cmdCode = view.getUint16(2);
    const version = bytes[4];
    const requestId = view.getUint32(5);
    const codec = bytes[9];
    const response = type === TYPE_RESPONSE;
    if (cmdCode !== CMD_HEARTBEAT && cmdCode !== (response ? CMD_RESPONSE : CMD_REQUEST)) {
      throw new ProtocolError(`Bolt command code ${cmdCode} does not fit command type ${type}`);
    }
    let status = 0;
    let timeoutMs = 0;
    let at: number;
    if (response) {
      status = view.getUint16(10);
      at = 12;
    } else {
      timeoutMs = Math.max(0, view.getInt32(10));
      at = 14;
    }
    const classLength = view.getUint16(at);
    const headerLength = view.getUint16(at + 2);
    const contentLength = view.getInt32(at + 4);
    let offset = response ? RESPONSE_HEAD : REQUEST_HEAD;
    if (offset + classLength + headerLength + contentLength !== bytes.length) {
      throw new ProtocolError("Bolt frame lengths do not add up");
    }
    const className = utf8.decode(bytes.subarray(offset, offset + classLength));
    offset += classLength;
    const headers = decodeHeaderMap(view, offset, headerLength);
    offset += headerLength;
    const body = bytes.subarray(offset, offset + contentLength);
    const meta: BoltMeta = { cmdCode, version, codec, className };
    return {
      type: cmdCode === CMD_HEARTBEAT
        ? (response ? "heartbeat_ack" : "heartbeat")
        : response
        ? "response"
        : type === TYPE_ONEWAY
        ? "oneway"
        : "request",
      requestId,
      headers,
      body,
      status,
      timeoutMs,
      meta,
    };
  }

  encode(frame: ProtocolFrame): Uint8Array {
    const meta = frame.meta as BoltMeta;
    const response = frame.type === "response" || frame.type === "heartbeat_ack";
    const className = encoder.encode(meta.className);
    const header = encodeHeaderMap(frame.headers);
    const head = response ? RESPONSE_HEAD : REQUEST_HEAD;
    if (className.length > 0xffff || header.length > 0xffff) {
      throw new ProtocolError("Bolt class name or header map over 65535 bytes");
    }
    const out = new Uint8Array(head + className.length + header.length + frame.body.length);
    const view = new DataView(out.buffer);
    out[0] = PROTOCOL_V1;
    out[1] = response ? TYPE_RESPONSE : frame.type === "oneway" ? TYPE_ONEWAY : TYPE_REQUEST;
    view.setUint16(2, meta.cmdCode);
    out[4] = meta.version;
    view.setUint32(5, frame.requestId >>> 0);
    out[9] = meta.codec;
    let at: number;
    if (response) {
      view.setUint16(10, frame.status);
      at = 12;
    } else {
      view.setInt32(10, frame.timeoutMs);
      at = 14;
    }
    view.setUint16(at, className.length);
    view.setUint16(at + 2, header.length);
    view.setInt32(at + 4, frame.body.length);
    out.set(className, head);
    out.set(header, head + className.length);
    out.set(frame.body, head + className.length + header.length);
    return out;
  }

  requestLine(request: ProtocolFrame): RequestLine {
    let service = "";
    let method = "";
    for (const [name, value] of request.headers) {
      if (name === "service" || (name === "sofa_head_target_service" && service === "")) {
        service = value;
      } else if (name === "sofa_head_method_name") method = value;
    }
    return {
      method: request.type === "oneway" ? "ONEWAY" : "REQUEST",
      path: `/${segment(service)}${method === "" ? "" : `/${segment(method)}`}`,
    };
  }

  respond(request: ProtocolFrame, status: number, message: string): ProtocolFrame {
    const codec = (request.meta as BoltMeta).codec;
    const boltStatus = boltStatusOf(status);
    return {
      type: "response",
      requestId: request.requestId,
      headers: [],
      body: boltStatus !== BoltStatus.SUCCESS && codec === HESSIAN2
        ? hessianServerException(`[mosaic] ${message || "local response"} (status ${status})`)
        : new Uint8Array(0),
      status: boltStatus,
      timeoutMs: 0,
      meta: { cmdCode: CMD_RESPONSE, version: 1, codec, className: "" } satisfies BoltMeta,
    };
  }

  httpStatus(response: ProtocolFrame): number {
    switch (response.status) {
      case BoltStatus.SUCCESS:
        return 200;
      case BoltStatus.SERVER_THREADPOOL_BUSY:
        return 503;
      case BoltStatus.TIMEOUT:
        return 504;
      case BoltStatus.CONNECTION_CLOSED:
        return 502;
      default:
        return 500;
    }
  }

  heartbeatAck(heartbeat: ProtocolFrame): ProtocolFrame {
    const meta = heartbeat.meta as BoltMeta;
    return {
      type: "heartbeat_ack",
      requestId: heartbeat.requestId,
      headers: [],
      body: new Uint8Array(0),
      status: BoltStatus.SUCCESS,
      timeoutMs: 0,
      meta: { cmdCode: CMD_HEARTBEAT, version: meta.version, codec: meta.codec, className: "" },
    };
  }
}

/**
 * The Bolt status for an HTTP-style status the proxy chose, as MOSN maps them: 200
 * success, 404 (no route) no processor, 502 (no healthy upstream, upstream gone)
 * connection closed, 503 (overflow) thread pool busy, 504 timeout, 400 codec exception,
 * anything else unknown.
 */
export function boltStatusOf(status: number): number {
  switch (status) {
    case 200:
      return BoltStatus.SUCCESS;
    case 400:
      return BoltStatus.CODEC_EXCEPTION;
    case 404:
      return BoltStatus.NO_PROCESSOR;
    case 502:
      return BoltStatus.CONNECTION_CLOSED;
    case 503:
      return BoltStatus.SERVER_THREADPOOL_BUSY;
    case 504:
      return BoltStatus.TIMEOUT;
    default:
      return BoltStatus.UNKNOWN;
  }
}

function notBolt(byte: number): ProtocolError {
  return new ProtocolError(
    `not a Bolt v1 frame (protocol byte 0x${byte.toString(16).padStart(2, "0")}, expected 0x01)`,
  );
}

function decodeHeaderMap(view: DataView, start: number, length: number): [string, string][] {
  const headers: [string, string][] = [];
  const end = start + length;
  const bytes = new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
  let at = start;
  while (at < end) {
    if (at + 4 > end) throw new ProtocolError("Bolt header map ends inside a key length");
    const keyLength = view.getInt32(at);
    at += 4;
    if (keyLength < 0 || at + keyLength + 4 > end) {
      throw new ProtocolError("Bolt header map overruns its length");
    }
    const key = utf8.decode(bytes.subarray(at, at + keyLength));
    at += keyLength;
    const valueLength = view.getInt32(at);
    at += 4;
    let value = "";
    if (valueLength > 0) {
      if (at + valueLength > end) throw new ProtocolError("Bolt header map overruns its length");
      value = utf8.decode(bytes.subarray(at, at + valueLength));
      at += valueLength;
    } else if (valueLength < -1) {
      throw new ProtocolError(`Bolt header value length ${valueLength}`);
    }
    headers.push([key, value]);
  }
  return headers;
}

function encodeHeaderMap(headers: [string, string][]): Uint8Array {
  if (headers.length === 0) return new Uint8Array(0);
  const parts: Uint8Array[] = [];
  let length = 0;
  for (const [key, value] of headers) {
    const k = encoder.encode(key);
    const v = encoder.encode(value);
    parts.push(k, v);
    length += 8 + k.length + v.length;
  }
  const out = new Uint8Array(length);
  const view = new DataView(out.buffer);
  let at = 0;
  for (const part of parts) {
    view.setInt32(at, part.length);
    out.set(part, at + 4);
    at += 4 + part.length;
  }
  return out;
}

/** A path segment: the name as is where it is safe in a path, escaped elsewhere. */
function segment(name: string): string {
  return /^[A-Za-z0-9._~:@!$&'()*+,;=-]*$/.test(name) ? name : encodeURIComponent(name);
}

const SERVER_EXCEPTION_CLASS = "com.alipay.remoting.rpc.exception.RpcServerException";
const STACK_TRACE_TYPE = "[java.lang.StackTraceElement";

/**
 * The content SOFARPC clients read from an error response: an `RpcServerException`
 * whose `detailMessage` is `message`, with an empty stack trace and no cause, in the
 * Hessian form sofa-bolt-node itself writes (`O` type fields… `o` ref values…).
 */
function hessianServerException(message: string): Uint8Array {
  const ascii = (text: string) => Uint8Array.from(text, (c) => c.charCodeAt(0));
  const parts = [
    Uint8Array.of(0x4f, 0xc8 + (SERVER_EXCEPTION_CLASS.length >> 8)),
    Uint8Array.of(SERVER_EXCEPTION_CLASS.length & 0xff),
    ascii(SERVER_EXCEPTION_CLASS),
    Uint8Array.of(0x93), // 3 fields
    hessianString("detailMessage"),
    hessianString("stackTrace"),
    hessianString("cause"),
    Uint8Array.of(0x6f, 0x90), // an instance of definition 0
    hessianString(message),
    Uint8Array.of(0x56, 0x74, 0x00, STACK_TRACE_TYPE.length), // 'V' 't' type: an empty array
    ascii(STACK_TRACE_TYPE),
    Uint8Array.of(0x6e, 0x00, 0x7a), // 'n' 0 'z'
    Uint8Array.of(0x4e), // null cause
  ];
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

/** A Hessian 2.0 string (ASCII, at most 1023 characters). */
function hessianString(text: string): Uint8Array {
  const ascii = text.replace(/[^\x20-\x7e]/g, "?").slice(0, 1023);
  const length = ascii.length;
  // Short strings in one byte of length; longer ones as 'S' and a 16-bit length, which
  // every Hessian 2 reader takes (sofa-bolt-node's does not take the 0x30 form).
  const head = length < 32 ? [length] : [0x53, length >> 8, length & 0xff];
  const out = new Uint8Array(head.length + length);
  out.set(head);
  for (let i = 0; i < length; i++) out[head.length + i] = ascii.charCodeAt(i);
  return out;
}
