import assert from "node:assert/strict";
import { isValidAuthority, parseAbsoluteTarget } from "../../../src/proxy/host.ts";

Deno.test("an authority is an RFC 3986 host with an optional port", () => {
  const valid = [
    "a",
    "example.com",
    "Example.COM:8080",
    "127.0.0.1:2046",
    "[::1]",
    "[::1]:80",
    "[2001:db8::1]:443",
    "xn--bcher-kva.example",
    "a%41b",
    "a_b-c~d",
    "a:65535",
  ];
  for (const authority of valid) assert.equal(isValidAuthority(authority), true, authority);
  const invalid = [
    "",
    "a/admin",
    "a/x?q= y",
    "a b",
    " a",
    "a@b",
    "a#b",
    "a\\b",
    "a:99999",
    "a:",
    ":80",
    "a:8x",
    "a:1:2",
    "::1",
    "[::1",
    "[]",
    "[a::g]",
    "[::1]x",
    "a%4",
    "a%zz",
    "bücher.example",
    "a\r\nb",
  ];
  for (const authority of invalid) {
    assert.equal(isValidAuthority(authority), false, JSON.stringify(authority));
  }
});

Deno.test("an absolute-form target gives its authority and an origin-form target", () => {
  assert.deepEqual(parseAbsoluteTarget("http://b.example/x?y=1"), {
    authority: "b.example",
    originForm: "/x?y=1",
  });
  assert.deepEqual(parseAbsoluteTarget("HTTPS://b.example:8443"), {
    authority: "b.example:8443",
    originForm: "/",
  });
  assert.deepEqual(parseAbsoluteTarget("http://b?q"), { authority: "b", originForm: "/?q" });
  for (const bad of ["ftp://b/x", "http://user@b/x", "http:///x", "b.example/x", "*", "a:443"]) {
    assert.equal(parseAbsoluteTarget(bad), undefined, bad);
  }
});
