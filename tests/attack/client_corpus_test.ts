/**
 * The client attack corpus against the real proxy: each row's bytes on a fresh
 * connection, the status lines it must get, whether the connection closes, and what the
 * upstream saw.
 */

import assert from "node:assert/strict";
import { startProxy, writeConfig } from "../helpers/proxy_process.ts";
import { mosaicYaml } from "../e2e/fixtures/mosaic_yaml.ts";
import { CHUNKED_ROWS, type ClientAttackRow, GOOD_ROWS, HEAD_ROWS } from "./client_corpus.ts";
import { rawExchange, statusLines } from "./client_socket.ts";
import { startRecordingUpstream } from "./client_upstream.ts";

Deno.test("client attack corpus: every row gets its answer, and the upstream sees only what it may", async () => {
  const upstream = startRecordingUpstream();
  const seen = upstream.seen;
  const file = await writeConfig(mosaicYaml({
    clusters: [{ name: "up", hosts: [upstream.address] }],
    routes: [
      "- match: { prefix: /direct }\n  direct_response: { status: 200, body: direct }",
      "- match: { prefix: / }\n  route: { cluster_name: up }",
    ],
  }));
  const proxy = await startProxy(file);
  try {
    const address = proxy.listeners.get("l")!;
    const rows: ClientAttackRow[] = [...HEAD_ROWS, ...CHUNKED_ROWS, ...GOOD_ROWS];
    for (const row of rows) {
      seen.length = 0;
      const result = await rawExchange(address, row.send, { readMs: 5000 });
      const lines = statusLines(result.text);
      assert.equal(lines.length, row.expect.length, `${row.name}: got ${JSON.stringify(lines)}`);
      row.expect.forEach((prefix, i) =>
        assert.ok(lines[i].startsWith(prefix), `${row.name}: got ${lines[i]}, want ${prefix}`)
      );
      assert.equal(result.closed, row.closes, `${row.name}: closed ${result.closed}`);
      if (row.bodyIncludes !== undefined) assert.ok(result.text.includes(row.bodyIncludes));
      assert.deepEqual(seen, row.upstream, row.name);
    }
  } finally {
    await proxy.stop();
    upstream.close();
  }
});
