import assert from "node:assert/strict";
import { startProxy, startUpstream, writeConfig } from "../../helpers/proxy_process.ts";
import { mosaicYaml } from "../fixtures/mosaic_yaml.ts";

const SIZE = 10 * 1024 * 1024;

async function sha256(bytes: Uint8Array<ArrayBuffer>): Promise<string> {
  return Array.from(new Uint8Array(await crypto.subtle.digest("SHA-256", bytes)))
    .map((b) => b.toString(16).padStart(2, "0")).join("");
}

function pseudoRandomBytes(size: number): Uint8Array<ArrayBuffer> {
  const bytes = new Uint8Array(size);
  let x = 2463534242;
  for (let i = 0; i < size; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    bytes[i] = x & 0xff;
  }
  return bytes;
}

/** Sends raw bytes and reads until the peer closes or `timeoutMs` passes. */
async function rawExchange(address: string, data: Uint8Array | string, timeoutMs = 3000) {
  const [hostname, port] = address.split(":");
  const conn = await Deno.connect({ hostname, port: Number(port) });
  await conn.write(typeof data === "string" ? new TextEncoder().encode(data) : data);
  const chunks: Uint8Array[] = [];
  const timer = setTimeout(() => conn.close(), timeoutMs);
  try {
    const buffer = new Uint8Array(65536);
    for (;;) {
      const n = await conn.read(buffer);
      if (n === null) break;
      chunks.push(buffer.slice(0, n));
      const text = new TextDecoder().decode(chunks.at(-1));
      if (text.includes("\r\n\r\n")) break;
    }
  } catch {
    // closed by the timer or the peer
  } finally {
    clearTimeout(timer);
    try {
      conn.close();
    } catch { /* already closed */ }
  }
  return new TextDecoder().decode(new Uint8Array(chunks.flatMap((c) => [...c])));
}

Deno.test("a 10 MB chunked upload and a 10 MB download arrive intact", async () => {
  const payload = pseudoRandomBytes(SIZE);
  const expected = await sha256(payload);
  const upstream = startUpstream(async (request) => {
    if (request.method === "POST") {
      const received = new Uint8Array(await request.arrayBuffer());
      return new Response(`${received.byteLength} ${await sha256(received)}`);
    }
    // Stream the download in uneven pieces, without a Content-Length (chunked).
    let offset = 0;
    return new Response(
      new ReadableStream({
        pull(controller) {
          if (offset >= SIZE) return controller.close();
          const end = Math.min(SIZE, offset + 70_001);
          controller.enqueue(payload.slice(offset, end));
          offset = end;
        },
      }),
    );
  });
  const file = await writeConfig(
    mosaicYaml({ clusters: [{ name: "up", hosts: [upstream.address] }] }),
  );
  const proxy = await startProxy(file);
  try {
    const base = `http://${proxy.listeners.get("l")}`;
    let sent = 0;
    const upload = await fetch(`${base}/upload`, {
      method: "POST",
      body: new ReadableStream({
        pull(controller) {
          if (sent >= SIZE) return controller.close();
          const end = Math.min(SIZE, sent + 65_537);
          controller.enqueue(payload.slice(sent, end));
          sent = end;
        },
      }),
    });
    assert.equal(await upload.text(), `${SIZE} ${expected}`);
    const download = await fetch(`${base}/download`);
    const body = new Uint8Array(await download.arrayBuffer());
    assert.equal(body.byteLength, SIZE);
    assert.equal(await sha256(body), expected);
  } finally {
    await proxy.stop();
    await upstream.close();
  }
});

Deno.test("a client that leaves mid-request still gets its filters destroyed", async () => {
  const bodySeen = Promise.withResolvers<void>();
  const upstream = startUpstream(async (request) => {
    if (request.body === null) return new Response("no body");
    const reader = request.body.getReader();
    try {
      await reader.read();
      bodySeen.resolve();
      while (!(await reader.read()).done) { /* drain until the proxy gives up */ }
    } catch {
      // the proxy aborted the upload
    }
    return new Response("never read");
  });
  const filter = new URL("../fixtures/destroy_logger.ts", import.meta.url).href;
  const file = await writeConfig(mosaicYaml({
    streamFilters: [`- type: module\n  module: ${filter}`],
    clusters: [{ name: "up", hosts: [upstream.address] }],
  }));
  const proxy = await startProxy(file);
  try {
    const [hostname, port] = proxy.listeners.get("l")!.split(":");
    const conn = await Deno.connect({ hostname, port: Number(port) });
    await conn.write(new TextEncoder().encode(
      "POST /abandoned HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n" + "a".repeat(1000),
    ));
    await bodySeen.promise;
    conn.close();
    await proxy.waitForOutput("receive /abandoned");
    await proxy.waitForOutput("destroy /abandoned", 10_000);
    const after = await fetch(`http://${proxy.listeners.get("l")}/after`);
    assert.equal(after.status, 200, proxy.output());
    await after.body?.cancel();
    assert.doesNotMatch(proxy.output(), /Uncaught|panicked/);
  } finally {
    await proxy.stop();
    await upstream.close();
  }
});

