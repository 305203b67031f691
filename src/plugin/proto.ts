/**
 * MOSN's plugin protocol (`package proto`), defined in code so that it works inside a
 * `deno compile` binary: no `.proto` file is read at run time.
 *
 * ```proto
 * service Plugin { rpc Call(Request) returns (Response); }
 * message Request  { map<string,string> header = 1; map<string,string> trailer = 2;
 *                    bytes body = 3; string type = 4; }
 * message Response { map<string,string> header = 1; map<string,string> trailer = 2;
 *                    bytes body = 3; int32 status = 4; }
 * ```
 *
 * The two messages are small and fixed, so they are encoded by hand: one size pass, one
 * allocation, one write pass. Decoding skips unknown fields, as proto3 requires.
 *
 * This module imports nothing, so the SDK ({@link ../../plugin.ts}) can run it under
 * Node.js as well.
 *
 * @module
 */

import type { PluginRequest, PluginResponse } from "../filter/api.ts";

/** The full gRPC method path of `proto.Plugin/Call`. */
export const CALL_PATH = "/proto.Plugin/Call";

/** The full gRPC method path of `grpc.health.v1.Health/Check`. */
export const HEALTH_CHECK_PATH = "/grpc.health.v1.Health/Check";

/** The health service name hashicorp/go-plugin registers, and the one Mosaic checks. */
export const HEALTH_SERVICE = "plugin";

/** `grpc.health.v1.HealthCheckResponse.ServingStatus`. */
export type ServingStatus = "UNKNOWN" | "SERVING" | "NOT_SERVING" | "SERVICE_UNKNOWN";

/** Raised when bytes on the wire are not a valid message. */
export class ProtoDecodeError extends Error {
  /** Creates the error. */
  constructor(message: string) {
    super(message);
    this.name = "ProtoDecodeError";
  }
}

const EMPTY: Uint8Array = new Uint8Array(0);
const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: false });

/** The UTF-8 length of a string, without encoding it. */
function utf8Length(s: string): number {
  let n = s.length;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) continue;
    if (c < 0x800) n += 1;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        // A surrogate pair: 2 UTF-16 units become 4 bytes.
        n += 2;
        i++;
      } else n += 2;
    } else n += 2;
  }
  return n;
}

function varintSize(v: number): number {
  if (v < 0x80) return 1;
  if (v < 0x4000) return 2;
  if (v < 0x200000) return 3;
  if (v < 0x10000000) return 4;
  return 5;
}

/** Size of one map entry message (without its own tag and length). */
function entrySize(keyLen: number, valueLen: number): number {
  let n = 0;
  if (keyLen > 0) n += 1 + varintSize(keyLen) + keyLen;
  if (valueLen > 0) n += 1 + varintSize(valueLen) + valueLen;
  return n;
}

/** One pass over a map: the lengths it needs, cached for the write pass. */
interface MapPlan {
  keys: string[];
  values: string[];
  keyLens: number[];
  valueLens: number[];
  size: number;
}

function planMap(map: Record<string, string> | undefined): MapPlan | undefined {
  if (map === undefined) return undefined;
  const keys: string[] = [];
  const values: string[] = [];
  const keyLens: number[] = [];
  const valueLens: number[] = [];
  let size = 0;
  for (const key in map) {
    const value = map[key];
    if (typeof value !== "string") continue;
    const kl = utf8Length(key);
    const vl = utf8Length(value);
    const es = entrySize(kl, vl);
    keys.push(key);
    values.push(value);
    keyLens.push(kl);
    valueLens.push(vl);
    size += 1 + varintSize(es) + es;
  }
  return keys.length === 0 ? undefined : { keys, values, keyLens, valueLens, size };
}

