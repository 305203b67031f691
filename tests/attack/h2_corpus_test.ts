/**
 * The HTTP/2 attack corpus against the real proxy (h2c by prior knowledge): each row's
 * frames after the preface and a SETTINGS frame, on a fresh connection, and what the
 * client must get: a GOAWAY with an error code and a closed connection, or an answer on
 * a connection that stays open.
 */

import assert from "node:assert/strict";
import { startProxy, writeConfig } from "../helpers/proxy_process.ts";
import { mosaicYaml } from "../e2e/fixtures/mosaic_yaml.ts";

const PREFACE = new TextEncoder().encode("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
const DATA = 0x0, HEADERS = 0x1, PRIORITY = 0x2, RST_STREAM = 0x3, SETTINGS = 0x4;
const PING = 0x6, GOAWAY = 0x7, WINDOW_UPDATE = 0x8;
const END_STREAM = 0x1, END_HEADERS = 0x4;
const ENHANCE_YOUR_CALM = 0xb, FRAME_SIZE_ERROR = 0x6;

function frame(type: number, flags: number, streamId: number, payload: number | Uint8Array) {
  const body = typeof payload === "number" ? new Uint8Array(payload) : payload;
  const bytes = new Uint8Array(9 + body.length);
  bytes[0] = body.length >> 16;
  bytes[1] = (body.length >> 8) & 0xff;
  bytes[2] = body.length & 0xff;
  bytes[3] = type;
  bytes[4] = flags;
  new DataView(bytes.buffer).setUint32(5, streamId);
  bytes.set(body, 9);
  return bytes;
}

/** A header block in HPACK's static table: `:method` GET or POST, `:scheme http`, `:path /`, `:authority a`. */
function request(method: "GET" | "POST"): Uint8Array {
  return new Uint8Array([method === "GET" ? 0x82 : 0x83, 0x86, 0x84, 0x01, 0x01, 0x61]);
}

function times(n: number, make: (i: number) => Uint8Array): Uint8Array[] {
  return Array.from({ length: n }, (_, i) => make(i));
}

/** One row of the corpus. */
interface H2AttackRow {
  name: string;
  /** Frames after the preface and an empty SETTINGS. */
  send: Uint8Array[];
  /** The GOAWAY error code the proxy must send, or null for none of the two guard codes. */
  goaway: number | null;
  /** The proxy closes the connection. */
  closes: boolean;
  /** A response (HEADERS) must come on stream 1. */
  answered?: boolean;
}

const GET1 = frame(HEADERS, END_STREAM | END_HEADERS, 1, request("GET"));
const POST1 = frame(HEADERS, END_HEADERS, 1, request("POST"));

export const H2_ROWS: H2AttackRow[] = [
  {
    name: "PING flood",
    send: times(300, () => frame(PING, 0, 0, 8)),
    goaway: ENHANCE_YOUR_CALM,
    closes: true,
  },
  {
    name: "SETTINGS flood",
    send: times(300, () => frame(SETTINGS, 0, 0, new Uint8Array([0, 3, 0, 0, 0, 100]))),
    goaway: ENHANCE_YOUR_CALM,
    closes: true,
  },
  {
    name: "rapid reset (HEADERS then RST_STREAM, 300 streams)",
    send: times(300, (i) => {
      const id = 1 + 2 * i;
      const rst = frame(RST_STREAM, 0, id, new Uint8Array([0, 0, 0, 8]));
      const headers = frame(HEADERS, END_STREAM | END_HEADERS, id, request("GET"));
      const both = new Uint8Array(headers.length + rst.length);
      both.set(headers);
      both.set(rst, headers.length);
      return both;
    }),
    goaway: ENHANCE_YOUR_CALM,
    closes: true,
  },
  {
    name: "empty DATA frames without END_STREAM",
    send: [POST1, frame(DATA, 0, 1, 0), frame(DATA, 0, 1, 0)],
    goaway: ENHANCE_YOUR_CALM,
    closes: true,
  },
  {
    name: "PRIORITY flood on no stream",
    send: times(150, (i) => frame(PRIORITY, 0, 1 + 2 * i, new Uint8Array([0, 0, 0, 0, 16]))),
    goaway: ENHANCE_YOUR_CALM,
    closes: true,
  },
  {
    name: "WINDOW_UPDATE flood with no DATA sent",
    send: times(50, () => frame(WINDOW_UPDATE, 0, 0, new Uint8Array([0, 0, 0, 1]))),
    goaway: ENHANCE_YOUR_CALM,
    closes: true,
  },
  {
    name: "extension frame flood",
    send: times(300, () => frame(0x2a, 0, 0, 4)),
    goaway: ENHANCE_YOUR_CALM,
    closes: true,
  },
  {
    name: "a frame above the max frame size (16385)",
    send: [POST1, frame(DATA, END_STREAM, 1, 16_385)],
    goaway: FRAME_SIZE_ERROR,
    closes: true,
  },
  {
    name: "a request with a few PINGs and WINDOW_UPDATEs is answered",
    send: [
      frame(WINDOW_UPDATE, 0, 0, new Uint8Array([0, 1, 0, 0])),
      GET1,
      ...times(5, () => frame(PING, 0, 0, 8)),
    ],
    goaway: null,
    closes: false,
    answered: true,
  },
  {
    name: "a body in one frame of the max frame size is answered",
    send: [POST1, frame(DATA, END_STREAM, 1, 16_384)],
    goaway: null,
    closes: false,
    answered: true,
  },
];

/** What came back on one connection. */
interface H2Result {
  goaway: number | null;
  closed: boolean;
  answered: boolean;
}

async function exchange(address: string, send: Uint8Array[], readMs: number): Promise<H2Result> {
  const [hostname, port] = address.split(":");
  const conn = await Deno.connect({ hostname, port: Number(port) });
  const result: H2Result = { goaway: null, closed: false, answered: false };
  const parts = [PREFACE, frame(SETTINGS, 0, 0, 0), ...send];
  const bytes = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) {
    bytes.set(part, at);
    at += part.length;
  }
  const writing = (async () => {
    let offset = 0;
    while (offset < bytes.length) offset += await conn.write(bytes.subarray(offset));
  })().catch(() => {});
  let timer: ReturnType<typeof setTimeout> | undefined;
  let gaveUp = false;
  const reading = (async () => {
    const buffer = new Uint8Array(64 * 1024);
    let pending = new Uint8Array(0);
    for (;;) {
      const n = await conn.read(buffer).catch(() => null);
      if (n === null) {
        // Not when the read ends because this side gave up and closed.
        result.closed = !gaveUp;
        return;
      }
      const all = new Uint8Array(pending.length + n);
      all.set(pending);
      all.set(buffer.subarray(0, n), pending.length);
      let i = 0;
      while (all.length - i >= 9) {
        const length = (all[i] << 16) | (all[i + 1] << 8) | all[i + 2];
        if (all.length - i < 9 + length) break;
        const type = all[i + 3];
        const stream = new DataView(all.buffer, i + 5, 4).getUint32(0) & 0x7fffffff;
        if (type === GOAWAY) result.goaway = new DataView(all.buffer, i + 13, 4).getUint32(0);
        if (type === HEADERS && stream === 1) result.answered = true;
        i += 9 + length;
      }
      pending = all.slice(i);
    }
  })();
  await Promise.race([reading, new Promise((resolve) => timer = setTimeout(resolve, readMs))]);
  clearTimeout(timer);
  gaveUp = true;
  try {
    conn.close();
  } catch {
    // closed
  }
  await Promise.all([reading, writing]);
  return result;
}

Deno.test("h2 attack corpus: floods get a GOAWAY and are closed, well-behaved connections are answered", async () => {
  const file = await writeConfig(mosaicYaml({
    clusters: [{ name: "up", hosts: ["127.0.0.1:1"] }],
    routes: ["- match: { prefix: / }\n  direct_response: { status: 200, body: direct }"],
  }));
  const proxy = await startProxy(file);
  try {
    const address = proxy.listeners.get("l")!;
    for (const row of H2_ROWS) {
      const result = await exchange(address, row.send, row.closes ? 5000 : 1000);
      assert.equal(result.closed, row.closes, `${row.name}: ${JSON.stringify(result)}`);
      if (row.goaway === null) {
        assert.ok(
          result.goaway !== ENHANCE_YOUR_CALM && result.goaway !== FRAME_SIZE_ERROR,
          `${row.name}: GOAWAY ${result.goaway}`,
        );
      } else {
        assert.equal(result.goaway, row.goaway, row.name);
      }
      if (row.answered) assert.ok(result.answered, `${row.name}: answered`);
    }
    assert.doesNotMatch(proxy.output(), /\[ERR\]/, proxy.output());
  } finally {
    await proxy.stop();
  }
});
