/**
 * The Bolt v1 codec against a real peer's bytes: npm `sofa-bolt-node`'s own encoder writes
 * the frames (`fixtures/bolt_peer.cjs`, under Node.js), the codec decodes them and encodes
 * them back byte for byte, and the peer's decoder reads what the codec writes. Then the
 * framing (`readFrames`): frames split at every offset, a frame over the limit refused
 * from its head alone, bad header maps, unknown protocol bytes; and the status mapping.
 */

import assert from "node:assert/strict";
import {
  BoltStatus,
  boltStatusOf,
  createProtocolCodec,
} from "../../../extensions/protocols/bolt/mod.ts";
import type { ProtocolFrame } from "../../../src/protocol/api.ts";
import { ProtocolError } from "../../../src/protocol/api.ts";
import { FrameTooLargeError, readFrames } from "../../../src/protocol/frame_io.ts";

const PEER = new URL("./fixtures/bolt_peer.cjs", import.meta.url).pathname;
const SERVICE = "com.example.EchoService:1.0";
const codec = await createProtocolCodec({});

function hex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

function unhex(text: string): Uint8Array {
  return Uint8Array.from(text.match(/../g) ?? [], (b) => parseInt(b, 16));
}

async function peer(...args: string[]): Promise<unknown> {
  const output = await new Deno.Command("node", { args: [PEER, ...args], stdin: "null" }).output();
  const text = new TextDecoder().decode(output.stdout).trim();
  assert.ok(output.success, `bolt_peer.cjs failed: ${new TextDecoder().decode(output.stderr)}`);
  return JSON.parse(text);
}

/** Frames written by sofa-bolt-node's encoder, by kind. */
const PEER_FRAMES = Object.fromEntries(
  Object.entries(await peer("encode") as Record<string, string>).map(([k, v]) => [k, unhex(v)]),
) as Record<
  "request" | "oneway" | "response" | "error_response" | "heartbeat" | "heartbeat_ack",
  Uint8Array
>;

/** What sofa-bolt-node's decoder made of a frame. */
interface PeerDecoded {
  type: string;
  packetId: number;
  codecType: string | null;
  timeout: number | null;
  requestProps: Record<string, string> | null;
  methodName: string | null;
  error: string | null;
  appResponse: unknown;
}

async function peerDecode(...frames: Uint8Array[]): Promise<PeerDecoded[]> {
  return await peer("decode", ...frames.map(hex)) as PeerDecoded[];
}

/** A connection that hands out `chunks` one read at a time, then end of stream (or never). */
function chunkedConn(chunks: Uint8Array[], options: { hang?: boolean } = {}) {
  const queue = [...chunks];
  let delivered = 0;
  const conn = {
    read(buffer: Uint8Array): Promise<number | null> {
      const chunk = queue.shift();
      if (chunk === undefined) {
        return options.hang ? new Promise<number | null>(() => {}) : Promise.resolve(null);
      }
      // A chunk larger than the buffer is handed out over several reads.
      const n = Math.min(chunk.length, buffer.length);
      buffer.set(chunk.subarray(0, n));
      if (n < chunk.length) queue.unshift(chunk.subarray(n));
      delivered += n;
      return Promise.resolve(n);
    },
  };
  return { conn: conn as unknown as Deno.Conn, delivered: () => delivered };
}

