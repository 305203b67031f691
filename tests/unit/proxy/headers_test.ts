import assert from "node:assert/strict";
import { stripHopByHop } from "../../../src/proxy/headers.ts";
import { applyForwarded, forwardedPolicy, parseCidr } from "../../../src/proxy/forwarded.ts";

Deno.test("hop-by-hop fields and the fields Connection names are removed", () => {
  const headers = new Headers({
    connection: "close, X-Private",
    "x-private": "1",
    "keep-alive": "5",
    "proxy-connection": "keep-alive",
    te: "trailers",
    trailer: "x",
    "transfer-encoding": "chunked",
    upgrade: "h2c",
    "x-kept": "yes",
  });
  stripHopByHop(headers);
  assert.deepEqual([...headers], [["x-kept", "yes"]]);
});

Deno.test("Connection cannot name the fields the proxy sets or that frame the message", () => {
  const headers = new Headers({
    connection: "close, x-forwarded-for, X-Forwarded-Proto, x-request-id, host, content-length",
    "x-forwarded-for": "10.0.0.1",
    "x-forwarded-proto": "https",
    "x-request-id": "abc",
    host: "a",
    "content-length": "3",
  });
  stripHopByHop(headers);
  assert.deepEqual([...headers].map(([name]) => name), [
    "content-length",
    "host",
    "x-forwarded-for",
    "x-forwarded-proto",
    "x-request-id",
  ]);
});

const UUID = /^[0-9a-f-]{36}$/;

Deno.test("an untrusted peer's X-Forwarded-Proto, -Host and x-request-id are replaced", () => {
  const headers = new Headers({
    "x-forwarded-for": "1.1.1.1",
    "x-forwarded-proto": "https",
    "x-forwarded-host": "evil.example",
    "x-request-id": "chosen-by-client",
  });
  applyForwarded(headers, "2.2.2.2", "http", "example.com:8080", forwardedPolicy(true, 0, []));
  assert.equal(headers.get("x-forwarded-for"), "1.1.1.1, 2.2.2.2");
  assert.equal(headers.get("x-forwarded-proto"), "http");
  assert.equal(headers.get("x-forwarded-host"), "example.com:8080");
  assert.match(headers.get("x-request-id")!, UUID);
});

Deno.test("a peer in trusted_proxies keeps its forwarded values; absent ones are set", () => {
  const policy = forwardedPolicy(true, 0, ["10.0.0.0/8", "fd00::/8"]);
  for (const peer of ["10.1.2.3", "::ffff:10.9.9.9", "fd12::1"]) {
    const headers = new Headers({
      "x-forwarded-for": "1.1.1.1",
      "x-forwarded-proto": "https",
      "x-request-id": "from-the-edge",
    });
    applyForwarded(headers, peer, "http", "example.com", policy);
    assert.equal(headers.get("x-forwarded-for"), `1.1.1.1, ${peer}`);
    assert.equal(headers.get("x-forwarded-proto"), "https", peer);
    assert.equal(headers.get("x-forwarded-host"), "example.com");
    assert.equal(headers.get("x-request-id"), "from-the-edge");
  }
  const outside = new Headers({ "x-forwarded-proto": "https" });
  applyForwarded(outside, "11.0.0.1", "http", "example.com", policy);
  assert.equal(outside.get("x-forwarded-proto"), "http");
});

Deno.test("use_remote_address false forwards X-Forwarded-For as is; trusted hops find the client", () => {
  const headers = new Headers({ "x-forwarded-for": "1.1.1.1, 10.0.0.7" });
  applyForwarded(headers, "10.0.0.8", "https", "a", forwardedPolicy(false, 1, ["10.0.0.0/8"]));
  assert.equal(headers.get("x-forwarded-for"), "1.1.1.1, 10.0.0.7");
  assert.equal(headers.get("x-envoy-external-address"), "1.1.1.1");
  const appended = new Headers({ "x-forwarded-for": "1.1.1.1" });
  applyForwarded(appended, "10.0.0.8", "https", "a", forwardedPolicy(true, 1, ["10.0.0.0/8"]));
  assert.equal(appended.get("x-forwarded-for"), "1.1.1.1, 10.0.0.8");
  assert.equal(appended.get("x-envoy-external-address"), "1.1.1.1");
});

Deno.test("CIDRs and addresses parse strictly", () => {
  for (const good of ["10.0.0.0/8", "127.0.0.1", "::1/128", "2001:db8::/32", "0.0.0.0/0"]) {
    assert.notEqual(parseCidr(good), undefined, good);
  }
  for (const bad of ["10.0.0.0/33", "10.0.0/8", "::1/129", "1:2:3:4:5:6:7:8:9", "a.b.c.d", ""]) {
    assert.equal(parseCidr(bad), undefined, bad);
  }
  assert.throws(() => forwardedPolicy(true, 0, ["10.0.0.0/33"]), /not an IPv4 or IPv6 CIDR/);
});
