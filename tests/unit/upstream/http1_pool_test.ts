import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { Http1Pool, type Http1Response } from "../../../src/upstream/http1_pool.ts";
import {
  UpstreamConnectError,
  UpstreamOverflowError,
  UpstreamResetError,
} from "../../../src/upstream/types.ts";
import {
  delay,
  keepAlive,
  type RawConn,
  type RawRequest,
  RawServer,
  readAll,
  readText,
  waitFor,
} from "./_raw_server.ts";
import { get, OPTIONS, poolFor } from "./_pool.ts";

/** Answers every request with `response`, byte for byte. */
function fixed(response: string): (conn: RawConn) => Promise<void> {
  return keepAlive(async (conn, request) => {
    await conn.readBody(request);
    await conn.write(response);
  });
}

function sha256(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

/** Deterministic pseudo-random bytes. */
function bytesOf(size: number, seed: number): Uint8Array {
  const out = new Uint8Array(size);
  let x = seed;
  for (let i = 0; i < size; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}

Deno.test("Http1Pool sends the head in HTTP/1.1 form and reads a Content-Length body", async () => {
  let seen: RawRequest | undefined;
  const server = new RawServer(keepAlive(async (conn, request) => {
    seen = request;
    await conn.readBody(request);
    await conn.write(
      "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 5\r\n\r\nhello",
    );
  }));
  const pool = poolFor(server);
  try {
    const headers = new Headers({ host: "example.test", "X-Custom": "a b" });
    const res = await pool.request(get("/a?b=1", { headers })) as Http1Response;
    assert.equal(res.status, 200);
    assert.equal(res.statusText, "OK");
    assert.equal(res.headers.get("content-type"), "text/plain");
    assert.equal(new TextDecoder().decode(res.bufferedBody!), "hello");
    assert.equal(await readText(res.body), "hello");
    assert.equal([...await res.trailers].length, 0);
    assert.ok(seen);
    assert.ok(seen.head.startsWith("GET /a?b=1 HTTP/1.1\r\n"));
    assert.equal(seen.headers.get("host"), "example.test");
    assert.equal(seen.headers.get("x-custom"), "a b");
    assert.equal(seen.headers.has("content-length"), false);
    assert.equal(seen.headers.has("transfer-encoding"), false);
  } finally {
    pool.close();
    await server.close();
  }
});

Deno.test("Http1Pool adds Host from the target when the headers have none", async () => {
  let host: string | undefined;
  const server = new RawServer(keepAlive(async (conn, request) => {
    host = request.headers.get("host");
    await conn.write("HTTP/1.1 204 No Content\r\n\r\n");
  }));
  const pool = poolFor(server);
  try {
    const res = await pool.request(get("/", { headers: new Headers() }));
    assert.equal(res.body, null);
    assert.equal(host, `127.0.0.1:${server.port}`);
  } finally {
    pool.close();
    await server.close();
  }
});

Deno.test("Http1Pool sends a Uint8Array body with its Content-Length, replacing a stale one", async () => {
  let seen: { length?: string; te?: string; body: string } | undefined;
  const server = new RawServer(keepAlive(async (conn, request) => {
    const body = new TextDecoder().decode(await conn.readBodyBytes(request));
    seen = {
      length: request.headers.get("content-length"),
      te: request.headers.get("transfer-encoding"),
      body,
    };
    await conn.write("HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n");
  }));
  const pool = poolFor(server);
  try {
    const headers = new Headers({
      host: "x",
      "content-length": "999",
      "transfer-encoding": "gzip",
    });
    const body = new TextEncoder().encode("replaced body");
    const res = await pool.request(get("/", { method: "POST", headers, body }));
    assert.equal(res.body, null);
    assert.deepEqual(seen, { length: "13", te: undefined, body: "replaced body" });
    // a POST without a body says so
    await pool.request(get("/", { method: "POST" }));
    assert.deepEqual(seen, { length: "0", te: undefined, body: "" });
  } finally {
    pool.close();
    await server.close();
  }
});

Deno.test("Http1Pool reads a chunked body with extensions and trailers", async () => {
  const server = new RawServer(fixed(
    "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\ntrailer: x-checksum\r\n\r\n" +
      "5;name=value\r\nhello\r\n" +
      "1\r\n \r\n" +
      "5\r\nworld\r\n" +
      "0\r\nx-checksum: abc\r\nx-other: 1\r\n\r\n",
  ));
  const pool = poolFor(server);
  try {
    const res = await pool.request(get());
    assert.equal(await readText(res.body), "hello world");
    const trailers = await res.trailers;
    assert.equal(trailers.get("x-checksum"), "abc");
    assert.equal(trailers.get("x-other"), "1");
    // the connection went back to the pool
    const again = await pool.request(get());
    assert.equal(await readText(again.body), "hello world");
    assert.equal(server.accepted, 1);
  } finally {
    pool.close();
    await server.close();
  }
});

Deno.test("Http1Pool fails a malformed chunked body at once and drops its connection", async () => {
  // Each of these is refused by the strict chunked decoder: the body errors with a reset
  // (a 502 or a cut response downstream), never a wait for bytes that will not come.
  for (
    const framing of [
      "5 \r\nhello\r\n0\r\n\r\n",
      "+5\r\nhello\r\n0\r\n\r\n",
      "fffffffffffffff\r\n",
      "5\nhello\r\n0\r\n\r\n",
      "5\r\nhello\n0\r\n\r\n",
      "0\r\nx: 1\n\r\n",
    ]
  ) {
    const server = new RawServer(keepAlive(async (conn, request) => {
      await conn.readBody(request);
      await conn.write("HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n" + framing);
    }));
    const pool = poolFor(server);
    try {
      const res = await pool.request(get());
      await assert.rejects(readAll(res.body), UpstreamResetError, JSON.stringify(framing));
      assert.ok(await waitFor(() => pool.size === 0), "the connection is not reused");
    } finally {
      pool.close();
      await server.close();
    }
  }
});

Deno.test("Http1Pool reads a response head whose lines end in a bare LF, as nginx does", async () => {
  const server = new RawServer(fixed("HTTP/1.1 200 OK\ncontent-length: 2\n\nok"));
  const pool = poolFor(server);
  try {
    const response = await pool.request(get());
    assert.equal(response.status, 200);
    assert.equal(response.headers.get("content-length"), "2");
    assert.equal(new TextDecoder().decode(await readAll(response.body)), "ok");
  } finally {
    pool.close();
    await server.close();
  }
});

Deno.test("Http1Pool sends and receives obs-text header bytes unchanged", async () => {
  let seen = "";
  const server = new RawServer(keepAlive(async (conn, request) => {
    seen = request.headers.get("x-name") ?? "";
    await conn.readBody(request);
    await conn.write("HTTP/1.1 200 OK\r\nx-back: caf\xe9\r\ncontent-length: 0\r\n\r\n");
  }));
  const pool = poolFor(server);
  try {
    const res = await pool.request(get("/", {
      headers: new Headers({ host: "example.test", "x-name": "caf\xe9" }),
    }));
    assert.equal(res.headers.get("x-back"), "caf\xe9");
    await readAll(res.body);
    // the raw server reads the head as UTF-8: 0xe9 alone is not UTF-8
    assert.equal(seen, "caf\ufffd");
  } finally {
    pool.close();
    await server.close();
  }
});

Deno.test("Http1Pool reads a chunked body that arrives a few bytes at a time", async () => {
  const wire = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" +
    "3\r\nabc\r\nA\r\n0123456789\r\n0\r\n\r\n";
  const server = new RawServer(keepAlive(async (conn, request) => {
    await conn.readBody(request);
    for (let i = 0; i < wire.length; i += 3) {
      await conn.write(wire.slice(i, i + 3));
      await delay(1);
    }
  }));
  const pool = poolFor(server);
  try {
    const res = await pool.request(get());
    assert.equal(await readText(res.body), "abc0123456789");
    assert.equal([...await res.trailers].length, 0);
    assert.ok(await waitFor(() => pool.size === 1));
  } finally {
    pool.close();
    await server.close();
  }
});

Deno.test("Http1Pool reads a close-delimited body and does not reuse its connection", async () => {
  const server = new RawServer(async (conn) => {
    await conn.readRequest();
    await conn.write("HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n\r\nuntil ");
    await delay(5);
    await conn.write("the end");
    conn.close();
  });
  const pool = poolFor(server);
  try {
    const res = await pool.request(get());
    assert.equal(await readText(res.body), "until the end");
    assert.equal(pool.size, 0);
    const again = await pool.request(get());
    assert.equal(await readText(again.body), "until the end");
    assert.equal(server.accepted, 2);
  } finally {
    pool.close();
    await server.close();
  }
});

Deno.test("Http1Pool skips 100 Continue and 103 Early Hints", async () => {
  const server = new RawServer(fixed(
    "HTTP/1.1 100 Continue\r\n\r\n" +
      "HTTP/1.1 103 Early Hints\r\nlink: </style.css>; rel=preload\r\n\r\n" +
      "HTTP/1.1 201 Created\r\ncontent-length: 2\r\n\r\nok",
  ));
  const pool = poolFor(server);
  try {
    const res = await pool.request(get());
    assert.equal(res.status, 201);
    assert.equal(res.headers.has("link"), false);
    assert.equal(await readText(res.body), "ok");
  } finally {
    pool.close();
    await server.close();
  }
});

Deno.test("Http1Pool gives HEAD, 204 and 304 responses no body and reuses the connection", async () => {
  const server = new RawServer(keepAlive(async (conn, request) => {
    if (request.method === "HEAD") {
      await conn.write("HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\n");
    } else if (request.path === "/204") {
      await conn.write("HTTP/1.1 204 No Content\r\n\r\n");
    } else {
      await conn.write('HTTP/1.1 304 Not Modified\r\ncontent-length: 50\r\netag: "x"\r\n\r\n');
    }
  }));
  const pool = poolFor(server);
  try {
    const head = await pool.request(get("/", { method: "HEAD" }));
    assert.equal(head.body, null);
    assert.equal(head.headers.get("content-length"), "1000");
    const noContent = await pool.request(get("/204"));
    assert.equal(noContent.status, 204);
    assert.equal(noContent.body, null);
    const notModified = await pool.request(get("/304"));
    assert.equal(notModified.status, 304);
    assert.equal(notModified.body, null);
    assert.equal(server.accepted, 1);
    assert.equal(pool.size, 1);
  } finally {
    pool.close();
    await server.close();
  }
});

Deno.test("Http1Pool keeps repeated set-cookie fields apart and Latin-1 bytes intact", async () => {
  const server = new RawServer(fixed(
    "HTTP/1.1 200 OK\r\nSet-Cookie: a=1; Path=/\r\nset-cookie: b=2\r\n" +
      "x-latin: caf\xe9\r\nx-folded: one\r\n  two\r\ncontent-length: 0\r\n\r\n",
  ));
  const pool = poolFor(server);
  try {
    const res = await pool.request(get());
    assert.deepEqual(res.headers.getSetCookie(), ["a=1; Path=/", "b=2"]);
    assert.equal(res.headers.get("x-latin"), "caf\xe9");
    assert.equal(res.headers.get("x-folded"), "one two");
  } finally {
    pool.close();
    await server.close();
  }
});

Deno.test("Http1Pool reuses one keep-alive connection for sequential requests", async () => {
  const server = new RawServer(fixed("HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"));
  const pool = poolFor(server);
  try {
    for (let i = 0; i < 20; i++) {
      const res = await pool.request(get());
      assert.equal(await readText(res.body), "ok");
    }
    assert.equal(server.accepted, 1);
    assert.equal(pool.size, 1);
  } finally {
    pool.close();
    await server.close();
  }
});

Deno.test("Http1Pool closes connections on Connection: close and on HTTP/1.0", async () => {
  const server = new RawServer(keepAlive(async (conn, request) => {
    if (request.path === "/close") {
      await conn.write("HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 1\r\n\r\na");
    } else if (request.path === "/old") {
      await conn.write("HTTP/1.0 200 OK\r\ncontent-length: 1\r\n\r\nb");
    } else {
      await conn.write("HTTP/1.0 200 OK\r\nconnection: keep-alive\r\ncontent-length: 1\r\n\r\nc");
    }
  }));
  const pool = poolFor(server);
  try {
    assert.equal(await readText((await pool.request(get("/close"))).body), "a");
    assert.equal(pool.size, 0);
    assert.equal(await readText((await pool.request(get("/old"))).body), "b");
    assert.equal(pool.size, 0);
    assert.equal(await readText((await pool.request(get("/old-keep"))).body), "c");
    assert.equal(pool.size, 1);
    assert.equal(await readText((await pool.request(get("/old-keep"))).body), "c");
    assert.equal(server.accepted, 3);
  } finally {
    pool.close();
    await server.close();
  }
});

Deno.test("Http1Pool closes a connection after maxRequestPerConn requests", async () => {
  const server = new RawServer(fixed("HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"));
  const pool = poolFor(server, { maxRequestPerConn: 2 });
  try {
    for (let i = 0; i < 5; i++) {
      const res = await pool.request(get());
      assert.equal(await readText(res.body), "ok");
    }
    assert.equal(server.accepted, 3);
    assert.equal(pool.size, 1);
  } finally {
    pool.close();
    await server.close();
  }
});

Deno.test("Http1Pool closes idle connections after idleTimeoutMs", async () => {
  let serverSawClose = false;
  const server = new RawServer(async (conn) => {
    await fixed("HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")(conn);
    serverSawClose = true;
  });
  const pool = poolFor(server, { idleTimeoutMs: 50 });
  try {
    await readAll((await pool.request(get())).body);
    assert.equal(pool.size, 1);
    assert.ok(await waitFor(() => pool.size === 0 && serverSawClose));
    // a later request connects afresh
    await readAll((await pool.request(get())).body);
    assert.equal(server.accepted, 2);
  } finally {
    pool.close();
    await server.close();
  }
});

Deno.test("Http1Pool reports a refused connect as UpstreamConnectError naming host:port", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  const pool = new Http1Pool({ hostname: "127.0.0.1", port }, OPTIONS);
  try {
    await assert.rejects(pool.request(get()), (err: Error) => {
      assert.ok(err instanceof UpstreamConnectError);
      assert.ok(err.message.includes(`127.0.0.1:${port}`), err.message);
      assert.ok(err.message.includes("refused"), err.message);
      return true;
    });
    assert.equal(pool.size, 0);
  } finally {
    pool.close();
  }
});

Deno.test("Http1Pool times out a connect that never completes (connect function that never resolves)", async () => {
  let aborted = false;
  const pool = new Http1Pool(
    { hostname: "upstream.test", port: 8080 },
    { ...OPTIONS, connectTimeoutMs: 50 },
    (_hostname, _port, signal) =>
      new Promise<Deno.Conn>(() => {
        signal?.addEventListener("abort", () => aborted = true);
      }),
  );
  try {
    const started = Date.now();
    await assert.rejects(pool.request(get()), (err: Error) => {
      assert.ok(err instanceof UpstreamConnectError);
      assert.ok(err.message.includes("upstream.test:8080"), err.message);
      assert.ok(err.message.includes("timed out after 50ms"), err.message);
      return true;
    });
    assert.ok(Date.now() - started < 2000);
    assert.ok(aborted);
  } finally {
    pool.close();
  }
});

Deno.test("Http1Pool overflows when maxConnections is busy and the queue is full", async () => {
  const release = Promise.withResolvers<void>();
  const server = new RawServer(keepAlive(async (conn) => {
    await release.promise;
    await conn.write("HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok");
  }));
  const pool = poolFor(server, { maxConnections: 1, maxPendingRequests: 0 });
  try {
    const first = pool.request(get());
    await assert.rejects(pool.request(get()), UpstreamOverflowError);
    release.resolve();
    assert.equal(await readText((await first).body), "ok");
  } finally {
    pool.close();
    await server.close();
  }
});

Deno.test("Http1Pool queues requests beyond maxConnections and serves them in turn", async () => {
  const server = new RawServer(keepAlive(async (conn, request) => {
    await delay(5);
    await conn.write(
      `HTTP/1.1 200 OK\r\ncontent-length: ${request.path.length}\r\n\r\n${request.path}`,
    );
  }));
  const pool = poolFor(server, { maxConnections: 2, maxPendingRequests: 10 });
  try {
    const paths = Array.from({ length: 8 }, (_, i) => `/r${i}`);
    const bodies = await Promise.all(
      paths.map(async (path) => await readText((await pool.request(get(path))).body)),
    );
    assert.deepEqual(bodies, paths);
    assert.equal(server.accepted, 2);
    assert.ok(pool.size <= 2);
  } finally {
    pool.close();
    await server.close();
  }
});

Deno.test("Http1Pool lets a queued request leave the queue when its signal aborts", async () => {
  const release = Promise.withResolvers<void>();
  const server = new RawServer(keepAlive(async (conn) => {
    await release.promise;
    await conn.write("HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok");
  }));
  const pool = poolFor(server, { maxConnections: 1, maxPendingRequests: 1 });
  try {
    const first = pool.request(get());
    const controller = new AbortController();
    const queued = pool.request(get("/", { signal: controller.signal }));
    controller.abort(new Error("gave up"));
    await assert.rejects(queued, /gave up/);
    // the queue has room again
    const third = pool.request(get());
    release.resolve();
    assert.equal(await readText((await first).body), "ok");
    assert.equal(await readText((await third).body), "ok");
  } finally {
    pool.close();
    await server.close();
  }
});

/**
 * Answers the first request of each connection as keep-alive; closes the connection
 * without an answer when a second request arrives, the race of an upstream closing an
 * idle connection just as the client reuses it.
 */
async function answerOnceThenDrop(conn: RawConn): Promise<void> {
  const request = await conn.readRequest();
  if (request === null) return;
  await conn.readBody(request);
  await conn.write("HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok");
  await conn.readRequest();
  conn.close();
}

Deno.test("Http1Pool drops an idle connection as soon as the upstream closes it", async () => {
  const server = new RawServer(async (conn) => {
    const request = await conn.readRequest();
    if (request === null) return;
    await conn.readBody(request);
    await conn.write("HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok");
    conn.close();
  });
  const pool = poolFor(server);
  try {
    assert.equal(await readText((await pool.request(get())).body), "ok");
    assert.ok(await waitFor(() => pool.size === 0), "the closed idle connection is dropped");
    // a streamed body, which could not be sent again, goes on a fresh connection
    const body = ReadableStream.from([new TextEncoder().encode("once only")]);
    const res = await pool.request(get("/", { method: "POST", body }));
    assert.equal(await readText(res.body), "ok");
    assert.equal(server.accepted, 2);
  } finally {
    pool.close();
    await server.close();
  }
});

Deno.test("Http1Pool retries once when a reused connection closes before any response byte", async () => {
  const server = new RawServer(answerOnceThenDrop);
  const pool = poolFor(server);
  try {
    assert.equal(await readText((await pool.request(get())).body), "ok");
    assert.equal(pool.size, 1);
    const retried = await pool.request(get());
    assert.equal(await readText(retried.body), "ok");
    const body = new TextEncoder().encode("bytes are safe to resend");
    const withBytes = await pool.request(get("/", { method: "PUT", body }));
    assert.equal(await readText(withBytes.body), "ok");
    assert.equal(server.accepted, 3);
  } finally {
    pool.close();
    await server.close();
  }
});

Deno.test("Http1Pool does not resend a streamed body on a stale connection", async () => {
  const server = new RawServer(answerOnceThenDrop);
  const pool = poolFor(server);
  try {
    await readAll((await pool.request(get())).body);
    const body = ReadableStream.from([new TextEncoder().encode("once only")]);
    await assert.rejects(pool.request(get("/", { method: "POST", body })), UpstreamResetError);
    assert.equal(server.accepted, 1);
    assert.equal(pool.size, 0);
  } finally {
    pool.close();
    await server.close();
  }
});

Deno.test("Http1Pool reports a close before the response head as UpstreamResetError", async () => {
  const server = new RawServer(async (conn) => {
    await conn.readRequest();
    await conn.write("HTTP/1.1 200 OK\r\ncontent-");
    conn.close();
  });
  const pool = poolFor(server);
  try {
    await assert.rejects(pool.request(get()), (err: Error) => {
      assert.ok(err instanceof UpstreamResetError);
      assert.ok(err.message.includes(`127.0.0.1:${server.port}`), err.message);
      return true;
    });
    assert.equal(pool.size, 0);
  } finally {
    pool.close();
    await server.close();
  }
});

Deno.test("Http1Pool rejects malformed response heads as UpstreamResetError", async () => {
  const heads = [
    "SSH-2.0-OpenSSH\r\n\r\n",
    "HTTP/1.1 2x0 OK\r\n\r\n",
    "HTTP/1.1 200 OK\r\ncontent-length: 1\r\ncontent-length: 2\r\n\r\nab",
    "HTTP/1.1 200 OK\r\ncontent-length : 1\r\n\r\na",
    "HTTP/1.1 200 OK\r\nno colon here\r\n\r\n",
  ];
  const server = new RawServer(async (conn, index) => {
    await conn.readRequest();
    await conn.write(heads[index]);
    await conn.waitForClose();
  });
  const pool = poolFor(server);
  try {
    for (const head of heads) {
      await assert.rejects(pool.request(get()), (err: Error) => {
        assert.ok(err instanceof UpstreamResetError, `${head}: ${err}`);
        assert.ok(err.message.includes("malformed"), err.message);
        return true;
      });
    }
    assert.equal(pool.size, 0);
  } finally {
    pool.close();
    await server.close();
  }
});

Deno.test("Http1Pool errors the body stream when the upstream closes mid-body", async () => {
  const server = new RawServer(async (conn) => {
    await conn.readRequest();
    await conn.write("HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\npartial");
    await delay(5);
    conn.close();
  });
  const pool = poolFor(server);
  try {
    const res = await pool.request(get());
    await assert.rejects(readAll(res.body), UpstreamResetError);
    assert.equal([...await res.trailers].length, 0);
    assert.equal(pool.size, 0);
  } finally {
    pool.close();
    await server.close();
  }
});

Deno.test("Http1Pool streams a 10 MB chunked request body upstream intact", async () => {
  const payload = bytesOf(10 * 1024 * 1024, 7);
  let serverHash = "";
  let framing = "";
  const server = new RawServer(keepAlive(async (conn, request) => {
    framing = request.headers.get("transfer-encoding") ?? "none";
    const hash = createHash("sha256");
    const length = await conn.readBody(request, (piece) => hash.update(piece));
    serverHash = hash.digest("hex");
    await conn.write(
      `HTTP/1.1 200 OK\r\ncontent-length: ${String(length).length}\r\n\r\n${length}`,
    );
  }));
  const pool = poolFor(server);
  try {
    let offset = 0;
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (offset >= payload.length) {
          controller.close();
          return;
        }
        // uneven pieces, some larger than the write buffer
        const size = 1000 + (offset % 150_000);
        controller.enqueue(payload.subarray(offset, offset + size));
        offset += size;
      },
    });
    const res = await pool.request(get("/upload", { method: "POST", body }));
    assert.equal(await readText(res.body), String(payload.length));
    assert.equal(framing, "chunked");
    assert.equal(serverHash, sha256(payload));
    assert.equal(pool.size, 1);
  } finally {
    pool.close();
    await server.close();
  }
});