async function framesOf(chunks: Uint8Array[], maxFrameBytes = 1 << 20): Promise<Uint8Array[]> {
  const out: Uint8Array[] = [];
  await readFrames(chunkedConn(chunks).conn, codec, maxFrameBytes, (f) => out.push(f));
  return out;
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

/** A request head (22 bytes) with the given lengths, the rest as sofa-bolt-node writes it. */
function requestHead(
  fields: {
    proto?: number;
    type?: number;
    cmdCode?: number;
    classLength?: number;
    headerLength?: number;
    contentLength?: number;
  } = {},
): Uint8Array {
  const head = new Uint8Array(22);
  const view = new DataView(head.buffer);
  head[0] = fields.proto ?? 1;
  head[1] = fields.type ?? 1;
  view.setUint16(2, fields.cmdCode ?? 1);
  head[4] = 1;
  view.setUint32(5, 9);
  head[9] = 1;
  view.setInt32(10, 3000);
  view.setUint16(14, fields.classLength ?? 0);
  view.setUint16(16, fields.headerLength ?? 0);
  view.setInt32(18, fields.contentLength ?? 0);
  return head;
}

/** A whole request frame whose header map is exactly `map`. */
function withHeaderMap(map: Uint8Array): Uint8Array {
  return concat(requestHead({ headerLength: map.length }), map);
}

function int32(n: number): Uint8Array {
  const out = new Uint8Array(4);
  new DataView(out.buffer).setInt32(0, n);
  return out;
}

const ascii = (text: string) => new TextEncoder().encode(text);

function assertProtocolError(fn: () => unknown, message: RegExp): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof ProtocolError, `a ProtocolError, not ${error}`);
    assert.match(error.message, message);
    return true;
  });
}

// ---------------------------------------------------------------------------------------
// Frames from sofa-bolt-node's encoder

Deno.test("Bolt codec: a request from sofa-bolt-node decodes field by field", () => {
  const bytes = PEER_FRAMES.request;
  assert.equal(codec.frameLength(bytes), bytes.length);
  const frame = codec.decode(bytes);
  assert.equal(frame.type, "request");
  assert.equal(frame.requestId, 1);
  assert.equal(frame.timeoutMs, 3000);
  assert.equal(frame.status, 0);
  // sofa-bolt-node puts `service` in the header map; other request props go in the content.
  assert.deepEqual(frame.headers, [["service", SERVICE]]);
  assert.deepEqual(frame.meta, {
    cmdCode: 1,
    version: 1,
    codec: 1,
    className: "com.alipay.sofa.rpc.core.request.SofaRequest",
  });
  // The content is the Hessian2 SofaRequest, untouched: its bytes are the frame's tail.
  assert.deepEqual(frame.body, bytes.subarray(bytes.length - frame.body.length));
  assert.equal(frame.body[0], 0x4f); // Hessian 'O': a class definition
  assert.deepEqual(codec.requestLine(frame), { method: "REQUEST", path: `/${SERVICE}` });
});

Deno.test("Bolt codec: a oneway request from sofa-bolt-node is a oneway frame", () => {
  const frame = codec.decode(PEER_FRAMES.oneway);
  assert.equal(frame.type, "oneway");
  assert.equal(frame.requestId, 2);
  assert.equal(frame.timeoutMs, 1000);
  assert.equal(PEER_FRAMES.oneway[1], 2);
  assert.deepEqual(codec.requestLine(frame), { method: "ONEWAY", path: `/${SERVICE}` });
});

Deno.test("Bolt codec: responses from sofa-bolt-node decode with their status", () => {
  const ok = codec.decode(PEER_FRAMES.response);
  assert.equal(ok.type, "response");
  assert.equal(ok.requestId, 3);
  assert.equal(ok.status, BoltStatus.SUCCESS);
  assert.equal(ok.timeoutMs, 0);
  assert.deepEqual(ok.headers, []);
  assert.equal(
    (ok.meta as { className: string }).className,
    "com.alipay.sofa.rpc.core.response.SofaResponse",
  );
  assert.equal(codec.httpStatus(ok), 200);
  const failed = codec.decode(PEER_FRAMES.error_response);
  assert.equal(failed.requestId, 4);
  assert.equal(failed.status, BoltStatus.SERVER_EXCEPTION);
  assert.equal(codec.httpStatus(failed), 500);
});

Deno.test("Bolt codec: heartbeats and their acks from sofa-bolt-node", () => {
  const heartbeat = codec.decode(PEER_FRAMES.heartbeat);
  assert.equal(heartbeat.type, "heartbeat");
  assert.equal(heartbeat.requestId, 5);
  assert.equal(heartbeat.body.length, 0);
  assert.equal((heartbeat.meta as { cmdCode: number }).cmdCode, 0);
  const ack = codec.decode(PEER_FRAMES.heartbeat_ack);
  assert.equal(ack.type, "heartbeat_ack");
  assert.equal(ack.requestId, 6);
  // The codec's own answer to the peer's heartbeat is, byte for byte, the ack the peer's
  // encoder writes for it (id aside).
  const answer = codec.encode(codec.heartbeatAck(heartbeat));
  const expected = PEER_FRAMES.heartbeat_ack.slice();
  new DataView(expected.buffer).setUint32(5, 5);
  assert.equal(hex(answer), hex(expected));
});

