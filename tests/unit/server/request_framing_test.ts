import assert from "node:assert/strict";
import { RequestFraming } from "../../../src/server/request_framing.ts";

const encode = (text: string) => new TextEncoder().encode(text);

/** Feeds `text` in pieces of `size` bytes and records the state after each piece. */
function feed(text: string, size = Infinity): { framing: RequestFraming; states: string[] } {
  const framing = new RequestFraming();
  const bytes = encode(text);
  const states: string[] = [];
  const step = Math.min(size, bytes.length);
  for (let i = 0; i < bytes.length; i += step) {
    framing.push(bytes.subarray(i, i + step));
    states.push(framing.state);
  }
  return { framing, states };
}

Deno.test("a head without a body ends the request; pipelined heads are counted", () => {
  const { framing } = feed("GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n");
  assert.equal(framing.heads, 2);
  assert.equal(framing.state, "idle");
});

Deno.test("an incomplete head stays in the head state, byte by byte too", () => {
  const { framing, states } = feed("GET / HTTP/1.1\r\nHost: x\r\nX-Slow: 1", 1);
  assert.equal(framing.heads, 0);
  assert.ok(states.every((s) => s === "head"));
});

Deno.test("a Content-Length body is skipped to its end, however it is split", () => {
  for (const size of [1, 3, 1000]) {
    const { framing } = feed(
      "POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\n0123456789GET /next HTTP/1.1\r\n",
      size,
    );
    assert.equal(framing.heads, 1, `size ${size}`);
    assert.equal(framing.state, "head", `the next request's head began (size ${size})`);
  }
});

Deno.test("a chunked body with extensions and trailers is followed to its end", () => {
  const body = "5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n";
  for (const size of [1, 4, 1000]) {
    const { framing } = feed(
      `POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n${body}GET /n HTTP/1.1\r\n\r\n`,
      size,
    );
    assert.equal(framing.heads, 2, `size ${size}`);
    assert.equal(framing.state, "idle", `size ${size}`);
  }
});

Deno.test("an h2c preface, an Upgrade or a CONNECT make the stream opaque", () => {
  assert.equal(feed("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").framing.state, "opaque");
  assert.equal(
    feed("GET / HTTP/1.1\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n").framing.state,
    "opaque",
  );
  assert.equal(feed("CONNECT a:443 HTTP/1.1\r\n\r\n").framing.state, "opaque");
});
