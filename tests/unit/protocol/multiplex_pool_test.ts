/**
 * The multiplexing upstream pool with the Bolt codec, against a Bolt server on loopback
 * that this test scripts frame by frame: ids rewritten both ways, answers out of order,
 * heartbeats from the upstream, oneway, an upstream that dies with requests outstanding,
 * a caller that gives up, a frame's own timeout.
 */

import assert from "node:assert/strict";
import {
  type BoltMeta,
  BoltStatus,
  createProtocolCodec,
} from "../../../extensions/protocols/bolt/mod.ts";
import type { ProtocolFrame } from "../../../src/protocol/api.ts";
import { FrameWriter, readFrames } from "../../../src/protocol/frame_io.ts";
import { frameOf, headersOfFrame } from "../../../src/protocol/headers.ts";
import { MultiplexPool } from "../../../src/protocol/pool.ts";
import { type UpstreamRequest, UpstreamResetError } from "../../../src/upstream/types.ts";

const codec = await createProtocolCodec({});
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** A scripted Bolt upstream: every frame it gets is handed to the test. */
function scriptedUpstream() {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  const received: { frame: ProtocolFrame; writer: FrameWriter; conn: Deno.Conn }[] = [];
  const waiters: (() => void)[] = [];
  const conns = new Set<Deno.Conn>();
  const loops: Promise<void>[] = [];
  const accepting = (async () => {
    try {
      for await (const conn of listener) {
        conns.add(conn);
        const writer = new FrameWriter(conn, () => {});
        loops.push(
          readFrames(conn, codec, 1 << 20, (bytes) => {
            received.push({ frame: codec.decode(bytes), writer, conn });
            waiters.splice(0).forEach((wake) => wake());
          }).catch(() => {}).finally(() => {
            conns.delete(conn);
            try {
              conn.close();
            } catch { /* closed */ }
          }),
        );
      }
    } catch { /* closed */ }
  })();
  return {
    port,
    received,
    connections: () => conns.size,
    /** Waits until `n` frames came in. */
    async frames(n: number) {
      while (received.length < n) await new Promise<void>((wake) => waiters.push(wake));
      return received.slice(0, n);
    },
    answer(
      to: { frame: ProtocolFrame; writer: FrameWriter },
      text: string,
      status: number = BoltStatus.SUCCESS,
    ) {
      to.writer.write(codec.encode({
        type: "response",
        requestId: to.frame.requestId,
        headers: [["answered", text]],
        body: encoder.encode(text),
        status,
        timeoutMs: 0,
        meta: { cmdCode: 2, version: 1, codec: 1, className: "" } satisfies BoltMeta,
      }));
    },
    dropConnections() {
      for (const conn of conns) conn.close();
    },
    async close() {
      listener.close();
      await accepting;
      for (const conn of conns) {
        try {
          conn.close();
        } catch { /* closed */ }
      }
      await Promise.all(loops);
    },
  };
}

/** An upstream request carrying a Bolt request frame, as the listener hands it over. */
function request(
  text: string,
  options: { id?: number; oneway?: boolean; timeoutMs?: number; signal?: AbortSignal } = {},
): UpstreamRequest {
  const frame: ProtocolFrame = {
    type: options.oneway ? "oneway" : "request",
    requestId: options.id ?? 7,
    headers: [["service", "com.example.EchoService:1.0"]],
    body: encoder.encode(text),
    status: 0,
    timeoutMs: options.timeoutMs ?? 3000,
    meta: {
      cmdCode: 1,
      version: 1,
      codec: 1,
      className: "com.alipay.sofa.rpc.core.request.SofaRequest",
    } satisfies BoltMeta,
  };
  const headers = headersOfFrame(frame);
  frameOf(headers)!.body = null;
  return {
    method: "REQUEST",
    path: "/com.example.EchoService:1.0",
    headers,
    body: null,
    signal: options.signal,
  };
}

function pool(port: number): MultiplexPool {
  return new MultiplexPool(
    { hostname: "127.0.0.1", port, address: `127.0.0.1:${port}` },
    codec,
    { connectTimeoutMs: 1000, maxFrameBytes: 1 << 20 },
  );
}

