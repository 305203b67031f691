import assert from "node:assert/strict";
import {
  encodeHeaders,
  HpackDecoder,
  HpackError,
  huffmanDecode,
} from "../../../src/plugin/hpack.ts";

const hex = (s: string) =>
  Uint8Array.from(s.replace(/\s+/g, "").match(/../g)!, (h) => parseInt(h, 16));

Deno.test("HPACK: RFC 7541 C.4, requests with Huffman and the dynamic table", () => {
  const d = new HpackDecoder();
  assert.deepEqual(d.decode(hex("8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff")), [
    [":method", "GET"],
    [":scheme", "http"],
    [":path", "/"],
    [":authority", "www.example.com"],
  ]);
  assert.deepEqual(d.decode(hex("8286 84be 5886 a8eb 1064 9cbf")), [
    [":method", "GET"],
    [":scheme", "http"],
    [":path", "/"],
    [":authority", "www.example.com"],
    ["cache-control", "no-cache"],
  ]);
  assert.deepEqual(
    d.decode(hex("8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf")),
    [
      [":method", "GET"],
      [":scheme", "https"],
      [":path", "/index.html"],
      [":authority", "www.example.com"],
      ["custom-key", "custom-value"],
    ],
  );
});

Deno.test("HPACK: RFC 7541 C.6, responses with eviction from a 256-byte table", () => {
  const d = new HpackDecoder(256);
  const first = d.decode(hex(
    "4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6 2d1b ff6e " +
      "919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3",
  ));
  assert.deepEqual(first, [
    [":status", "302"],
    ["cache-control", "private"],
    ["date", "Mon, 21 Oct 2013 20:13:21 GMT"],
    ["location", "https://www.example.com"],
  ]);
  // ":status: 307" evicts ":status: 302"; the rest comes from the table.
  assert.deepEqual(d.decode(hex("4883 640e ffc1 c0bf")), [
    [":status", "307"],
    ["cache-control", "private"],
    ["date", "Mon, 21 Oct 2013 20:13:21 GMT"],
    ["location", "https://www.example.com"],
  ]);
});

Deno.test("HPACK: our literals decode, and bad input is refused", () => {
  const fields: [string, string][] = [
    [":method", "POST"],
    [":path", "/proto.Plugin/Call"],
    ["content-type", "application/grpc"],
    ["te", "trailers"],
    ["grpc-timeout", "1000m"],
    ["x-long", "v".repeat(300)],
  ];
  assert.deepEqual(new HpackDecoder().decode(encodeHeaders(fields)), fields);
  assert.throws(() => new HpackDecoder().decode(hex("be")), HpackError); // empty table
  assert.throws(() => new HpackDecoder().decode(hex("4085 f2b2 4a87")), HpackError); // truncated
  assert.throws(() => huffmanDecode(hex("ff ff ff ff"), 0, 4), HpackError); // EOS
  assert.equal(huffmanDecode(hex("f1e3 c2e5 f23a 6ba0 ab90 f4ff"), 0, 12), "www.example.com");
});