Deno.test("malformed and oversized requests are refused and never forwarded", async () => {
  const upstream = startUpstream(() => new Response("forwarded"));
  const file = await writeConfig(
    mosaicYaml({ clusters: [{ name: "up", hosts: [upstream.address] }] }),
  );
  const proxy = await startProxy(file);
  try {
    const address = proxy.listeners.get("l")!;
    assert.match(await rawExchange(address, "GARBAGE\r\n\r\n"), /^HTTP\/1.1 400/);
    assert.match(
      await rawExchange(
        address,
        "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
      ),
      /^HTTP\/1.1 400/,
    );
    assert.match(
      await rawExchange(
        address,
        "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
      ),
      /^HTTP\/1.1 400/,
    );
    assert.match(
      await rawExchange(
        address,
        `GET / HTTP/1.1\r\nHost: x\r\nX-Big: ${"a".repeat(40_000)}\r\n\r\n`,
      ),
      /^HTTP\/1.1 431/,
    );
    const huge = await rawExchange(
      address,
      `GET / HTTP/1.1\r\nHost: x\r\nX-Big: ${"a".repeat(500_000)}\r\n\r\n`,
    );
    assert.doesNotMatch(huge, /forwarded/);
    assert.equal(upstream.requests, 0);
    const fine = await fetch(`http://${address}/`);
    assert.equal(await fine.text(), "forwarded");
  } finally {
    await proxy.stop();
    await upstream.close();
  }
});

Deno.test("tcp_proxy forwards raw bytes both ways", async () => {
  const echo = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const serving = (async () => {
    for await (const conn of echo) {
      (async () => {
        const buffer = new Uint8Array(1024);
        for (;;) {
          const n = await conn.read(buffer).catch(() => null);
          if (n === null) break;
          await conn.write(
            new TextEncoder().encode(`echo:${new TextDecoder().decode(buffer.subarray(0, n))}`),
          );
        }
        conn.close();
      })();
    }
  })();
  const file = await writeConfig(`servers:
  - listeners:
      - name: tcp
        address: 127.0.0.1:0
        filter_chains:
          - filters:
              - type: tcp_proxy
                config: { cluster: echo }
cluster_manager:
  clusters:
    - name: echo
      type: SIMPLE
      lb_type: LB_ROUNDROBIN
      hosts: [{ address: "127.0.0.1:${(echo.addr as Deno.NetAddr).port}" }]
`);
  const proxy = await startProxy(file);
  try {
    const [hostname, port] = proxy.listeners.get("tcp")!.split(":");
    const conn = await Deno.connect({ hostname, port: Number(port) });
    await conn.write(new TextEncoder().encode("ping"));
    const buffer = new Uint8Array(100);
    const n = await conn.read(buffer);
    assert.equal(new TextDecoder().decode(buffer.subarray(0, n!)), "echo:ping");
    conn.close();
  } finally {
    await proxy.stop();
    echo.close();
    await serving.catch(() => {});
  }
});

/** A raw TCP upstream that answers every connection with `reply` and closes. */
function rawUpstream(reply: string) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const serving = (async () => {
    for await (const conn of listener) {
      (async () => {
        await conn.read(new Uint8Array(65536)).catch(() => null);
        await conn.write(new TextEncoder().encode(reply)).catch(() => 0);
        conn.close();
      })();
    }
  })();
  return {
    address: `127.0.0.1:${(listener.addr as Deno.NetAddr).port}`,
    async close() {
      listener.close();
      await serving.catch(() => {});
    },
  };
}

Deno.test("garbage or a truncated body from an upstream never takes the proxy down", async () => {
  const garbage = rawUpstream("NOT HTTP AT ALL\r\n\r\n");
  const truncated = rawUpstream("HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\nonly this");
  const file = await writeConfig(mosaicYaml({
    routes: [
      "- match: { prefix: /garbage }\n  route: { cluster_name: garbage }",
      "- match: { prefix: / }\n  route: { cluster_name: truncated }",
    ],
    clusters: [
      { name: "garbage", hosts: [garbage.address] },
      { name: "truncated", hosts: [truncated.address] },
    ],
  }));
  const proxy = await startProxy(file);
  try {
    const base = `http://${proxy.listeners.get("l")}`;
    const bad = await fetch(`${base}/garbage`);
    assert.equal(bad.status, 502);
    await bad.body?.cancel();
    const cut = await fetch(`${base}/cut`);
    assert.equal(cut.status, 200);
    await assert.rejects(cut.arrayBuffer(), "the client sees the body fail, not a short body");
    const again = await fetch(`${base}/garbage`);
    assert.equal(again.status, 502);
    await again.body?.cancel();
    assert.doesNotMatch(proxy.output(), /Uncaught|panicked/);
  } finally {
    await proxy.stop();
    await garbage.close();
    await truncated.close();
  }
});