Deno.test("Bolt codec: every sofa-bolt-node frame encodes back to the same bytes", () => {
  for (const [name, bytes] of Object.entries(PEER_FRAMES)) {
    const frame = codec.decode(bytes);
    assert.equal(hex(codec.encode(frame)), hex(bytes), name);
    // With the id rewritten (as the pool does), only bytes 5..8 change.
    const moved = codec.encode({ ...frame, requestId: 0x7fffffff });
    assert.equal(hex(moved.subarray(0, 5)), hex(bytes.subarray(0, 5)), name);
    assert.equal(new DataView(moved.buffer).getUint32(5), 0x7fffffff, name);
    assert.equal(hex(moved.subarray(9)), hex(bytes.subarray(9)), name);
  }
});

Deno.test("Bolt codec: sofa-bolt-node's decoder reads what the codec writes", async () => {
  const request = codec.decode(PEER_FRAMES.request);
  // A filter added a header and the pool rewrote the id: the peer still reads the call.
  const changed = codec.encode({
    ...request,
    requestId: 41,
    headers: [...request.headers, ["x-added", "yes"]],
  });
  const statuses = [403, 404, 500, 502, 503, 504];
  const responses = statuses.map((status, i) =>
    codec.encode({ ...codec.respond(request, status, `reason ${status}`), requestId: 100 + i })
  );
  const heartbeat = codec.decode(PEER_FRAMES.heartbeat);
  const ack = codec.encode({ ...codec.heartbeatAck(heartbeat), requestId: 200 });
  const decoded = await peerDecode(changed, ...responses, ack);
  assert.equal(decoded.length, 2 + statuses.length, JSON.stringify(decoded));
  assert.equal(decoded[0].type, "request");
  assert.equal(decoded[0].packetId, 41);
  assert.equal(decoded[0].methodName, "echo");
  assert.equal(decoded[0].timeout, 3000);
  assert.equal(decoded[0].requestProps?.service, SERVICE);
  statuses.forEach((status, i) => {
    const reply = decoded[1 + i];
    assert.equal(reply.type, "response");
    assert.equal(reply.packetId, 100 + i);
    assert.equal(
      reply.error,
      `com.alipay.remoting.rpc.exception.RpcServerException: [mosaic] reason ${status} (status ${status})`,
    );
  });
  assert.deepEqual(decoded.at(-1)?.type, "heartbeat_ack");
  assert.deepEqual(decoded.at(-1)?.packetId, 200);
});

// ---------------------------------------------------------------------------------------
// Framing

Deno.test("Bolt codec: frameLength needs the whole head, then gives the frame's length", () => {
  for (const [name, bytes] of Object.entries(PEER_FRAMES)) {
    const head = bytes[1] === 0 ? 20 : 22;
    for (let n = 0; n < bytes.length; n++) {
      const length = codec.frameLength(bytes.subarray(0, n));
      assert.equal(length, n < head ? undefined : bytes.length, `${name} at ${n}`);
    }
  }
});

Deno.test("Bolt codec: frames split at every offset come out whole and in order", async () => {
  const all = Object.values(PEER_FRAMES);
  const stream = concat(...all);
  // Two reads, cut at every offset of the whole stream of six frames.
  for (let cut = 0; cut <= stream.length; cut++) {
    const frames = await framesOf([stream.subarray(0, cut), stream.subarray(cut)]);
    assert.equal(frames.length, all.length, `cut at ${cut}`);
    frames.forEach((frame, i) => assert.equal(hex(frame), hex(all[i]), `cut at ${cut}`));
  }
  // One byte a read.
  const bytewise = await framesOf(Array.from(stream, (b) => Uint8Array.of(b)));
  assert.deepEqual(bytewise.map(hex), all.map(hex));
  // Every frame split at every offset of its own, three reads each.
  for (const bytes of all) {
    for (let a = 0; a <= bytes.length; a++) {
      const b = Math.min(bytes.length, a + 7);
      const [frame, ...rest] = await framesOf([
        bytes.subarray(0, a),
        bytes.subarray(a, b),
        bytes.subarray(b),
      ]);
      assert.equal(rest.length, 0);
      assert.equal(hex(frame), hex(bytes));
    }
  }
});

