import assert from "node:assert/strict";
import { matchesCidr, parseCidr, parseIp } from "../../../extensions/filters/ip_access/cidr.ts";

Deno.test("IPv4 CIDRs match the addresses inside them and no others", () => {
  const range = parseCidr("10.1.0.0/16")!;
  assert.ok(matchesCidr(range, parseIp("10.1.255.3")!));
  assert.ok(!matchesCidr(range, parseIp("10.2.0.1")!));
  assert.ok(matchesCidr(parseCidr("0.0.0.0/0")!, parseIp("8.8.8.8")!));
  assert.ok(matchesCidr(parseCidr("127.0.0.1")!, parseIp("127.0.0.1")!));
});

Deno.test("IPv6 CIDRs, compressed forms and IPv4-mapped addresses", () => {
  assert.ok(matchesCidr(parseCidr("2001:db8::/32")!, parseIp("2001:db8:1::5")!));
  assert.ok(!matchesCidr(parseCidr("2001:db8::/32")!, parseIp("2001:db9::1")!));
  assert.ok(matchesCidr(parseCidr("::1/128")!, parseIp("[::1]")!));
  assert.ok(matchesCidr(parseCidr("192.168.0.0/16")!, parseIp("::ffff:192.168.3.4")!));
  assert.ok(!matchesCidr(parseCidr("::/0")!, parseIp("1.2.3.4")!), "families never mix");
});

Deno.test("malformed addresses and prefixes are rejected", () => {
  for (
    const bad of [
      "10.0.0.256",
      "1.2.3",
      "10.0.0.0/33",
      "::1/129",
      "1:2:3:4:5:6:7:8:9",
      "a::b::c",
      "x",
    ]
  ) {
    assert.equal(parseCidr(bad), undefined, bad);
  }
});
