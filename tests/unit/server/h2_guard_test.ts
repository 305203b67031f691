/**
 * The HTTP/2 frame guard of the h2c and TLS pipes: fed byte streams split at every
 * offset, it sees the same frames and breaks the same limit at the same frame.
 */

import assert from "node:assert/strict";
import {
  DEFAULT_H2_LIMITS,
  ENHANCE_YOUR_CALM,
  FRAME_SIZE_ERROR,
  goawayFrame,
  H2Guard,
  type H2Violation,
  isClientCancel,
} from "../../../src/server/h2_guard.ts";

const PREFACE = new TextEncoder().encode("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
const DATA = 0, HEADERS = 1, PRIORITY = 2, RST_STREAM = 3, SETTINGS = 4, PING = 6;
const WINDOW_UPDATE = 8, CONTINUATION = 9;

function frame(type: number, flags: number, streamId: number, length: number): Uint8Array {
  const bytes = new Uint8Array(9 + length);
  bytes[0] = length >> 16;
  bytes[1] = (length >> 8) & 0xff;
  bytes[2] = length & 0xff;
  bytes[3] = type;
  bytes[4] = flags;
  new DataView(bytes.buffer).setUint32(5, streamId);
  // A payload that looks like frame headers, so a scanner that loses its place shows it.
  bytes.fill(0x09, 9);
  return bytes;
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Feeds `bytes` cut at `cuts`; returns the violation and how many bytes were fed before it. */
function feed(guard: H2Guard, bytes: Uint8Array, cuts: number[]): H2Violation | null {
  let from = 0;
  for (const cut of [...cuts, bytes.length]) {
    const violation = guard.inbound(bytes.subarray(from, cut));
    if (violation !== null) return violation;
    from = cut;
  }
  return null;
}

const frozen = () => 0;

/** Every way to cut `bytes` in two, and in three at offsets `step` apart. */
function* splits(length: number, step = 7): Generator<number[]> {
  yield [];
  for (let i = 0; i <= length; i++) yield [i];
  for (let i = 0; i <= length; i += step) {
    for (let j = i; j <= length; j += step) yield [i, j];
  }
}

const SETTINGS_FRAME = frame(SETTINGS, 0, 0, 12);
const benign = concat(
  PREFACE,
  SETTINGS_FRAME,
  frame(WINDOW_UPDATE, 0, 0, 4),
  frame(HEADERS, 0x4, 1, 30),
  frame(DATA, 0, 1, 100),
  frame(DATA, 0x1, 1, 0),
  frame(SETTINGS, 0x1, 0, 0),
  frame(HEADERS, 0x0, 3, 20),
  frame(CONTINUATION, 0x4, 3, 10),
  frame(PING, 0, 0, 8),
  frame(RST_STREAM, 0, 3, 4),
  frame(PRIORITY, 0, 5, 5),
  frame(DATA, 0, 1, 16_384),
);

Deno.test("h2 guard: a well-behaved stream passes, however it is cut", () => {
  for (const cuts of splits(benign.length, 997)) {
    const guard = new H2Guard({}, frozen);
    assert.equal(feed(guard, benign, cuts), null, `cuts ${cuts}`);
    assert.equal(guard.lastStreamId, 3);
  }
  // A byte at a time too.
  const guard = new H2Guard({}, frozen);
  for (let i = 0; i < benign.length; i++) {
    assert.equal(guard.inbound(benign.subarray(i, i + 1)), null);
  }
});

Deno.test("h2 guard: a PING flood breaks the limit at the same frame, however it is cut", () => {
  const limits = { controlBurst: 5, controlPerSecond: 100 };
  // SETTINGS (1) + 4 PINGs fill the burst; the 5th PING breaks it.
  const head = concat(PREFACE, SETTINGS_FRAME, frame(HEADERS, 0x5, 1, 3));
  const pings = Array.from({ length: 4 }, () => frame(PING, 0, 0, 8));
  const ok = concat(head, ...pings);
  const stream = concat(ok, frame(PING, 0, 0, 8), frame(PING, 0, 0, 8));
  for (const cuts of splits(stream.length, 3)) {
    const guard = new H2Guard(limits, frozen);
    const violation = feed(guard, stream, cuts);
    assert.ok(violation !== null, `cuts ${cuts}`);
    assert.equal(violation.frameType, "PING");
    assert.equal(violation.errorCode, ENHANCE_YOUR_CALM);
    // Everything before the offending frame's header passes on its own.
    const before = new H2Guard(limits, frozen);
    assert.equal(feed(before, ok, cuts.filter((c) => c <= ok.length)), null);
    // Once broken, it stays broken.
    assert.equal(guard.inbound(new Uint8Array(0))?.frameType, "PING");
  }
});

Deno.test("h2 guard: the control bucket refills at its rate", () => {
  let now = 0;
  const guard = new H2Guard({ controlBurst: 10, controlPerSecond: 100 }, () => now);
  assert.equal(guard.inbound(PREFACE), null);
  // One PING every 10 ms is the sustained rate: never too many.
  for (let i = 0; i < 1000; i++) {
    now += 10;
    assert.equal(guard.inbound(frame(PING, 0, 0, 8)), null, `ping ${i}`);
  }
  // A quiet second fills the bucket; then a burst: 10 pass, the 11th breaks it.
  now += 1000;
  for (let i = 0; i < 10; i++) assert.equal(guard.inbound(frame(PING, 0x1, 0, 8)), null);
  assert.equal(guard.inbound(frame(SETTINGS, 0, 0, 0))?.frameType, "SETTINGS");
});

Deno.test("h2 guard: SETTINGS and RST_STREAM floods with the default limits", () => {
  for (const [type, name] of [[SETTINGS, "SETTINGS"], [RST_STREAM, "RST_STREAM"]] as const) {
    const guard = new H2Guard({}, frozen);
    assert.equal(guard.inbound(PREFACE), null);
    const one = frame(type, 0, type === RST_STREAM ? 1 : 0, type === RST_STREAM ? 4 : 6);
    let sent = 0;
    let violation: H2Violation | null = null;
    while (violation === null && sent < 10_000) {
      violation = guard.inbound(one);
      sent++;
    }
    assert.equal(violation?.frameType, name);
    assert.equal(sent, DEFAULT_H2_LIMITS.controlBurst + 1);
  }
});

Deno.test("h2 guard: empty frames in a row (Envoy: at most 1)", () => {
  const guard = new H2Guard({}, frozen);
  const start = concat(PREFACE, frame(HEADERS, 0x4, 1, 3));
  assert.equal(guard.inbound(start), null);
  assert.equal(guard.inbound(frame(DATA, 0, 1, 0)), null);
  assert.equal(guard.inbound(frame(DATA, 0, 1, 5)), null); // a payload resets the count
  assert.equal(guard.inbound(frame(DATA, 0, 1, 0)), null);
  assert.equal(guard.inbound(frame(PING, 0, 0, 8)), null); // other frames do not count
  assert.equal(guard.inbound(frame(DATA, 0x1, 1, 0)), null); // END_STREAM is not empty
  assert.equal(guard.inbound(frame(HEADERS, 0x4, 3, 0)), null);
  const violation = guard.inbound(frame(CONTINUATION, 0x4, 3, 0));
  assert.equal(violation?.frameType, "CONTINUATION");
  assert.equal(violation?.errorCode, ENHANCE_YOUR_CALM);
});

Deno.test("h2 guard: PRIORITY frames per stream opened (Envoy: 100)", () => {
  const guard = new H2Guard({}, frozen);
  assert.equal(guard.inbound(PREFACE), null);
  for (let i = 0; i < 100; i++) assert.equal(guard.inbound(frame(PRIORITY, 0, 7, 5)), null);
  // A new stream allows 100 more; a HEADERS frame on an old stream does not.
  assert.equal(guard.inbound(frame(HEADERS, 0x5, 1, 3)), null);
  assert.equal(guard.inbound(frame(HEADERS, 0x5, 1, 3)), null);
  for (let i = 0; i < 100; i++) assert.equal(guard.inbound(frame(PRIORITY, 0, 7, 5)), null);
  assert.equal(guard.inbound(frame(PRIORITY, 0, 7, 5))?.frameType, "PRIORITY");
});

Deno.test("h2 guard: WINDOW_UPDATE frames per DATA frame sent, counted however the server's bytes are cut", () => {
  const outbound = concat(
    frame(SETTINGS, 0, 0, 6),
    frame(HEADERS, 0x4, 1, 40),
    ...Array.from({ length: 5 }, () => frame(DATA, 0, 1, 1000)),
    frame(PING, 0x1, 0, 8),
  );
  for (let cut = 0; cut <= outbound.length; cut++) {
    const guard = new H2Guard({}, frozen);
    guard.outbound(outbound.subarray(0, cut));
    guard.outbound(outbound.subarray(cut));
    assert.ok(guard.outboundAtBoundary);
    assert.equal(guard.inbound(concat(PREFACE, frame(HEADERS, 0x5, 1, 3))), null);
    // 1 + 2 × (1 stream + 10 × 5 DATA frames) = 103 pass, the 104th breaks it.
    for (let i = 0; i < 103; i++) {
      assert.equal(guard.inbound(frame(WINDOW_UPDATE, 0, 0, 4)), null, `cut ${cut} wu ${i}`);
    }
    assert.equal(guard.inbound(frame(WINDOW_UPDATE, 0, 1, 4))?.frameType, "WINDOW_UPDATE");
  }
  const guard = new H2Guard({}, frozen);
  guard.outbound(outbound.subarray(0, 12));
  assert.ok(!guard.outboundAtBoundary, "inside a frame");
});

Deno.test("h2 guard: a frame above the max frame size is a FRAME_SIZE_ERROR", () => {
  const ok = concat(PREFACE, frame(HEADERS, 0x4, 1, 3), frame(DATA, 0, 1, 16_384));
  const big = frame(DATA, 0, 1, 16_385);
  const stream = concat(ok, big.subarray(0, 100));
  for (const cuts of splits(stream.length, 1000)) {
    const guard = new H2Guard({}, frozen);
    const violation = feed(guard, stream, cuts);
    assert.equal(violation?.errorCode, FRAME_SIZE_ERROR, `cuts ${cuts}`);
    assert.equal(violation?.frameType, "DATA");
    assert.match(violation!.reason, /16385 bytes/);
  }
  // The client's own SETTINGS_MAX_FRAME_SIZE does not raise what the server accepts.
  const settings = frame(SETTINGS, 0, 0, 6);
  new DataView(settings.buffer).setUint16(9, 0x5);
  new DataView(settings.buffer).setUint32(11, 1 << 20);
  const guard = new H2Guard({}, frozen);
  assert.equal(guard.inbound(concat(PREFACE, settings)), null);
  assert.equal(guard.inbound(frame(HEADERS, 0x4, 1, 20_000))?.errorCode, FRAME_SIZE_ERROR);
});

Deno.test("h2 guard: the GOAWAY frame and client cancels", () => {
  assert.deepEqual(
    [...goawayFrame(7, ENHANCE_YOUR_CALM)],
    [0, 0, 8, 7, 0, 0, 0, 0, 0, 0, 0, 0, 7, 0, 0, 0, 0x0b],
  );
  assert.ok(isClientCancel(new DOMException("The request has been cancelled.", "AbortError")));
  assert.ok(!isClientCancel(new Error("boom")));
  assert.ok(!isClientCancel(undefined));
});