Deno.test("multiplex pool: one connection, ids of its own, answers out of order matched to callers", async () => {
  const upstream = scriptedUpstream();
  const p = pool(upstream.port);
  try {
    // Three callers whose clients all used id 7 (different downstream connections).
    const calls = ["a", "b", "c"].map((t) => p.request(request(t, { id: 7 })));
    const got = await upstream.frames(3);
    assert.equal(upstream.connections(), 1);
    assert.equal(new Set(got.map((g) => g.frame.requestId)).size, 3, "distinct upstream ids");
    // The request frame is forwarded as it came, but for the id.
    for (const g of got) {
      assert.equal(g.frame.type, "request");
      assert.deepEqual(g.frame.headers, [["service", "com.example.EchoService:1.0"]]);
      assert.equal(g.frame.timeoutMs, 3000);
    }
    // Answered last first.
    for (const g of [...got].reverse()) upstream.answer(g, `re:${decoder.decode(g.frame.body)}`);
    const answers = await Promise.all(calls);
    assert.deepEqual(answers.map((a) => decoder.decode(a.bufferedBody!)), ["re:a", "re:b", "re:c"]);
    for (const a of answers) assert.equal(a.status, 200);
    assert.equal(answers[0].headers.get("answered"), "re:a");
    // The answer's frame is remembered for the listener (it rewrites the id back).
    assert.equal(frameOf(answers[0].headers)?.frame.type, "response");
  } finally {
    p.close();
    await upstream.close();
  }
});

Deno.test("multiplex pool: the upstream's status maps back; a heartbeat from it is answered", async () => {
  const upstream = scriptedUpstream();
  const p = pool(upstream.port);
  try {
    const busy = p.request(request("x"));
    const [g] = await upstream.frames(1);
    upstream.answer(g, "busy", BoltStatus.SERVER_THREADPOOL_BUSY);
    assert.equal((await busy).status, 503);
    // The upstream pings the pool's connection.
    g.writer.write(codec.encode({
      type: "heartbeat",
      requestId: 99,
      headers: [],
      body: new Uint8Array(0),
      status: 0,
      timeoutMs: 1000,
      meta: { cmdCode: 0, version: 1, codec: 1, className: "" } satisfies BoltMeta,
    }));
    const [, ack] = await upstream.frames(2);
    assert.equal(ack.frame.type, "heartbeat_ack");
    assert.equal(ack.frame.requestId, 99);
  } finally {
    p.close();
    await upstream.close();
  }
});

Deno.test("multiplex pool: a oneway request resolves once written, with nothing to wait for", async () => {
  const upstream = scriptedUpstream();
  const p = pool(upstream.port);
  try {
    const answer = await p.request(request("note", { oneway: true }));
    assert.equal(answer.status, 200);
    const [g] = await upstream.frames(1);
    assert.equal(g.frame.type, "oneway");
    assert.equal(decoder.decode(g.frame.body), "note");
  } finally {
    p.close();
    await upstream.close();
  }
});

Deno.test("multiplex pool: an upstream that dies fails every outstanding request at once; the next reconnects", async () => {
  const upstream = scriptedUpstream();
  const p = pool(upstream.port);
  try {
    const calls = ["a", "b"].map((t) => p.request(request(t)));
    await upstream.frames(2);
    const started = Date.now();
    upstream.dropConnections();
    for (const call of calls) await assert.rejects(call, UpstreamResetError);
    assert.ok(Date.now() - started < 1000);
    const again = p.request(request("c"));
    const [, , g] = await upstream.frames(3);
    upstream.answer(g, "ok");
    assert.equal(decoder.decode((await again).bufferedBody!), "ok");
  } finally {
    p.close();
    await upstream.close();
  }
});

Deno.test("multiplex pool: a caller that gives up is forgotten; its late answer is dropped", async () => {
  const upstream = scriptedUpstream();
  const p = pool(upstream.port);
  try {
    const controller = new AbortController();
    const gaveUp = p.request(request("late", { signal: controller.signal }));
    const [first] = await upstream.frames(1);
    controller.abort(new Error("client went away"));
    await assert.rejects(gaveUp, /client went away/);
    upstream.answer(first, "too late");
    const next = p.request(request("next"));
    const [, second] = await upstream.frames(2);
    upstream.answer(second, "on time");
    assert.equal(decoder.decode((await next).bufferedBody!), "on time");
    assert.equal(upstream.connections(), 1, "the late answer did not break the connection");
  } finally {
    p.close();
    await upstream.close();
  }
});

Deno.test("multiplex pool: no answer within the frame's timeout (and a grace) fails the request", async () => {
  const upstream = scriptedUpstream();
  const p = pool(upstream.port);
  try {
    const started = Date.now();
    await assert.rejects(p.request(request("never", { timeoutMs: 100 })), /no answer .* in time/);
    const waited = Date.now() - started;
    assert.ok(waited >= 1000 && waited < 3000, `${waited} ms`);
  } finally {
    p.close();
    await upstream.close();
  }
});

Deno.test("multiplex pool: close fails what is outstanding, and later requests", async () => {
  const upstream = scriptedUpstream();
  const p = pool(upstream.port);
  try {
    const pending = p.request(request("a"));
    await upstream.frames(1);
    p.close();
    await assert.rejects(pending, UpstreamResetError);
    await assert.rejects(p.request(request("b")), /closed/);
  } finally {
    await upstream.close();
  }
});
