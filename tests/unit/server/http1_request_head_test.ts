import assert from "node:assert/strict";
import { findHeadEnd } from "../../../src/http1/head_end.ts";
import {
  BadRequestError,
  BodyFraming,
  parseRequestHead,
} from "../../../src/server/http1/request_head.ts";
import { toLatin1 } from "../../attack/client_socket.ts";

function parse(text: string) {
  const bytes = toLatin1(text);
  const end = findHeadEnd(bytes, 0, bytes.length);
  assert.ok(end > 0, "the head is complete");
  return parseRequestHead(bytes, 0, end);
}

function refuses(text: string, status: number) {
  assert.throws(
    () => parse(text),
    (error) => error instanceof BadRequestError && error.status === status,
    JSON.stringify(text),
  );
}

Deno.test("a request head is parsed into method, raw target, Host, framing and one Headers", () => {
  const head = parse(
    "POST /a/../b?q=%20 HTTP/1.1\r\nHost: a/admin\r\nContent-Length:  12 \r\n" +
      "Connection: keep-alive, close\r\nX-Obs: caf\xe9\xff\r\n\r\n",
  );
  assert.equal(head.method, "POST");
  assert.equal(head.target, "/a/../b?q=%20");
  assert.equal(head.host, "a/admin");
  assert.equal(head.framing, BodyFraming.Length);
  assert.equal(head.contentLength, 12);
  assert.ok(head.close && head.keepAlive);
  // obs-text passes as one char per byte
  assert.equal(head.headers.get("x-obs"), "caf\xe9\xff");
  assert.equal(head.headers.get("content-length"), "12");
});

Deno.test("no Host gives null; HTTP/1.0 and chunked are read; the h2 preface is told apart", () => {
  assert.equal(parse("GET / HTTP/1.0\r\n\r\n").host, null);
  assert.equal(parse("GET / HTTP/1.0\r\n\r\n").minor, 0);
  assert.equal(
    parse("PUT / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\n\r\n").framing,
    BodyFraming.Chunked,
  );
  assert.ok(parse("PRI * HTTP/2.0\r\n\r\n").h2Preface);
  assert.ok(parse("GET / HTTP/1.1\r\nExpect: 100-continue\r\n\r\n").expectContinue);
});

Deno.test("ambiguous or malformed heads are refused with the right status", () => {
  refuses("GET / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n", 400);
  refuses("GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n", 400);
  refuses("GET / HTTP/1.1\r\nContent-Length: 1x\r\n\r\n", 400);
  refuses("GET / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", 400);
  refuses("GET / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501);
  refuses("GET / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400);
  refuses("GET / HTTP/1.1\r\nA: 1\r\n folded\r\n\r\n", 400);
  refuses("GET / HTTP/1.1\r\nA : 1\r\n\r\n", 400);
  refuses("GET / HTTP/1.1\r\n: 1\r\n\r\n", 400);
  refuses("GET / HTTP/1.1\r\nA\x01: 1\r\n\r\n", 400);
  refuses("GET / HTTP/1.1\r\nA: \x7f\r\n\r\n", 400);
  refuses("GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", 400);
  refuses("GET  / HTTP/1.1\r\n\r\n", 400);
  refuses("GET /\xe9 HTTP/1.1\r\n\r\n", 400);
  refuses("GET / HTTP/1.1 \r\n\r\n", 400);
  refuses("GET / HTTP/3.0\r\n\r\n", 505);
  refuses("G(T / HTTP/1.1\r\n\r\n", 400);
});

Deno.test("hop-by-hop fields and those Connection names never reach the headers, protected ones stay", () => {
  const head = parse(
    "GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, X-Secret, X-Forwarded-For, Host\r\n" +
      "Keep-Alive: timeout=5\r\nTE: trailers\r\nTrailer: x\r\nUpgrade: websocket\r\n" +
      "Proxy-Connection: keep-alive\r\nX-Secret: s\r\nX-Forwarded-For: 10.0.0.1\r\nX-Kept: k\r\n\r\n",
  );
  assert.deepEqual([...head.headers], [
    ["host", "a"],
    ["x-forwarded-for", "10.0.0.1"],
    ["x-kept", "k"],
  ]);
  assert.equal(head.keepAlive, true);
  assert.equal(head.upgrade, true);
});