Deno.test("Http1Pool sends a streamed body with the request's Content-Length", async () => {
  let seen: { length?: string; te?: string; body?: string } = {};
  const server = new RawServer(keepAlive(async (conn, request) => {
    const body = new TextDecoder().decode(await conn.readBodyBytes(request));
    seen = {
      length: request.headers.get("content-length"),
      te: request.headers.get("transfer-encoding"),
      body,
    };
    await conn.write("HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n");
  }));
  const pool = poolFor(server);
  try {
    const encoder = new TextEncoder();
    const body = ReadableStream.from([encoder.encode("hello "), encoder.encode("world")]);
    const headers = new Headers({ host: "x", "content-length": "11" });
    await pool.request(get("/", { method: "PUT", headers, body }));
    assert.deepEqual(seen, { length: "11", te: undefined, body: "hello world" });
    assert.ok(await waitFor(() => pool.size === 1));
  } finally {
    pool.close();
    await server.close();
  }
});

Deno.test("Http1Pool streams 10 MB responses back intact, chunked and with Content-Length", async () => {
  const payload = bytesOf(10 * 1024 * 1024, 11);
  const server = new RawServer(keepAlive(async (conn, request) => {
    if (request.path === "/chunked") {
      await conn.write("HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n");
      for (let offset = 0, i = 0; offset < payload.length; i++) {
        const size = Math.min(payload.length - offset, 1 + (i * 7919) % 200_000);
        await conn.write(`${size.toString(16)}\r\n`);
        await conn.write(payload.subarray(offset, offset + size));
        await conn.write("\r\n");
        offset += size;
      }
      await conn.write("0\r\n\r\n");
    } else {
      await conn.write(`HTTP/1.1 200 OK\r\ncontent-length: ${payload.length}\r\n\r\n`);
      await conn.write(payload);
    }
  }));
  const pool = poolFor(server);
  try {
    for (const path of ["/chunked", "/length"]) {
      const res = await pool.request(get(path));
      const hash = createHash("sha256");
      let length = 0;
      for await (const piece of res.body!) {
        hash.update(piece);
        length += piece.length;
      }
      assert.equal(length, payload.length, path);
      assert.equal(hash.digest("hex"), sha256(payload), path);
    }
    assert.equal(server.accepted, 1);
  } finally {
    pool.close();
    await server.close();
  }
});

