/**
 * The HTTP/1.1 server's timeouts against the real proxy, with short timeouts: a slow head
 * is answered 408 and closed, an idle keep-alive connection is closed, a stalled body is
 * cut, and no Upgrade, CONNECT or h2c preface turns any of that off.
 */

import assert from "node:assert/strict";
import { startProxy, writeConfig } from "../../helpers/proxy_process.ts";
import { mosaicYaml } from "../fixtures/mosaic_yaml.ts";
import { rawExchange, statusLines } from "../../attack/client_socket.ts";
import { startRecordingUpstream } from "../../attack/client_upstream.ts";

const H = "Host: a\r\n";
const PREFACE = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

Deno.test("server timeouts: slowloris, idle keep-alive, stalled body, and no request turns them off", async () => {
  const upstream = startRecordingUpstream();
  const file = await writeConfig(mosaicYaml({
    clusters: [{ name: "up", hosts: [upstream.address] }],
    listenerExtra: "        header_read_timeout: 600ms\n" +
      "        connection_idle_timeout: 600ms\n        body_read_timeout: 600ms",
  }));
  const proxy = await startProxy(file);
  try {
    const address = proxy.listeners.get("l")!;

    // A slowloris head, a byte at a time: 408 and closed after about the timeout.
    const slow = await rawExchange(address, ["GET / HTTP/1.1\r\n", "Ho", "st", ": a\r\n", "X"], {
      pauseMs: 200,
      readMs: 5000,
    });
    assert.ok(slow.closed);
    assert.deepEqual(statusLines(slow.text), ["HTTP/1.1 408 Request Timeout"]);
    assert.ok(slow.elapsed < 3000, `closed after ${slow.elapsed} ms`);

    // A connection that sends nothing is closed too.
    const silent = await rawExchange(address, "", { readMs: 5000 });
    assert.ok(silent.closed && silent.elapsed < 3000);

    // Idle keep-alive: answered, then closed without a word after the idle timeout.
    const idle = await rawExchange(address, `GET /idle HTTP/1.1\r\n${H}\r\n`, { readMs: 5000 });
    assert.ok(idle.closed, "the idle connection was closed");
    assert.deepEqual(statusLines(idle.text), ["HTTP/1.1 200 OK"]);
    assert.ok(idle.elapsed < 3000, `closed after ${idle.elapsed} ms`);

    // A body that stalls is cut; the upstream never gets a complete request.
    upstream.seen.length = 0;
    const stalled = await rawExchange(
      address,
      `POST /stall HTTP/1.1\r\n${H}Content-Length: 10\r\n\r\n01`,
      { readMs: 5000 },
    );
    assert.ok(stalled.closed && stalled.elapsed < 3000, `closed after ${stalled.elapsed} ms`);
    assert.deepEqual(upstream.seen, []);

    // A body that trickles within the body timeout is not cut.
    const trickle = await rawExchange(
      address,
      [`POST /trickle HTTP/1.1\r\n${H}Content-Length: 4\r\nConnection: close\r\n\r\nab`, "cd"],
      { pauseMs: 400, readMs: 5000 },
    );
    assert.deepEqual(statusLines(trickle.text), ["HTTP/1.1 200 OK"]);
    assert.ok(trickle.text.endsWith("POST /trickle 4"));

    // After an Upgrade request and after a CONNECT, a slow head still gets its 408.
    for (
      const first of [
        `GET /ws HTTP/1.1\r\n${H}Connection: Upgrade\r\nUpgrade: websocket\r\n\r\n`,
        "CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n",
      ]
    ) {
      const after = await rawExchange(address, [first, "GET / HTTP/1.1\r\nHo"], {
        pauseMs: 100,
        readMs: 5000,
      });
      const lines = statusLines(after.text);
      assert.equal(lines.length, 2, `${first.split(" ")[0]}: ${JSON.stringify(lines)}`);
      assert.equal(lines[1], "HTTP/1.1 408 Request Timeout");
      assert.ok(after.closed && after.elapsed < 3000, `closed after ${after.elapsed} ms`);
    }

    // An h2c preface followed by silence is closed by the idle timeout.
    const h2c = await rawExchange(address, PREFACE, { readMs: 5000 });
    assert.ok(h2c.closed && h2c.elapsed < 3000, `h2c closed after ${h2c.elapsed} ms`);
  } finally {
    await proxy.stop();
    upstream.close();
  }
});

Deno.test("server: a half-closed client still gets its response; a GET body reaches the upstream", async () => {
  const upstream = startRecordingUpstream();
  const file = await writeConfig(
    mosaicYaml({ clusters: [{ name: "up", hosts: [upstream.address] }] }),
  );
  const proxy = await startProxy(file);
  try {
    const address = proxy.listeners.get("l")!;
    const half = await rawExchange(address, `GET /half HTTP/1.1\r\n${H}\r\n`, {
      halfClose: true,
      readMs: 5000,
    });
    assert.deepEqual(statusLines(half.text), ["HTTP/1.1 200 OK"]);
    assert.ok(half.text.endsWith("GET /half 0"));
    assert.ok(half.closed, "closed after the response");

    const get = await rawExchange(
      address,
      `GET /body HTTP/1.1\r\n${H}Content-Length: 5\r\n\r\nhello`,
      { halfClose: true, readMs: 5000 },
    );
    assert.ok(get.text.endsWith("GET /body 5"), get.text);
  } finally {
    await proxy.stop();
    upstream.close();
  }
});

Deno.test("server: h2c with prior knowledge is served; downstream_protocol Http1 refuses it", async () => {
  const upstream = startRecordingUpstream();
  const file = await writeConfig(
    mosaicYaml({ clusters: [{ name: "up", hosts: [upstream.address] }] }),
  );
  const proxy = await startProxy(file);
  try {
    const address = proxy.listeners.get("l")!;
    const curl = await new Deno.Command("curl", {
      args: ["-s", "--http2-prior-knowledge", "-w", " %{http_version}", `http://${address}/h2c`],
    }).output();
    assert.equal(new TextDecoder().decode(curl.stdout), "GET /h2c 0 2");
  } finally {
    await proxy.stop();
  }
  const http1Only = await writeConfig(
    mosaicYaml({ clusters: [{ name: "up", hosts: [upstream.address] }] })
      .replace(
        "config: { router_config_name: r }",
        "config: { router_config_name: r, downstream_protocol: Http1 }",
      ),
  );
  const proxy1 = await startProxy(http1Only);
  try {
    const refused = await rawExchange(proxy1.listeners.get("l")!, PREFACE, { readMs: 5000 });
    assert.deepEqual(statusLines(refused.text), ["HTTP/1.1 505 HTTP Version Not Supported"]);
    assert.ok(refused.closed);
  } finally {
    await proxy1.stop();
    upstream.close();
  }
  const http2Only = await writeConfig(
    mosaicYaml({ clusters: [{ name: "up", hosts: [upstream.address] }] })
      .replace(
        "config: { router_config_name: r }",
        "config: { router_config_name: r, downstream_protocol: Http2 }",
      ),
  );
  const proxy2 = await startProxy(http2Only);
  try {
    const refused = await rawExchange(proxy2.listeners.get("l")!, `GET / HTTP/1.1\r\n${H}\r\n`, {
      readMs: 5000,
    });
    assert.deepEqual(statusLines(refused.text), ["HTTP/1.1 505 HTTP Version Not Supported"]);
    assert.ok(refused.closed);
  } finally {
    await proxy2.stop();
  }
});