Deno.test("Bolt codec: a frame larger than the read buffer is read whole", async () => {
  const request = codec.decode(PEER_FRAMES.request);
  const body = new Uint8Array(300_000).map((_, i) => i & 0xff);
  const big = codec.encode({ ...request, body });
  const frames = await framesOf([big.subarray(0, 1000), big.subarray(1000), PEER_FRAMES.heartbeat]);
  assert.equal(frames.length, 2);
  assert.deepEqual(codec.decode(frames[0]).body, body);
  assert.equal(codec.decode(frames[1]).type, "heartbeat");
});

Deno.test("Bolt codec: a frame over the limit is refused from its head alone", async () => {
  const head = requestHead({ contentLength: 100_000_000 });
  // The connection gives the head, then nothing ever: the refusal cannot wait for more.
  const { conn, delivered } = chunkedConn([head], { hang: true });
  await assert.rejects(
    readFrames(conn, codec, 65536, () => assert.fail("no frame")),
    (error: unknown) => {
      assert.ok(error instanceof FrameTooLargeError);
      assert.equal(error.message, "frame of 100000022 bytes is over the limit of 65536 bytes");
      return true;
    },
  );
  assert.equal(delivered(), 22);
  // Exactly at the limit is taken.
  const atLimit = concat(requestHead({ contentLength: 64 - 22 }), new Uint8Array(64 - 22));
  assert.equal((await framesOf([atLimit], 64)).length, 1);
  await assert.rejects(
    framesOf([concat(requestHead({ contentLength: 43 }), new Uint8Array(43))], 64),
    FrameTooLargeError,
  );
});

Deno.test("Bolt codec: a connection closed inside a frame is an error", async () => {
  await assert.rejects(
    framesOf([PEER_FRAMES.request.subarray(0, 30)]),
    /connection closed inside a frame/,
  );
});

// ---------------------------------------------------------------------------------------
// Bad input

Deno.test("Bolt codec: unknown protocol bytes are refused at the first byte", () => {
  assertProtocolError(
    () => codec.frameLength(ascii("G")),
    /^not a Bolt v1 frame \(protocol byte 0x47, expected 0x01\)$/,
  );
  // Bolt v2 (protocol byte 2) is a different head; the codec speaks v1 only.
  assertProtocolError(() => codec.frameLength(requestHead({ proto: 2 })), /protocol byte 0x02/);
  assertProtocolError(() => codec.frameLength(Uint8Array.of(0)), /protocol byte 0x00/);
  assertProtocolError(() => codec.frameLength(Uint8Array.of(1, 3)), /unknown Bolt command type 3/);
  assertProtocolError(
    () => codec.frameLength(requestHead({ contentLength: -1 })),
    /negative Bolt content length -1/,
  );
  // A response command code in a request, and a request command code in a response.
  assertProtocolError(
    () => codec.decode(requestHead({ cmdCode: 2 })),
    /command code 2 does not fit command type 1/,
  );
  const response = PEER_FRAMES.response.slice();
  new DataView(response.buffer).setUint16(2, 1);
  assertProtocolError(() => codec.decode(response), /command code 1 does not fit command type 0/);
  assertProtocolError(
    () => codec.decode(requestHead({ cmdCode: 7 })),
    /command code 7 does not fit/,
  );
});