Deno.test("Http1Pool closes the connection when the consumer cancels the body", async () => {
  let serverSawClose = false;
  const server = new RawServer(async (conn) => {
    await conn.readRequest();
    await conn.write("HTTP/1.1 200 OK\r\ncontent-length: 1000000\r\n\r\nfirst bytes");
    await conn.waitForClose();
    serverSawClose = true;
  });
  const pool = poolFor(server);
  try {
    const res = await pool.request(get());
    const reader = res.body!.getReader();
    const first = await reader.read();
    assert.equal(new TextDecoder().decode(first.value), "first bytes");
    await reader.cancel();
    assert.equal(pool.size, 0);
    assert.ok(await waitFor(() => serverSawClose));
    assert.equal([...await res.trailers].length, 0);
  } finally {
    pool.close();
    await server.close();
  }
});

Deno.test("Http1Pool aborts on its signal before the head and in the middle of the body", async () => {
  const server = new RawServer(async (conn, index) => {
    await conn.readRequest();
    if (index === 1) await conn.write("HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nsome");
    await conn.waitForClose();
  });
  const pool = poolFor(server);
  try {
    const beforeHead = new AbortController();
    const pending = pool.request(get("/", { signal: beforeHead.signal }));
    await delay(20);
    beforeHead.abort(new Error("client went away"));
    await assert.rejects(pending, /client went away/);
    assert.equal(pool.size, 0);

    const midBody = new AbortController();
    const res = await pool.request(get("/", { signal: midBody.signal }));
    const reader = res.body!.getReader();
    assert.equal(new TextDecoder().decode((await reader.read()).value), "some");
    const next = reader.read();
    midBody.abort(new Error("route timeout"));
    await assert.rejects(next, /route timeout/);
    assert.equal(pool.size, 0);
  } finally {
    pool.close();
    await server.close();
  }
});

