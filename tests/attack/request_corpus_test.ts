/**
 * The request-side attack corpus, in process: each hostile target and Host as a server
 * that parses the wire passes them to the lifecycle (exactly as sent).
 */

import assert from "node:assert/strict";
import { createInProcessProxy } from "../../src/proxy/in_process.ts";
import { AUTHORITY, TRAVERSALS } from "./request_corpus.ts";

Deno.test("request attack corpus: every row gets its answer and the upstream sees only what it may", async () => {
  const seen: string[] = [];
  const proxy = await createInProcessProxy({
    routes: [
      { match: { prefix: "/admin", headers: [] }, directResponse: { status: 403, body: "" } },
      { match: { prefix: "/", headers: [] } },
    ],
    upstream: (request) => {
      const url = new URL(request.url);
      seen.push(`GET ${url.pathname}${url.search} HTTP/1.1 ${request.headers.get("host")}`);
      return new Response("upstream\n");
    },
  });
  for (const row of [...TRAVERSALS, ...AUTHORITY]) {
    seen.length = 0;
    const response = await proxy.raw({ target: row.target, authority: row.host });
    await response.body?.cancel();
    assert.ok(row.statuses.includes(response.status), `${row.name}: got ${response.status}`);
    if (row.upstream === null) assert.deepEqual(seen, [], row.name);
    else assert.deepEqual(seen, [`${row.upstream} ${row.upstreamHost}`], row.name);
  }
  await proxy.close();
});