Deno.test("Bolt codec: bad header maps are refused, never read past the map", () => {
  const key = ascii("service");
  const value = ascii(SERVICE);
  const good = concat(int32(key.length), key, int32(value.length), value);
  assert.deepEqual(codec.decode(withHeaderMap(good)).headers, [["service", SERVICE]]);
  // A null value (length -1) reads as "", and an empty one too.
  assert.deepEqual(
    codec.decode(
      withHeaderMap(concat(int32(1), ascii("a"), int32(-1), int32(1), ascii("b"), int32(0))),
    )
      .headers,
    [["a", ""], ["b", ""]],
  );
  const cases: [string, Uint8Array, RegExp][] = [
    ["a key longer than the map", concat(int32(1000), key), /overruns its length/],
    ["a negative key length", concat(int32(-1), int32(0)), /overruns its length/],
    ["a map that ends inside a key length", Uint8Array.of(0, 0, 0), /inside a key length/],
    ["a key with no value length", concat(int32(key.length), key), /overruns its length/],
    [
      "a value longer than the map",
      concat(int32(key.length), key, int32(1000), value),
      /overruns its length/,
    ],
    ["a value length below -1", concat(int32(1), ascii("a"), int32(-2)), /value length -2/],
  ];
  for (const [name, map, message] of cases) {
    assertProtocolError(() => codec.decode(withHeaderMap(map)), message);
    // The same map followed by more bytes in the frame (content) is still refused: the
    // map's own length bounds it.
    const frame = concat(
      requestHead({ headerLength: map.length, contentLength: 2000 }),
      map,
      new Uint8Array(2000),
    );
    assertProtocolError(() => codec.decode(frame), message);
    assert.ok(name);
  }
  // Lengths in the head that do not add up to the frame given.
  assertProtocolError(
    () => codec.decode(concat(requestHead({ headerLength: 4 }), int32(0), Uint8Array.of(0))),
    /lengths do not add up/,
  );
});

// ---------------------------------------------------------------------------------------
// Statuses

Deno.test("Bolt codec: proxy statuses map to Bolt statuses as MOSN maps them", () => {
  const expected: [number, number][] = [
    [200, BoltStatus.SUCCESS],
    [400, BoltStatus.CODEC_EXCEPTION],
    [404, BoltStatus.NO_PROCESSOR], // no route
    [502, BoltStatus.CONNECTION_CLOSED], // no healthy upstream, upstream gone
    [503, BoltStatus.SERVER_THREADPOOL_BUSY], // overflow
    [504, BoltStatus.TIMEOUT], // timeout
    [403, BoltStatus.UNKNOWN],
    [500, BoltStatus.UNKNOWN],
  ];
  const request = codec.decode(PEER_FRAMES.request);
  for (const [status, bolt] of expected) {
    assert.equal(boltStatusOf(status), bolt, `${status}`);
    const reply = codec.respond(request, status, "why");
    assert.equal(reply.type, "response");
    assert.equal(reply.requestId, request.requestId);
    assert.equal(reply.status, bolt, `${status}`);
    // Encoded, the status is the 2 bytes at offset 10 of the response head.
    const bytes = codec.encode(reply);
    assert.equal(new DataView(bytes.buffer).getUint16(10), bolt);
    assert.equal(codec.decode(bytes).status, bolt);
  }
  // Back: the upstream's Bolt status in HTTP terms.
  const back: [number, number][] = [
    [BoltStatus.SUCCESS, 200],
    [BoltStatus.SERVER_THREADPOOL_BUSY, 503],
    [BoltStatus.TIMEOUT, 504],
    [BoltStatus.CONNECTION_CLOSED, 502],
    [BoltStatus.SERVER_EXCEPTION, 500],
    [BoltStatus.NO_PROCESSOR, 500],
    [BoltStatus.UNKNOWN, 500],
  ];
  for (const [bolt, status] of back) {
    const frame: ProtocolFrame = { ...codec.decode(PEER_FRAMES.response), status: bolt };
    assert.equal(codec.httpStatus(frame), status, `0x${bolt.toString(16)}`);
  }
  // A success the proxy makes (a filter's respond(200)) carries no exception.
  assert.equal(codec.respond(request, 200, "").body.length, 0);
  // Non-Hessian content gets no Hessian exception either.
  const protobuf = { ...request, meta: { ...(request.meta as object), codec: 11 } };
  const reply = codec.respond(protobuf, 404, "no route");
  assert.equal(reply.body.length, 0);
  assert.equal((reply.meta as { codec: number }).codec, 11);
});
