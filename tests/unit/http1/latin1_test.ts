import assert from "node:assert/strict";
import { decodeLatin1, encodeLatin1Into } from "../../../src/http1/latin1.ts";

Deno.test("decodeLatin1 keeps every byte as one character", () => {
  const ascii = new TextEncoder().encode("plain ascii");
  assert.equal(decodeLatin1(ascii, 0, ascii.length), "plain ascii");
  assert.equal(decodeLatin1(ascii, 0, ascii.length, true), "plain ascii");
  assert.equal(decodeLatin1(ascii, 6, 11, false), "ascii");
  const bytes = new Uint8Array([0x63, 0x61, 0x66, 0xe9, 0x80, 0xff]);
  assert.equal(decodeLatin1(bytes, 0, bytes.length), "caf\xe9\x80\xff");
  assert.equal(decodeLatin1(bytes, 0, bytes.length, false), "caf\xe9\x80\xff");
  // valid UTF-8 is still read byte by byte: header bytes are not text
  const utf8 = new TextEncoder().encode("é");
  assert.equal(decodeLatin1(utf8, 0, utf8.length), "\xc3\xa9");
  // long inputs go through in pieces
  const long = new Uint8Array(10_000).fill(0xe9);
  assert.equal(decodeLatin1(long, 0, long.length), "\xe9".repeat(10_000));
});

Deno.test("encodeLatin1Into writes one byte per char, at an offset", () => {
  const out = new Uint8Array(8);
  assert.equal(encodeLatin1Into("GET", out, 0), 3);
  assert.deepEqual([...out.subarray(0, 3)], [0x47, 0x45, 0x54]);
  assert.equal(encodeLatin1Into("caf\xe9\x80", out, 2), 5);
  assert.deepEqual([...out], [0x47, 0x45, 0x63, 0x61, 0x66, 0xe9, 0x80, 0]);
});

Deno.test("encodeLatin1Into refuses chars without a Latin-1 byte", () => {
  // U+010A would truncate to LF: never written as one
  assert.equal(encodeLatin1Into("a\u010a", new Uint8Array(2), 0), -1);
  assert.equal(encodeLatin1Into("日本", new Uint8Array(6), 0), -1);
});
