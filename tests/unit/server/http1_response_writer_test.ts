import assert from "node:assert/strict";
import { writeResponse } from "../../../src/server/http1/response_writer.ts";

/** Collects writes; counts them, since head and small body must be one. */
class Collector {
  writes: string[] = [];
  writeAll(bytes: Uint8Array): Promise<void> {
    this.writes.push(String.fromCharCode(...bytes));
    return Promise.resolve();
  }
  get text(): string {
    return this.writes.join("");
  }
}

const GET = { method: "GET", minor: 1 };

Deno.test("bytes go out with Content-Length, in one write with the head", async () => {
  const out = new Collector();
  const headers = new Headers({ "x-a": "caf\xe9", "content-length": "99", connection: "x" });
  const reusable = await writeResponse(
    out,
    {
      status: 200,
      headers,
      body: new TextEncoder().encode("hello"),
    },
    GET,
    false,
  );
  assert.ok(reusable);
  assert.equal(out.writes.length, 1);
  assert.match(out.text, /^HTTP\/1\.1 200 OK\r\n/);
  assert.match(out.text, /\r\ncontent-length: 5\r\n/);
  assert.match(out.text, /\r\nx-a: caf\xe9\r\n/, "obs-text written one byte per char");
  assert.doesNotMatch(out.text, /connection/);
  assert.ok(out.text.endsWith("\r\n\r\nhello"));
});

Deno.test("a stream without a length is chunked; with one it is sent as is", async () => {
  const stream = () => ReadableStream.from([new Uint8Array([97, 98]), new Uint8Array([99])]);
  const chunked = new Collector();
  await writeResponse(chunked, { status: 200, headers: new Headers(), body: stream() }, GET, false);
  assert.match(chunked.text, /transfer-encoding: chunked\r\n\r\n2\r\nab\r\n1\r\nc\r\n0\r\n\r\n$/);
  const fixed = new Collector();
  await writeResponse(
    fixed,
    {
      status: 200,
      headers: new Headers({ "content-length": "3" }),
      body: stream(),
    },
    GET,
    false,
  );
  assert.match(fixed.text, /content-length: 3\r\n\r\nabc$/);
  const short = new Collector();
  const reusable = await writeResponse(
    short,
    {
      status: 200,
      headers: new Headers({ "content-length": "9" }),
      body: stream(),
    },
    GET,
    false,
  );
  assert.equal(reusable, false, "a stream shorter than its length must end the connection");
});

Deno.test("HEAD, 204 and 304 have no body; HTTP/1.0 gets keep-alive or close-delimited", async () => {
  const head = new Collector();
  await writeResponse(
    head,
    {
      status: 200,
      headers: new Headers(),
      body: new TextEncoder().encode("hello"),
    },
    { method: "HEAD", minor: 1 },
    false,
  );
  assert.match(head.text, /content-length: 5\r\n\r\n$/);
  const noContent = new Collector();
  await writeResponse(noContent, { status: 204, headers: new Headers(), body: null }, GET, false);
  assert.doesNotMatch(noContent.text, /content-length|transfer-encoding/);
  const old = new Collector();
  await writeResponse(old, { status: 200, headers: new Headers(), body: null }, {
    method: "GET",
    minor: 0,
  }, false);
  assert.match(old.text, /connection: keep-alive\r\n\r\n$/);
  const oldStream = new Collector();
  const reusable = await writeResponse(
    oldStream,
    {
      status: 200,
      headers: new Headers(),
      body: ReadableStream.from([new Uint8Array([97])]),
    },
    { method: "GET", minor: 0 },
    false,
  );
  assert.equal(reusable, false);
  assert.match(oldStream.text, /connection: close\r\n\r\na$/);
});
