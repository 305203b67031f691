import assert from "node:assert/strict";
import { startProxy, startUpstream, writeConfig } from "../../helpers/proxy_process.ts";
import { mosaicYaml } from "../fixtures/mosaic_yaml.ts";

/** Opens a raw connection, sends `text`, and reads until the peer closes or `ms` pass. */
async function rawSend(address: string, text: string, ms: number) {
  const [hostname, port] = address.split(":");
  const conn = await Deno.connect({ hostname, port: Number(port) });
  const started = Date.now();
  if (text !== "") await conn.write(new TextEncoder().encode(text));
  const timer = setTimeout(() => conn.close(), ms);
  let received = "";
  let closedByPeer = false;
  try {
    const buffer = new Uint8Array(4096);
    for (;;) {
      const n = await conn.read(buffer);
      if (n === null) {
        closedByPeer = true;
        break;
      }
      received += new TextDecoder().decode(buffer.subarray(0, n));
    }
  } catch {
    // closed by our timer
  } finally {
    clearTimeout(timer);
    try {
      conn.close();
    } catch { /* closed */ }
  }
  return { received, closedByPeer, elapsed: Date.now() - started };
}

Deno.test("header_read_timeout answers 408 to a slow head and leaves good requests alone", async () => {
  const upstream = startUpstream(async (request) =>
    new Response(
      `${request.method} ${request.headers.get("x-forwarded-for")} ${
        (await request.text()).length
      }`,
    )
  );
  const file = await writeConfig(mosaicYaml({
    clusters: [{ name: "up", hosts: [upstream.address] }],
    listenerExtra: "        header_read_timeout: 500ms",
  }));
  const proxy = await startProxy(file);
  try {
    const address = proxy.listeners.get("l")!;
    // A slowloris head: cut off with 408 after about the timeout, never forwarded.
    const slow = await rawSend(address, "GET / HTTP/1.1\r\nHost: x\r\nX-Slow: 1", 5000);
    assert.ok(slow.closedByPeer, "the proxy closed the connection");
    assert.match(slow.received, /^HTTP\/1.1 408/);
    assert.ok(slow.elapsed >= 400 && slow.elapsed < 3000, `closed after ${slow.elapsed} ms`);
    // A connection that sends nothing is closed too.
    const silent = await rawSend(address, "", 5000);
    assert.ok(silent.closedByPeer);
    await proxy.waitForOutput("not complete after 500 ms; answered 408");

    // Good requests, keep-alive, bodies of both framings, the real client address.
    for (let i = 0; i < 3; i++) {
      const get = await fetch(`http://${address}/`);
      assert.equal(await get.text(), "GET 127.0.0.1 0");
    }
    const posted = await fetch(`http://${address}/`, { method: "POST", body: "x".repeat(100_000) });
    assert.equal(await posted.text(), "POST 127.0.0.1 100000");
    const chunked = await fetch(`http://${address}/`, {
      method: "POST",
      body: ReadableStream.from(
        ["a".repeat(7000), "b".repeat(3000)].map((s) => new TextEncoder().encode(s)),
      ),
    });
    assert.equal(await chunked.text(), "POST 127.0.0.1 10000");

    // A body that trickles in after a complete head is not a slow head.
    const [hostname, port] = address.split(":");
    const conn = await Deno.connect({ hostname, port: Number(port) });
    await conn.write(
      new TextEncoder().encode("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nab"),
    );
    await new Promise((resolve) => setTimeout(resolve, 900));
    await conn.write(new TextEncoder().encode("cd"));
    const buffer = new Uint8Array(1024);
    const n = await conn.read(buffer);
    conn.close();
    assert.match(
      new TextDecoder().decode(buffer.subarray(0, n!)),
      /^HTTP\/1.1 200[\s\S]*POST 127.0.0.1 4$/,
    );
  } finally {
    await proxy.stop();
    await upstream.close();
  }
});
