import assert from "node:assert/strict";
import { findHeadEnd } from "../../../src/http1/head_end.ts";
import { MalformedResponseError, parseResponseHead } from "../../../src/upstream/http1_parser.ts";
import {
  bodyFraming,
  CHUNKED,
  encodeRequestHead,
  NO_BODY,
} from "../../../src/upstream/http1_writer.ts";
import { Http1Connection } from "../../../src/upstream/http1_connection.ts";
import { parseRequestHead } from "../../../src/server/http1/request_head.ts";
import { latin1 } from "./_raw_server.ts";

Deno.test("parseResponseHead reads status, reason, version and framing fields", () => {
  const head = parseResponseHead(
    "HTTP/1.0 404 Not Found\r\nContent-Length: 5, 5\r\nConnection: Keep-Alive\r\n" +
      "X-Multi: a\r\nx-multi: b\r\n\r\n",
  );
  assert.equal(head.version, 0);
  assert.equal(head.status, 404);
  assert.equal(head.statusText, "Not Found");
  assert.equal(head.contentLength, 5);
  assert.equal(head.connectionKeepAlive, true);
  assert.equal(head.connectionClose, false);
  assert.equal(head.headers.get("x-multi"), "a, b");

  const chunked = parseResponseHead(
    "HTTP/1.1 200\r\nTransfer-Encoding: gzip\r\ntransfer-encoding: Chunked\r\n\r\n",
  );
  assert.equal(chunked.statusText, "");
  assert.equal(chunked.chunked, true);
  assert.equal(
    parseResponseHead("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n").chunked,
    false,
  );
  assert.equal(
    parseResponseHead("HTTP/1.1 200 OK\r\nConnection: te, close\r\n\r\n").connectionClose,
    true,
  );
});

Deno.test("parseResponseHead rejects heads that break the grammar", () => {
  const bad = [
    "HTTP/2 200 OK\r\n\r\n",
    "HTTP/1.1 20 OK\r\n\r\n",
    "HTTP/1.1 200OK\r\n\r\n",
    "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
    "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
    "HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n",
    "HTTP/1.1 200 OK\r\nName : x\r\n\r\n",
    "HTTP/1.1 200 OK\r\n folded-first: x\r\n\r\n",
    "HTTP/1.1 200 OK\r\n: no name\r\n\r\n",
  ];
  for (const head of bad) {
    assert.throws(() => parseResponseHead(head), MalformedResponseError, JSON.stringify(head));
  }
});

Deno.test("bodyFraming picks Content-Length, chunked or none", () => {
  const none = new Headers();
  assert.equal(bodyFraming("GET", null, none), NO_BODY);
  assert.equal(bodyFraming("POST", null, none), 0);
  assert.equal(bodyFraming("PUT", new Uint8Array(7), none), 7);
  const stream = () => ReadableStream.from<Uint8Array>([]);
  assert.equal(bodyFraming("POST", stream(), none), CHUNKED);
  assert.equal(bodyFraming("POST", stream(), new Headers({ "content-length": "12" })), 12);
  assert.equal(bodyFraming("POST", stream(), new Headers({ "content-length": "x" })), CHUNKED);
});

Deno.test("encodeRequestHead writes lowercase fields and its own framing", () => {
  const headers = new Headers({
    Host: "example.test",
    "Content-Length": "99",
    "Transfer-Encoding": "chunked",
    Accept: "*/*",
  });
  assert.equal(
    encodeRequestHead("POST", "/x?y=1", headers, "up:80", 5),
    "POST /x?y=1 HTTP/1.1\r\naccept: */*\r\nhost: example.test\r\ncontent-length: 5\r\n\r\n",
  );
  assert.equal(
    encodeRequestHead("GET", "/", new Headers(), "up:80", CHUNKED),
    "GET / HTTP/1.1\r\nhost: up:80\r\ntransfer-encoding: chunked\r\n\r\n",
  );
  assert.equal(
    encodeRequestHead("GET", "/", new Headers({ host: "h" }), "up:80", NO_BODY),
    "GET / HTTP/1.1\r\nhost: h\r\n\r\n",
  );
});

/** A connection whose writes are recorded. */
function recording(): { conn: Http1Connection; wire: () => Uint8Array } {
  const writes: Uint8Array[] = [];
  const socket = {
    write(bytes: Uint8Array) {
      writes.push(bytes.slice());
      return Promise.resolve(bytes.length);
    },
  } as unknown as Deno.Conn;
  return {
    conn: new Http1Connection(socket),
    wire: () => {
      const all = new Uint8Array(writes.reduce((n, w) => n + w.length, 0));
      let offset = 0;
      for (const w of writes) {
        all.set(w, offset);
        offset += w.length;
      }
      return all;
    },
  };
}

Deno.test("writeHead sends obs-text header bytes as they were read, one byte each", async () => {
  // What the server read from a client's `X-Name: caf\xe9` (one char per byte)...
  const client = latin1("GET /a HTTP/1.1\r\nHost: h\r\nX-Name: caf\xe9 \x80\xff\r\n\r\n");
  const read = parseRequestHead(client, 0, findHeadEnd(client, 0, client.length));
  assert.equal(read.headers.get("x-name"), "caf\xe9 \x80\xff");
  // ...goes upstream as the same bytes.
  const { conn, wire } = recording();
  const text = encodeRequestHead("GET", read.target, read.headers, "up:80", NO_BODY);
  await conn.writeHead(text, new Uint8Array([1, 2]));
  const sent = wire();
  assert.deepEqual(sent, latin1(`${text}\x01\x02`));
  const head = findHeadEnd(sent, 0, sent.length);
  assert.equal(head, text.length);
  assert.equal(parseRequestHead(sent, 0, head).headers.get("x-name"), "caf\xe9 \x80\xff");
});

Deno.test("writeHead keeps UTF-8 for a head that has no Latin-1 form", async () => {
  const { conn, wire } = recording();
  const text = "GET /\u65e5 HTTP/1.1\r\nhost: h\r\n\r\n";
  await conn.writeHead(text, null);
  assert.deepEqual(wire(), new TextEncoder().encode(text));
});
