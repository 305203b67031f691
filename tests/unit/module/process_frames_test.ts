import assert from "node:assert/strict";
import {
  encodeFrame,
  FrameDecoder,
  FrameError,
  MAX_FRAME_BYTES,
} from "../../../src/module/process/frames.ts";

function decodeAll(chunks: Uint8Array[]): unknown[] {
  const decoder = new FrameDecoder();
  const out: unknown[] = [];
  for (const chunk of chunks) decoder.push(chunk, (message) => out.push(message));
  return out;
}

Deno.test("a frame carries JSON, byte arrays beside it and holes in tuples", () => {
  const message = {
    t: "done",
    body: new TextEncoder().encode("héllo"),
    respond: [403, undefined, new Uint8Array([0, 255])],
    route: [undefined, "c", "vh", { nested: new Uint8Array([7]) }],
  };
  const [decoded] = decodeAll([encodeFrame(message)]) as [typeof message];
  assert.deepEqual(decoded.body, message.body);
  assert.ok(decoded.body instanceof Uint8Array);
  assert.equal(decoded.respond.length, 3);
  assert.equal(decoded.respond[1], undefined);
  assert.deepEqual(decoded.respond[2], new Uint8Array([0, 255]));
  assert.equal(decoded.route[0], undefined);
  assert.deepEqual(decoded.route[3], { nested: new Uint8Array([7]) });
});

Deno.test("frames split across chunks and packed in one chunk decode in order", () => {
  const frames = Array.from({ length: 50 }, (_, i) => encodeFrame({ i, pad: "x".repeat(i * 997) }));
  const all = new Uint8Array(frames.reduce((n, f) => n + f.length, 0));
  let offset = 0;
  for (const frame of frames) {
    all.set(frame, offset);
    offset += frame.length;
  }
  const chunks: Uint8Array[] = [];
  for (let at = 0, size = 1; at < all.length; at += size, size = (size * 7) % 5003 + 1) {
    chunks.push(all.slice(at, at + size));
  }
  const decoded = decodeAll(chunks) as { i: number }[];
  assert.deepEqual(decoded.map((m) => m.i), Array.from({ length: 50 }, (_, i) => i));
  assert.deepEqual(decodeAll([all]).length, 50);
});

Deno.test("bytes that are not a frame fail with what they read", () => {
  assert.throws(
    () => decodeAll([new TextEncoder().encode("hello from console.log\n")]),
    (error) => error instanceof FrameError && error.message.includes('"hello from console.log\\n"'),
  );
});

Deno.test("a message over the frame limit is refused when it is encoded", () => {
  assert.throws(
    () => encodeFrame({ body: new Uint8Array(MAX_FRAME_BYTES) }),
    (error) => error instanceof FrameError && error.message.includes("frame limit"),
  );
});
