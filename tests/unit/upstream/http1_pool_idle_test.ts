/**
 * The HTTP/1.1 pool against upstreams that misbehave between and around responses:
 * stray bytes on an idle connection, closes, Keep-Alive timeouts, and framing a proxy
 * must not pass on (both framing headers, unsolicited 101, impossible status codes).
 */

import assert from "node:assert/strict";
import { UpstreamProtocolError, UpstreamResetError } from "../../../src/upstream/types.ts";
import { delay, keepAlive, type RawConn, RawServer, readText, waitFor } from "./_raw_server.ts";
import { get, poolFor } from "./_pool.ts";

function ok(body: string, extra = ""): string {
  return `HTTP/1.1 200 OK\r\ncontent-length: ${body.length}\r\n${extra}\r\n${body}`;
}

/** Answers every request on the connection with `body`. */
const answer = (body: string) =>
  keepAlive(async (conn, request) => {
    await conn.readBody(request);
    await conn.write(ok(body));
  });

/** On its first connection, `first`; every later connection answers "second". */
function firstThen(first: (conn: RawConn) => Promise<void>): RawServer {
  return new RawServer((conn, index) => index === 0 ? first(conn) : answer("second")(conn));
}

Deno.test("Http1Pool never serves a stray response that came while the connection was idle", async () => {
  const server = firstThen(async (conn) => {
    const request = await conn.readRequest();
    if (request === null) return;
    await conn.write(ok("first"));
    await delay(300);
    await conn.write(ok("stray"));
    await answer("second")(conn);
  });
  const pool = poolFor(server);
  try {
    assert.equal(await readText((await pool.request(get())).body), "first");
    assert.ok(await waitFor(() => pool.size === 0, 2000), "the dirty idle connection is dropped");
    assert.equal(await readText((await pool.request(get())).body), "second");
    assert.equal(server.accepted, 2);
  } finally {
    pool.close();
    await server.close();
  }
});

Deno.test("Http1Pool drops an idle connection that received garbage, and the next request works", async () => {
  const server = firstThen(async (conn) => {
    const request = await conn.readRequest();
    if (request === null) return;
    await conn.write(ok("first"));
    await delay(50);
    await conn.write("\x00garbage\r\n");
    // then close, so that a client that took the garbage as a head start fails, not hangs
    await delay(500);
  });
  const pool = poolFor(server);
  try {
    assert.equal(await readText((await pool.request(get())).body), "first");
    await delay(200);
    const res = await pool.request(get());
    assert.equal(res.status, 200);
    assert.equal(await readText(res.body), "second");
  } finally {
    pool.close();
    await server.close();
  }
});

Deno.test("Http1Pool does not reuse a connection with bytes after the response's end", async () => {
  // the stray bytes come in the same packet as the end of the body
  const server = firstThen(async (conn) => {
    const request = await conn.readRequest();
    if (request === null) return;
    await conn.write(ok("first") + ok("stray"));
    await conn.waitForClose();
  });
  const pool = poolFor(server);
  try {
    assert.equal(await readText((await pool.request(get())).body), "first");
    assert.equal(await readText((await pool.request(get())).body), "second");
    assert.equal(server.accepted, 2);
  } finally {
    pool.close();
    await server.close();
  }
});

Deno.test("Http1Pool does not hand bytes read past a body to a queued request", async () => {
  // A long body is read up to its end exactly, so the stray response right behind it
  // stays in the socket until the connection is freed, straight to the queued request.
  const big = "x".repeat(200_000);
  const server = firstThen(async (conn) => {
    const request = await conn.readRequest();
    if (request === null) return;
    await conn.write(ok(big) + ok("stray"));
    await answer("second")(conn);
  });
  const pool = poolFor(server, { maxConnections: 1 });
  try {
    const first = pool.request(get("/1"));
    const second = pool.request(get("/2"));
    const res = await first;
    await delay(50); // let the stray bytes arrive
    assert.equal((await readText(res.body)).length, big.length);
    assert.equal(await readText((await second).body), "second");
  } finally {
    pool.close();
    await server.close();
  }
});

Deno.test("Http1Pool closes an idle connection before the upstream's Keep-Alive timeout", async () => {
  let closedAfter = -1;
  const server = firstThen(async (conn) => {
    const request = await conn.readRequest();
    if (request === null) return;
    await conn.write(ok("first", "keep-alive: timeout=1, max=100\r\n"));
    const idleSince = Date.now();
    await conn.waitForClose();
    closedAfter = Date.now() - idleSince;
  });
  const pool = poolFor(server);
  try {
    assert.equal(await readText((await pool.request(get())).body), "first");
    assert.equal(pool.size, 1);
    assert.ok(await waitFor(() => closedAfter !== -1, 3000), "the client closed the connection");
    assert.ok(closedAfter >= 300 && closedAfter < 900, `closed after ${closedAfter} ms`);
    assert.equal(pool.size, 0);
    assert.equal(await readText((await pool.request(get())).body), "second");
  } finally {
    pool.close();
    await server.close();
  }
});

