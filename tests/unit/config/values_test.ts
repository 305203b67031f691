import assert from "node:assert/strict";
import {
  describeValue,
  formatHostPort,
  parseDuration,
  parseHostPort,
} from "../../../src/config/values.ts";

Deno.test("Go-style duration strings parse into milliseconds", () => {
  assert.equal(parseDuration("1s"), 1000);
  assert.equal(parseDuration("500ms"), 500);
  assert.equal(parseDuration("1m30s"), 90_000);
  assert.equal(parseDuration("2h"), 7_200_000);
  assert.equal(parseDuration("1.5s"), 1500);
  assert.equal(parseDuration("250us"), 0.25);
  assert.equal(parseDuration("1h2m3s4ms"), 3_723_004);
  assert.equal(parseDuration("0"), 0);
});

Deno.test("a number is not a duration: it has no unit", () => {
  assert.equal(parseDuration(250), undefined);
  assert.equal(parseDuration(0), undefined);
  assert.equal(parseDuration(2), undefined);
});

Deno.test("durations parse as Go's time.ParseDuration reads them", () => {
  // The cases the two former parsers disagreed on.
  assert.equal(parseDuration("0"), 0);
  assert.equal(parseDuration("1.s"), 1000);
  assert.equal(parseDuration(".5s"), 500);
  assert.equal(parseDuration("+2s"), 2000);
  assert.equal(parseDuration(-5), undefined);
  assert.equal(parseDuration("-5s"), undefined);
  assert.equal(parseDuration("."), undefined);
  assert.equal(parseDuration(".s"), undefined);
});

Deno.test("bad durations are rejected", () => {
  for (const bad of ["", "10", "1x", "s", "1 s", "-1s", "1s ", "1m-30s", "1d"]) {
    assert.equal(parseDuration(bad), undefined, bad);
  }
  for (const bad of [-1, Number.NaN, Infinity, null, undefined, true, {}, []]) {
    assert.equal(parseDuration(bad), undefined, String(bad));
  }
});

Deno.test("host:port addresses parse in their IPv4, name and bracketed IPv6 forms", () => {
  assert.deepEqual(parseHostPort("127.0.0.1:2046"), { hostname: "127.0.0.1", port: 2046 });
  assert.deepEqual(parseHostPort("localhost:80"), { hostname: "localhost", port: 80 });
  assert.deepEqual(parseHostPort("[::1]:80"), { hostname: "::1", port: 80 });
  assert.deepEqual(parseHostPort("[fe80::1%eth0]:443"), { hostname: "fe80::1%eth0", port: 443 });
  assert.deepEqual(parseHostPort("0.0.0.0:0"), { hostname: "0.0.0.0", port: 0 });
});

Deno.test("addresses without a host, a port, or brackets around IPv6 are rejected", () => {
  for (
    const bad of [
      "2046x",
      "2046",
      ":2046",
      "host:",
      "host:65536",
      "host:-1",
      "::1:80",
      "[::1]80",
      "[nothex]:80",
      "a b:80",
      "host:80x",
    ]
  ) {
    assert.equal(parseHostPort(bad), undefined, bad);
  }
});

Deno.test("formatHostPort brackets IPv6 hosts only", () => {
  assert.equal(formatHostPort("::1", 80), "[::1]:80");
  assert.equal(formatHostPort("example.com", 443), "example.com:443");
});

Deno.test("describeValue names the kind of a wrong value for messages", () => {
  assert.equal(describeValue("2046x"), '"2046x"');
  assert.equal(describeValue(12), "12");
  assert.equal(describeValue([]), "a list");
  assert.equal(describeValue({}), "a mapping");
  assert.equal(describeValue(undefined), "nothing");
  assert.equal(describeValue(null), "null");
});
