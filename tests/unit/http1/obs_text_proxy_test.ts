/**
 * Through the real proxy process: obs-text header bytes (0x80-0xFF) pass both ways as
 * exactly the bytes sent, one byte each (read as Latin-1 by the server and the upstream
 * client, written as Latin-1 by the upstream request writer and the response writer).
 */

import assert from "node:assert/strict";
import { startProxy, writeConfig } from "../../helpers/proxy_process.ts";
import { mosaicYaml } from "../../e2e/fixtures/mosaic_yaml.ts";
import { rawExchange, toLatin1 } from "../../attack/client_socket.ts";

/** A raw-socket upstream that keeps each request head's bytes and answers `reply`. */
function rawUpstream(reply: string) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const heads: Uint8Array[] = [];
  const serving = (async () => {
    for await (const conn of listener) {
      (async () => {
        let got = new Uint8Array(0);
        const buffer = new Uint8Array(65536);
        try {
          for (;;) {
            const n = await conn.read(buffer);
            if (n === null) break;
            const joined = new Uint8Array(got.length + n);
            joined.set(got);
            joined.set(buffer.subarray(0, n), got.length);
            got = joined;
            const end = String.fromCharCode(...got).indexOf("\r\n\r\n");
            if (end === -1) continue;
            heads.push(got.slice(0, end + 4));
            got = got.slice(end + 4);
            await conn.write(toLatin1(reply));
          }
        } catch {
          // the proxy closed the connection
        } finally {
          try {
            conn.close();
          } catch {
            // closed
          }
        }
      })();
    }
  })();
  return {
    address: `127.0.0.1:${(listener.addr as Deno.NetAddr).port}`,
    heads,
    async close() {
      listener.close();
      await serving.catch(() => {});
    },
  };
}

/** The bytes of the field line `name: …\r\n` in `head`, or null. */
function fieldBytes(head: Uint8Array, name: string): number[] | null {
  const text = String.fromCharCode(...head);
  const at = text.toLowerCase().indexOf(`\r\n${name}:`);
  if (at === -1) return null;
  const end = text.indexOf("\r\n", at + 2);
  return [...head.subarray(at + 2, end + 2)];
}

Deno.test("obs-text header bytes reach the upstream and the client as exactly the bytes sent", async () => {
  const upstream = rawUpstream(
    "HTTP/1.1 200 OK\r\nx-back: caf\xe9 \x80\xff\r\ncontent-length: 2\r\n\r\nok",
  );
  const file = await writeConfig(
    mosaicYaml({ clusters: [{ name: "up", hosts: [upstream.address] }] }),
  );
  const proxy = await startProxy(file);
  try {
    const result = await rawExchange(
      proxy.listeners.get("l")!,
      "GET /x HTTP/1.1\r\nHost: a\r\nX-Name: caf\xe9 \x80\xff\r\nConnection: close\r\n\r\n",
      { until: /\r\n\r\nok/ },
    );
    // Upstream: `x-name: ` then c a f 0xe9 SP 0x80 0xff CRLF, one byte each (not UTF-8).
    assert.equal(upstream.heads.length, 1);
    assert.deepEqual(
      fieldBytes(upstream.heads[0], "x-name"),
      [...toLatin1("x-name: caf\xe9 \x80\xff\r\n")],
    );
    // Client: the response field's bytes, as the upstream sent them (rawExchange reads
    // one char per byte).
    assert.match(result.text, /^HTTP\/1\.1 200 /);
    assert.ok(
      result.text.includes("\r\nx-back: caf\xe9 \x80\xff\r\n"),
      JSON.stringify(result.text),
    );
  } finally {
    await proxy.stop();
    await upstream.close();
  }
});