Deno.test("Http1Pool bounds a Keep-Alive timeout by its own idle timeout, and timeout=0 by none", async () => {
  const server = new RawServer(keepAlive(async (conn, request) => {
    await conn.readBody(request);
    const timeout = request.path === "/zero" ? 0 : 30;
    await conn.write(ok("ok", `keep-alive: timeout=${timeout}\r\n`));
  }));
  const pool = poolFor(server, { idleTimeoutMs: 100 });
  try {
    await readText((await pool.request(get("/thirty"))).body);
    assert.equal(pool.size, 1);
    assert.ok(await waitFor(() => pool.size === 0, 1000));
    await readText((await pool.request(get("/zero"))).body);
    assert.equal(pool.size, 0, "Keep-Alive: timeout=0 leaves nothing to reuse");
  } finally {
    pool.close();
    await server.close();
  }
});

Deno.test("Http1Pool frames a response with Transfer-Encoding and Content-Length by chunks", async () => {
  const server = new RawServer(keepAlive(async (conn, request) => {
    await conn.readBody(request);
    await conn.write(
      "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\ncontent-length: 3\r\n\r\n" +
        "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
    );
  }));
  const pool = poolFor(server);
  try {
    const res = await pool.request(get());
    assert.equal(res.headers.get("content-length"), null);
    assert.equal(await readText(res.body), "hello world");
    assert.ok(await waitFor(() => pool.size === 0), "the connection is not reused");
    await readText((await pool.request(get())).body);
    assert.equal(server.accepted, 2);
  } finally {
    pool.close();
    await server.close();
  }
});

Deno.test("Http1Pool rejects 101 Switching Protocols to a request without Upgrade", async () => {
  const server = new RawServer(keepAlive(async (conn) => {
    await conn.write(
      "HTTP/1.1 101 Switching Protocols\r\nupgrade: h2c\r\nconnection: upgrade\r\n\r\n",
    );
  }));
  const pool = poolFor(server);
  try {
    await assert.rejects(pool.request(get()), (err: Error) => {
      assert.ok(err instanceof UpstreamProtocolError);
      assert.ok(err instanceof UpstreamResetError, "callers answer it as any reset: 502");
      assert.equal(
        err.message,
        `Upstream 127.0.0.1:${server.port} sent 101 Switching Protocols to a request without Upgrade`,
      );
      return true;
    });
    assert.equal(pool.size, 0);
    // a request that asked for an upgrade gets the 101
    const headers = new Headers({ host: "example.test", upgrade: "h2c" });
    const res = await pool.request(get("/", { headers }));
    assert.equal(res.status, 101);
  } finally {
    pool.close();
    await server.close();
  }
});

Deno.test("Http1Pool rejects status codes outside 100-599 with a clear message", async () => {
  for (
    const [line, expected] of [
      ["HTTP/1.1 600 X", "outside 100-599"],
      ["HTTP/1.1 999 X", "outside 100-599"],
      ["HTTP/1.1 042 X", "outside 100-599"],
      ["HTTP/1.1 42 X", '"HTTP/1.1 42 X" is not HTTP/1.x'],
    ]
  ) {
    const server = new RawServer(keepAlive(async (conn) => {
      await conn.write(`${line}\r\ncontent-length: 0\r\n\r\n`);
    }));
    const pool = poolFor(server);
    try {
      await assert.rejects(pool.request(get()), (err: Error) => {
        assert.ok(err instanceof UpstreamResetError, `${line}: ${err}`);
        assert.ok(err.message.includes(`127.0.0.1:${server.port}`), err.message);
        assert.ok(err.message.includes(expected), err.message);
        return true;
      });
      assert.equal(pool.size, 0);
    } finally {
      pool.close();
      await server.close();
    }
  }
});

Deno.test("Http1Pool skips interim responses that arrive in separate packets", async () => {
  const server = new RawServer(keepAlive(async (conn, request) => {
    await conn.readBody(request);
    await conn.write("HTTP/1.1 100 Continue\r\n\r\n");
    await delay(20);
    await conn.write("HTTP/1.1 103 Early Hints\r\nlink: </a.css>; rel=preload\r\n\r\n");
    await delay(20);
    await conn.write(ok("final"));
  }));
  const pool = poolFor(server);
  try {
    for (let i = 0; i < 2; i++) {
      const res = await pool.request(get());
      assert.equal(res.status, 200);
      assert.equal(await readText(res.body), "final");
    }
    assert.equal(server.accepted, 1);
  } finally {
    pool.close();
    await server.close();
  }
});
