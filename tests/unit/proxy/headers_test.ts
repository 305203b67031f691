import assert from "node:assert/strict";
import { addForwardedHeaders, stripHopByHop } from "../../../src/proxy/headers.ts";

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

Deno.test("X-Forwarded-For appends, Proto and Host are set once, a request id is added", () => {
  const headers = new Headers({ "x-forwarded-for": "1.1.1.1", "x-forwarded-proto": "https" });
  addForwardedHeaders(headers, "2.2.2.2", "http", "example.com:8080");
  assert.equal(headers.get("x-forwarded-for"), "1.1.1.1, 2.2.2.2");
  assert.equal(headers.get("x-forwarded-proto"), "https");
  assert.equal(headers.get("x-forwarded-host"), "example.com:8080");
  assert.match(headers.get("x-request-id")!, /^[0-9a-f-]{36}$/);
});
