/**
 * HTTP/2 through the real proxy: a PING or SETTINGS flood on one connection (h2c on a
 * plain listener, h2 by ALPN on the TLS bridge) closes that connection with a GOAWAY and
 * one warning, while other clients keep getting answers; a stream the client cancels is
 * no ERR line; `downstream_protocol: Http2` refuses HTTP/1.1, and an idle h2c connection
 * is closed by the idle timeout.
 */

import assert from "node:assert/strict";
import http2 from "node:http2";
import { makeTestPki } from "../../helpers/certs.ts";
import { startProxy, startUpstream, writeConfig } from "../../helpers/proxy_process.ts";
import { mosaicYaml } from "../fixtures/mosaic_yaml.ts";
import { DIRECT_ROUTE, tlsYaml } from "../tls/helpers.ts";
import { rawExchange, statusLines } from "../../attack/client_socket.ts";

const PREFACE = new TextEncoder().encode("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
const PING = 0x6, SETTINGS = 0x4, GOAWAY = 0x7;

function frame(type: number, flags: number, streamId: number, payload: Uint8Array): Uint8Array {
  const bytes = new Uint8Array(9 + payload.length);
  bytes[2] = payload.length;
  bytes[3] = type;
  bytes[4] = flags;
  new DataView(bytes.buffer).setUint32(5, streamId);
  bytes.set(payload, 9);
  return bytes;
}

/** What a flooding client saw. */
interface FloodResult {
  /** Frames written before the proxy stopped taking them (or the kernel's buffers did). */
  sent: number;
  /** The GOAWAY error code the proxy sent, if any. */
  goaway: number | undefined;
  /** The proxy closed the connection (a read ended or failed). */
  closed: boolean;
}

/**
 * Sends `frames` copies of `one` after the preface and an empty SETTINGS, in batches,
 * while reading what comes back; stops when the proxy closes or after 10 s.
 */
async function flood(conn: Deno.Conn, one: Uint8Array, frames = 20_000): Promise<FloodResult> {
  const result: FloodResult = { sent: 0, goaway: undefined, closed: false };
  const deadline = Date.now() + 10_000;
  let gaveUp = false;
  const reading = (async () => {
    const buffer = new Uint8Array(64 * 1024);
    let pending = new Uint8Array(0);
    while (Date.now() < deadline) {
      let n: number | null;
      try {
        n = await conn.read(buffer);
      } catch {
        n = null;
      }
      if (n === null) {
        // Not when the read ends because this side gave up and closed.
        result.closed = !gaveUp;
        return;
      }
      const bytes = new Uint8Array(pending.length + n);
      bytes.set(pending);
      bytes.set(buffer.subarray(0, n), pending.length);
      let at = 0;
      while (bytes.length - at >= 9) {
        const length = (bytes[at] << 16) | (bytes[at + 1] << 8) | bytes[at + 2];
        if (bytes.length - at < 9 + length) break;
        if (bytes[at + 3] === GOAWAY) {
          result.goaway = new DataView(bytes.buffer, bytes.byteOffset + at + 13, 4).getUint32(0);
        }
        at += 9 + length;
      }
      pending = bytes.slice(at);
    }
  })();
  const batch = new Uint8Array(one.length * 200);
  for (let i = 0; i < 200; i++) batch.set(one, i * one.length);
  try {
    await conn.write(new Uint8Array([...PREFACE, ...frame(SETTINGS, 0, 0, new Uint8Array(0))]));
    while (result.sent < frames && !result.closed && Date.now() < deadline) {
      let offset = 0;
      while (offset < batch.length) offset += await conn.write(batch.subarray(offset));
      result.sent += 200;
    }
  } catch {
    // the proxy closed the connection under the write
  }
  let timer: ReturnType<typeof setTimeout> | undefined;
  await Promise.race([reading, new Promise((resolve) => timer = setTimeout(resolve, 10_000))]);
  clearTimeout(timer);
  gaveUp = true;
  try {
    conn.close();
  } catch {
    // closed
  }
  return result;
}

/** One GET on a node:http2 session; resolves with the status and body. */
function get(session: http2.ClientHttp2Session, path: string): Promise<[number, string]> {
  return new Promise((resolve, reject) => {
    const request = session.request({ ":path": path });
    let status = 0;
    let body = "";
    request.setEncoding("utf8");
    request.on("response", (headers) => status = Number(headers[":status"]));
    request.on("data", (chunk: string) => body += chunk);
    request.on("end", () => resolve([status, body]));
    request.on("error", reject);
  });
}

function connected(session: http2.ClientHttp2Session): Promise<void> {
  return new Promise((resolve, reject) => {
    session.once("connect", () => resolve());
    session.once("error", reject);
  });
}

function closeSession(session: http2.ClientHttp2Session): Promise<void> {
  return new Promise((resolve) => session.close(() => resolve()));
}

const pingFrame = frame(PING, 0, 0, new Uint8Array(8));
const settingsFrame = frame(SETTINGS, 0, 0, new Uint8Array([0, 3, 0, 0, 0, 100]));

Deno.test("h2c: a PING or SETTINGS flood closes that connection, other clients go on", async () => {
  const upstream = startUpstream((request) => new Response(`ok ${new URL(request.url).pathname}`));
  const file = await writeConfig(
    mosaicYaml({ clusters: [{ name: "up", hosts: [upstream.address] }] }),
  );
  const proxy = await startProxy(file);
  const address = proxy.listeners.get("l")!;
  const [hostname, port] = address.split(":");
  // A well-behaved client, connected before the floods and used after them.
  const session = http2.connect(`http://${address}`);
  try {
    await connected(session);
    assert.deepEqual(await get(session, "/before"), [200, "ok /before"]);
    for (const [name, one] of [["PING", pingFrame], ["SETTINGS", settingsFrame]] as const) {
      const conn = await Deno.connect({ hostname, port: Number(port) });
      const flooding = flood(conn, one);
      // Another client, on its own connection, while the flood runs.
      const during = await new Deno.Command("curl", {
        args: ["-s", "--http2-prior-knowledge", "-w", " %{http_code}", `http://${address}/during`],
      }).output();
      const result = await flooding;
      assert.ok(result.closed, `${name}: the proxy closed the flooding connection`);
      // The GOAWAY is sent only when it cannot land inside a frame the server is writing:
      // under load the proxy may close without it. The WARN line below is the proof.
      if (result.goaway !== undefined) {
        assert.equal(result.goaway, 0xb, `${name}: GOAWAY ENHANCE_YOUR_CALM`);
      }
      assert.equal(new TextDecoder().decode(during.stdout), "ok /during 200");
      await proxy.waitForOutput(
        new RegExp(`\\[WRN\\].*HTTP/2 connection of "127\\.0\\.0\\.1:\\d+".*: "${name} flood`),
      );
      assert.deepEqual(await get(session, `/after-${name}`), [200, `ok /after-${name}`]);
    }
    // One warning per flood.
    assert.equal(proxy.output().match(/HTTP\/2 connection of/g)?.length, 2, proxy.output());
    assert.doesNotMatch(proxy.output(), /\[ERR\]/);
  } finally {
    await closeSession(session);
    await proxy.stop();
    await upstream.close();
  }
});

Deno.test("h2 over the TLS bridge: a PING flood closes that connection with a GOAWAY", async () => {
  const pki = await makeTestPki();
  const tls =
    `{ status: true, cert_chain: ${pki.paths.serverCert}, private_key: ${pki.paths.serverKey} }`;
  const file = await writeConfig(tlsYaml({ tls, routes: [DIRECT_ROUTE] }));
  Deno.env.set("MOSAIC_TLS_SERVE", "bridge");
  const proxy = await startProxy(file).finally(() => Deno.env.delete("MOSAIC_TLS_SERVE"));
  const port = Number(proxy.listeners.get("l")!.split(":")[1]);
  try {
    const conn = await Deno.connectTls({
      hostname: "localhost",
      port,
      caCerts: [pki.caCert],
      alpnProtocols: ["h2"],
    });
    const result = await flood(conn, pingFrame);
    assert.ok(result.closed, "the proxy closed the flooding connection");
    assert.equal(result.goaway, 0xb);
    await proxy.waitForOutput(/\[WRN\].*HTTP\/2 connection of "127\.0\.0\.1:\d+".*: "PING flood/);
    const session = http2.connect(`https://localhost:${port}`, { ca: pki.caCert });
    try {
      assert.deepEqual(await get(session, "/after"), [200, "hello over tls"]);
    } finally {
      await closeSession(session);
    }
  } finally {
    await proxy.stop();
  }
});

Deno.test("h2c: a stream the client cancels is no ERR line", async () => {
  // A response that sends a byte and then takes its time, and one that is late.
  const upstream = startUpstream((request) => {
    if (new URL(request.url).pathname === "/late") {
      return new Promise((resolve) => setTimeout(() => resolve(new Response("late")), 2000));
    }
    let timer: ReturnType<typeof setTimeout> | undefined;
    return new Response(
      new ReadableStream({
        start(controller) {
          controller.enqueue(new TextEncoder().encode("a"));
          timer = setTimeout(() => {
            try {
              controller.enqueue(new TextEncoder().encode("b"));
              controller.close();
            } catch {
              // cancelled
            }
          }, 2000);
        },
        cancel() {
          clearTimeout(timer);
        },
      }),
    );
  });
  const file = await writeConfig(
    mosaicYaml({ clusters: [{ name: "up", hosts: [upstream.address] }] }),
  );
  const proxy = await startProxy(file);
  const address = proxy.listeners.get("l")!;
  try {
    // curl gives up mid-response and closes the connection.
    for (const path of ["/slow", "/late"]) {
      const cut = await new Deno.Command("curl", {
        args: ["-s", "--http2-prior-knowledge", "--max-time", "0.5", `http://${address}${path}`],
      }).output();
      assert.equal(cut.code, 28, `curl timed out on ${path}`);
    }
    // A node:http2 client resets its streams (RST_STREAM CANCEL) on an open connection.
    const session = http2.connect(`http://${address}`);
    try {
      await connected(session);
      for (const path of ["/slow", "/late"]) {
        const request = session.request({ ":path": path });
        request.on("error", () => {});
        request.resume();
        await new Promise((resolve) => setTimeout(resolve, 300));
        request.close(http2.constants.NGHTTP2_CANCEL);
        await new Promise((resolve) => request.once("close", resolve));
      }
      // The upstream's timers are done; the proxy has had its chance to complain.
      await new Promise((resolve) => setTimeout(resolve, 2500));
      const [status] = await get(session, "/late");
      assert.equal(status, 200);
    } finally {
      await closeSession(session);
    }
    assert.doesNotMatch(proxy.output(), /\[ERR\]|AbortError/, proxy.output());
  } finally {
    await proxy.stop();
    await upstream.close();
  }
});

Deno.test("downstream_protocol Http2: HTTP/1.1 gets 505, h2c is served and closed when idle", async () => {
  const upstream = startUpstream(() => new Response("ok"));
  const file = await writeConfig(
    mosaicYaml({
      clusters: [{ name: "up", hosts: [upstream.address] }],
      listenerExtra: "        connection_idle_timeout: 600ms",
    }).replace(
      "config: { router_config_name: r }",
      "config: { router_config_name: r, downstream_protocol: Http2 }",
    ),
  );
  const proxy = await startProxy(file);
  const address = proxy.listeners.get("l")!;
  try {
    const refused = await rawExchange(address, "GET / HTTP/1.1\r\nHost: a\r\n\r\n", {
      readMs: 5000,
    });
    assert.deepEqual(statusLines(refused.text), ["HTTP/1.1 505 HTTP Version Not Supported"]);
    assert.ok(refused.closed);

    const session = http2.connect(`http://${address}`);
    const closed = new Promise<number>((resolve) =>
      session.once("close", () => resolve(Date.now()))
    );
    session.on("error", () => {});
    await connected(session);
    assert.deepEqual(await get(session, "/"), [200, "ok"]);
    const answered = Date.now();
    // The idle connection is closed by the proxy (bounded: no timing assertion).
    const result = await Promise.race([
      closed.then(() => "closed"),
      new Promise((resolve) => setTimeout(() => resolve("still open"), 10_000)),
    ]);
    assert.equal(result, "closed", `after ${Date.now() - answered} ms`);
    session.destroy();
  } finally {
    await proxy.stop();
    await upstream.close();
  }
});
