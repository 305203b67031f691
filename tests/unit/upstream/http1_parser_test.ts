import assert from "node:assert/strict";
import {
  decodeLatin1,
  findHeadEnd,
  MalformedResponseError,
  parseChunkSize,
  parseResponseHead,
} from "../../../src/upstream/http1_parser.ts";
import {
  bodyFraming,
  CHUNKED,
  encodeRequestHead,
  NO_BODY,
} from "../../../src/upstream/http1_writer.ts";
import { ChunkedDecoder } from "../../../src/upstream/http1_chunked.ts";
import { Http1Connection } from "../../../src/upstream/http1_connection.ts";
import { latin1 } from "./_raw_server.ts";

Deno.test("findHeadEnd finds CRLF and bare-LF blank lines and waits for incomplete heads", () => {
  const crlf = latin1("HTTP/1.1 200 OK\r\na: 1\r\n\r\nbody");
  assert.equal(findHeadEnd(crlf, 0, crlf.length), crlf.length - 4);
  const lf = latin1("HTTP/1.1 200 OK\na: 1\n\nbody");
  assert.equal(findHeadEnd(lf, 0, lf.length), lf.length - 4);
  const partial = latin1("HTTP/1.1 200 OK\r\na: 1\r\n\r");
  assert.equal(findHeadEnd(partial, 0, partial.length), -1);
  // bytes past `end` do not count
  assert.equal(findHeadEnd(crlf, 0, crlf.length - 6), -1);
});

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

Deno.test("parseChunkSize reads hex sizes and skips extensions", () => {
  const size = (line: string) => {
    const bytes = latin1(`${line}\n`);
    return parseChunkSize(bytes, 0, bytes.length - 1);
  };
  assert.equal(size("1a\r"), 26);
  assert.equal(size("1A;name=value;x\r"), 26);
  assert.equal(size("0\r"), 0);
  assert.equal(size("ff  \r"), 255);
  assert.equal(size("\r"), -1);
  assert.equal(size("zz\r"), -1);
  assert.equal(size("1 2\r"), -1);
  assert.equal(size("fffffffffffffff\r"), -1);
});

Deno.test("decodeLatin1 keeps every byte as one character", () => {
  assert.equal(decodeLatin1(latin1("plain ascii"), 0, 11), "plain ascii");
  const bytes = new Uint8Array([0x63, 0x61, 0x66, 0xe9, 0x80, 0xff]);
  assert.equal(decodeLatin1(bytes, 0, bytes.length), "caf\xe9\x80\xff");
  // valid UTF-8 is still read byte by byte: header bytes are not text
  const utf8 = new TextEncoder().encode("é");
  assert.equal(decodeLatin1(utf8, 0, utf8.length), "\xc3\xa9");
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

Deno.test("ChunkedDecoder joins the data of several chunks and reads trailers", () => {
  const conn = new Http1Connection({} as Deno.Conn);
  const wire = latin1("3;x=1\r\nabc\r\n2\r\nde\r\n0\r\nx-sum: 9\r\n\r\n");
  conn.buf.set(wire);
  conn.end = wire.length;
  const decoder = new ChunkedDecoder();
  const length = decoder.decode(conn);
  assert.equal(new TextDecoder().decode(conn.buf.subarray(0, length)), "abcde");
  assert.equal(decoder.finished, true);
  assert.equal(decoder.trailers?.get("x-sum"), "9");
  assert.equal(conn.start, wire.length);
});

Deno.test("ChunkedDecoder resumes across partial reads and rejects bad framing", () => {
  const conn = new Http1Connection({} as Deno.Conn);
  const decoder = new ChunkedDecoder();
  const out: string[] = [];
  for (const piece of ["5\r", "\nhel", "lo\r", "\n0\r\n", "\r\n"]) {
    const bytes = latin1(piece);
    conn.buf.set(bytes, conn.end);
    conn.end += bytes.length;
    const start = conn.start;
    const length = decoder.decode(conn);
    out.push(new TextDecoder().decode(conn.buf.subarray(start, start + length)));
  }
  assert.equal(out.join(""), "hello");
  assert.equal(decoder.finished, true);

  const bad = new Http1Connection({} as Deno.Conn);
  const wire = latin1("3\r\nabcdef\r\n");
  bad.buf.set(wire);
  bad.end = wire.length;
  assert.throws(() => new ChunkedDecoder().decode(bad), MalformedResponseError);
});