class Writer {
  buf: Uint8Array;
  pos: number;
  constructor(size: number, start = 0) {
    this.buf = new Uint8Array(start + size);
    this.pos = start;
  }
  byte(b: number): void {
    this.buf[this.pos++] = b;
  }
  varint(v: number): void {
    while (v >= 0x80) {
      this.buf[this.pos++] = (v & 0x7f) | 0x80;
      v >>>= 7;
    }
    this.buf[this.pos++] = v;
  }
  /** A signed int32 as proto3 writes it: negatives sign-extended to 10 bytes. */
  int32(v: number): void {
    if (v >= 0) {
      this.varint(v);
      return;
    }
    // Low 32 bits, then the sign-extended high 32 bits (all ones).
    let lo = v >>> 0;
    for (let i = 0; i < 4; i++) {
      this.buf[this.pos++] = (lo & 0x7f) | 0x80;
      lo >>>= 7;
    }
    // Bits 28..34: the top 4 bits of lo, then ones.
    this.buf[this.pos++] = (lo & 0x0f) | 0x70 | 0x80;
    for (let i = 0; i < 4; i++) this.buf[this.pos++] = 0xff;
    this.buf[this.pos++] = 0x01;
  }
  string(s: string, len: number): void {
    this.varint(len);
    if (len === s.length) {
      // ASCII: a plain loop beats encodeInto for the short strings headers are.
      for (let i = 0; i < len; i++) this.buf[this.pos++] = s.charCodeAt(i);
    } else {
      encoder.encodeInto(s, this.buf.subarray(this.pos, this.pos + len));
      this.pos += len;
    }
  }
  bytes(b: Uint8Array): void {
    this.varint(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
  }
  map(tag: number, plan: MapPlan): void {
    for (let i = 0; i < plan.keys.length; i++) {
      const kl = plan.keyLens[i];
      const vl = plan.valueLens[i];
      this.byte(tag);
      this.varint(entrySize(kl, vl));
      if (kl > 0) {
        this.byte(0x0a);
        this.string(plan.keys[i], kl);
      }
      if (vl > 0) {
        this.byte(0x12);
        this.string(plan.values[i], vl);
      }
    }
  }
}

function int32Size(v: number): number {
  return v < 0 ? 10 : varintSize(v);
}

/**
 * Encodes a {@linkcode PluginRequest} as `proto.Request`.
 *
 * @param request The request; absent fields are left out, as proto3 does.
 * @param grpcFrame Put gRPC's 5-byte message prefix (uncompressed, the length) first.
 * @returns The message bytes.
 */
export function encodeRequest(request: PluginRequest, grpcFrame = false): Uint8Array {
  const header = planMap(request.header);
  const trailer = planMap(request.trailer);
  const body = request.body;
  const type = request.type;
  const typeLen = type ? utf8Length(type) : 0;
  let size = 0;
  if (header) size += header.size;
  if (trailer) size += trailer.size;
  if (body && body.length > 0) size += 1 + varintSize(body.length) + body.length;
  if (typeLen > 0) size += 1 + varintSize(typeLen) + typeLen;
  const w = new Writer(size, grpcFrame ? 5 : 0);
  if (grpcFrame) {
    const b = w.buf;
    b[1] = size >>> 24;
    b[2] = (size >>> 16) & 0xff;
    b[3] = (size >>> 8) & 0xff;
    b[4] = size & 0xff;
  }
  if (header) w.map(0x0a, header);
  if (trailer) w.map(0x12, trailer);
  if (body && body.length > 0) {
    w.byte(0x1a);
    w.bytes(body);
  }
  if (typeLen > 0) {
    w.byte(0x22);
    w.string(type!, typeLen);
  }
  return w.buf;
}

/**
 * Encodes a {@linkcode PluginResponse} as `proto.Response`. Missing maps and body are
 * treated as empty, a missing status as 0.
 *
 * @param response The response.
 * @returns The message bytes.
 */
export function encodeResponse(response: Partial<PluginResponse>): Uint8Array {
  const header = planMap(response.header);
  const trailer = planMap(response.trailer);
  const body = response.body;
  const status = response.status ?? 0;
  if (!Number.isInteger(status) || status < -0x80000000 || status > 0x7fffffff) {
    throw new RangeError(`Response status must be an int32, got ${status}`);
  }
  let size = 0;
  if (header) size += header.size;
  if (trailer) size += trailer.size;
  if (body && body.length > 0) size += 1 + varintSize(body.length) + body.length;
  if (status !== 0) size += 1 + int32Size(status);
  const w = new Writer(size);
  if (header) w.map(0x0a, header);
  if (trailer) w.map(0x12, trailer);
  if (body && body.length > 0) {
    w.byte(0x1a);
    w.bytes(body);
  }
  if (status !== 0) {
    w.byte(0x20);
    w.int32(status);
  }
  return w.buf;
}

class Reader {
  pos: number;
  constructor(readonly buf: Uint8Array, start: number, readonly end: number) {
    this.pos = start;
  }
  /** A varint as a JS number; exact up to 2^53, enough for lengths and int32. */
  varint(): number {
    let result = 0;
    let shift = 0;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) throw new ProtoDecodeError("Truncated varint in message");
      const b = this.buf[this.pos++];
      if (shift < 28) result |= (b & 0x7f) << shift;
      else result += (b & 0x7f) * 2 ** shift;
      if (b < 0x80) return shift < 28 ? result >>> 0 : result;
      shift += 7;
    }
    throw new ProtoDecodeError("Varint longer than 10 bytes in message");
  }
  /** An int32 field: the low 32 bits of the varint, as signed. */
  int32(): number {
    let lo = 0;
    let shift = 0;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) throw new ProtoDecodeError("Truncated varint in message");
      const b = this.buf[this.pos++];
      if (shift < 32) lo |= (b & 0x7f) << shift;
      if (b < 0x80) return lo | 0;
      shift += 7;
    }
    throw new ProtoDecodeError("Varint longer than 10 bytes in message");
  }
  length(): number {
    const len = this.varint();
    if (this.pos + len > this.end) {
      throw new ProtoDecodeError(`Field length ${len} runs past the end of the message`);
    }
    return len;
  }
  string(): string {
    const len = this.length();
    const start = this.pos;
    this.pos += len;
    return decodeString(this.buf, start, this.pos);
  }
  bytes(): Uint8Array {
    const len = this.length();
    // A view, not a copy: the buffer a message arrives in is not reused.
    const out = len === 0 ? EMPTY : this.buf.subarray(this.pos, this.pos + len);
    this.pos += len;
    return out;
  }
  skip(wireType: number): void {
    switch (wireType) {
      case 0:
        this.varint();
        return;
      case 1:
        this.pos += 8;
        break;
      case 2:
        this.pos += this.length();
        return;
      case 5:
        this.pos += 4;
        break;
      default:
        throw new ProtoDecodeError(`Unsupported wire type ${wireType} in message`);
    }
    if (this.pos > this.end) throw new ProtoDecodeError("Truncated field in message");
  }
  mapEntry(into: Record<string, string>): void {
    const len = this.length();
    const end = this.pos + len;
    const inner = new Reader(this.buf, this.pos, end);
    let key = "";
    let value = "";
    while (inner.pos < end) {
      const tag = inner.varint();
      if (tag === 0x0a) key = inner.string();
      else if (tag === 0x12) value = inner.string();
      else inner.skip(tag & 7);
    }
    this.pos = end;
    into[key] = value;
  }
}