Deno.test("Http1Pool fails requests after close()", async () => {
  const server = new RawServer(fixed("HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"));
  const pool = poolFor(server);
  try {
    await readAll((await pool.request(get())).body);
    assert.equal(pool.size, 1);
    pool.close();
    assert.equal(pool.size, 0);
    await assert.rejects(pool.request(get()), UpstreamConnectError);
  } finally {
    pool.close();
    await server.close();
  }
});

Deno.test("Http1Pool hands a freed slot to a queued request when connections close", async () => {
  const server = new RawServer(async (conn) => {
    await conn.readRequest();
    await delay(2);
    await conn.write("HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 2\r\n\r\nok");
  });
  const pool = poolFor(server, { maxConnections: 1, maxPendingRequests: 10 });
  try {
    const bodies = await Promise.all(
      Array.from({ length: 4 }, async () => await readText((await pool.request(get())).body)),
    );
    assert.deepEqual(bodies, ["ok", "ok", "ok", "ok"]);
    assert.equal(server.accepted, 4);
    assert.equal(pool.size, 0);
  } finally {
    pool.close();
    await server.close();
  }
});

Deno.test("Http1Pool honours a signal that aborts while the connection is being made", async () => {
  const server = new RawServer(fixed("HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"));
  const connected = Promise.withResolvers<void>();
  const pool = new Http1Pool(
    { hostname: "127.0.0.1", port: server.port },
    OPTIONS,
    async (hostname, port) => {
      await connected.promise;
      return await Deno.connect({ hostname, port });
    },
  );
  try {
    const controller = new AbortController();
    const pending = pool.request(get("/", { signal: controller.signal }));
    controller.abort(new Error("too late"));
    connected.resolve();
    await assert.rejects(pending, /too late/);
    assert.equal(pool.size, 0);
    // the slot was freed
    assert.equal(await readText((await pool.request(get())).body), "ok");
  } finally {
    pool.close();
    await server.close();
  }
});