function decodeString(buf: Uint8Array, start: number, end: number): string {
  // Short ASCII strings (header names and values) decode faster by hand.
  if (end - start < 64) {
    let ascii = true;
    for (let i = start; i < end; i++) {
      if (buf[i] >= 0x80) {
        ascii = false;
        break;
      }
    }
    if (ascii) {
      let s = "";
      for (let i = start; i < end; i++) s += String.fromCharCode(buf[i]);
      return s;
    }
  }
  return decoder.decode(buf.subarray(start, end));
}

/** A map object without a prototype, so a key like `__proto__` is just a key. */
function newMap(): Record<string, string> {
  return Object.create(null);
}

/**
 * Decodes `proto.Request` bytes.
 *
 * @param buf The message bytes.
 * @returns The request with every field present (maps and body may be empty).
 * @throws {ProtoDecodeError} when the bytes are not a valid message.
 */
export function decodeRequest(buf: Uint8Array): Required<PluginRequest> {
  const r = new Reader(buf, 0, buf.length);
  const out: Required<PluginRequest> = {
    header: newMap(),
    trailer: newMap(),
    body: EMPTY,
    type: "",
  };
  while (r.pos < r.end) {
    const tag = r.varint();
    switch (tag) {
      case 0x0a:
        r.mapEntry(out.header);
        break;
      case 0x12:
        r.mapEntry(out.trailer);
        break;
      case 0x1a:
        out.body = r.bytes();
        break;
      case 0x22:
        out.type = r.string();
        break;
      default:
        r.skip(tag & 7);
    }
  }
  return out;
}

/**
 * Decodes `proto.Response` bytes.
 *
 * @param buf The message bytes.
 * @returns The response with every field present.
 * @throws {ProtoDecodeError} when the bytes are not a valid message.
 */
export function decodeResponse(buf: Uint8Array): PluginResponse {
  const r = new Reader(buf, 0, buf.length);
  const out: PluginResponse = { header: newMap(), trailer: newMap(), body: EMPTY, status: 0 };
  while (r.pos < r.end) {
    const tag = r.varint();
    switch (tag) {
      case 0x0a:
        r.mapEntry(out.header);
        break;
      case 0x12:
        r.mapEntry(out.trailer);
        break;
      case 0x1a:
        out.body = r.bytes();
        break;
      case 0x20:
        out.status = r.int32();
        break;
      default:
        r.skip(tag & 7);
    }
  }
  return out;
}

/**
 * Encodes `grpc.health.v1.HealthCheckRequest { string service = 1; }`.
 *
 * @param service The service name.
 * @returns The message bytes.
 */
export function encodeHealthRequest(service: string): Uint8Array {
  const len = utf8Length(service);
  if (len === 0) return new Uint8Array(0);
  const w = new Writer(1 + varintSize(len) + len);
  w.byte(0x0a);
  w.string(service, len);
  return w.buf;
}

/**
 * Decodes `grpc.health.v1.HealthCheckRequest`.
 *
 * @param buf The message bytes.
 * @returns The service name asked about.
 */
export function decodeHealthRequest(buf: Uint8Array): string {
  const r = new Reader(buf, 0, buf.length);
  let service = "";
  while (r.pos < r.end) {
    const tag = r.varint();
    if (tag === 0x0a) service = r.string();
    else r.skip(tag & 7);
  }
  return service;
}

const SERVING_STATUSES: ServingStatus[] = ["UNKNOWN", "SERVING", "NOT_SERVING", "SERVICE_UNKNOWN"];

/**
 * Encodes `grpc.health.v1.HealthCheckResponse { ServingStatus status = 1; }`.
 *
 * @param status The status.
 * @returns The message bytes.
 */
export function encodeHealthResponse(status: ServingStatus): Uint8Array {
  const n = SERVING_STATUSES.indexOf(status);
  return n <= 0 ? new Uint8Array(0) : Uint8Array.of(0x08, n);
}

/**
 * Decodes `grpc.health.v1.HealthCheckResponse`.
 *
 * @param buf The message bytes.
 * @returns The serving status; an unknown number reads as `UNKNOWN`.
 */
export function decodeHealthResponse(buf: Uint8Array): ServingStatus {
  const r = new Reader(buf, 0, buf.length);
  let n = 0;
  while (r.pos < r.end) {
    const tag = r.varint();
    if (tag === 0x08) n = r.int32();
    else r.skip(tag & 7);
  }
  return SERVING_STATUSES[n] ?? "UNKNOWN";
}
