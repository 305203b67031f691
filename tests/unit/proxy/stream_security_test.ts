/**
 * The request side as a client sees it, in process: Host validation, absolute-form
 * targets, HTTP/2 host/:authority, path traversal against a deny route, hop-by-hop
 * headers against a filter's, forwarded-header trust, virtual host settings.
 */

import assert from "node:assert/strict";
import { registerStreamFilter } from "../../../mod.ts";
import { forwardedPolicy } from "../../../src/proxy/forwarded.ts";
import { createInProcessProxy } from "../../../src/proxy/in_process.ts";
import { DEFAULT_PATH_OPTIONS } from "../../../src/proxy/path.ts";

interface Seen {
  path: string;
  headers: Headers;
}

function recorder() {
  const seen: Seen[] = [];
  const upstream = (request: Request) => {
    const url = new URL(request.url);
    seen.push({ path: url.pathname + url.search, headers: request.headers });
    return new Response("upstream\n");
  };
  return { seen, upstream };
}

const DENY_ADMIN = [
  { match: { prefix: "/admin", headers: [] }, directResponse: { status: 403, body: "denied\n" } },
  { match: { prefix: "/", headers: [] } },
];

registerStreamFilter("test_user_tier", () => ({
  createFilterChain(chain) {
    chain.addReceiver({
      onReceive(s) {
        s.headers.set("x-user-tier", "gold");
        s.headers.set("x-authenticated-user", "alice");
        return "continue";
      },
    }, "before_route");
  },
}));

registerStreamFilter("test_config_echo", () => ({
  createFilterChain(chain) {
    chain.addSender({
      append(s) {
        s.headers.set("x-config", JSON.stringify(s.config));
        return "continue";
      },
    });
  },
}));

Deno.test("an invalid or missing Host is answered 400 and never routed", async () => {
  const { seen, upstream } = recorder();
  const proxy = await createInProcessProxy({ routes: DENY_ADMIN, upstream });
  for (const authority of ["a/admin", "a/x?q= y", "", "a b", "a@b", "a:99999", null]) {
    const response = await proxy.raw({ target: "/public", authority });
    assert.equal(response.status, 400, JSON.stringify(authority));
    await response.body?.cancel();
  }
  assert.equal(seen.length, 0);
  // HTTP/1.0 may leave Host out.
  const old = await proxy.raw({ target: "/public", authority: null, protocol: "HTTP/1.0" });
  assert.equal(old.status, 200);
  await old.body?.cancel();
  await proxy.close();
});

Deno.test("an absolute-form target is routed and forwarded by its own authority", async () => {
  const { seen, upstream } = recorder();
  const proxy = await createInProcessProxy({ routes: DENY_ADMIN, upstream });
  const response = await proxy.raw({ target: "http://b.example/x?y=1", authority: "a" });
  assert.equal(response.status, 200);
  await response.body?.cancel();
  assert.equal(seen[0].path, "/x?y=1");
  assert.equal(seen[0].headers.get("host"), "b.example");
  assert.equal(seen[0].headers.get("x-forwarded-host"), "b.example");
  const denied = await proxy.raw({ target: "http://b.example/admin", authority: "a" });
  assert.equal(denied.status, 403);
  await denied.body?.cancel();
  const bad = await proxy.raw({ target: "ftp://b.example/x", authority: "a" });
  assert.equal(bad.status, 400);
  await bad.body?.cancel();
  assert.equal(seen.length, 1);
  await proxy.close();
});

Deno.test("over HTTP/2 a host header that differs from :authority is malformed", async () => {
  const { seen, upstream } = recorder();
  const proxy = await createInProcessProxy({ upstream });
  const mismatch = await proxy.raw({
    target: "/",
    authority: "a.example",
    headers: { host: "b.example" },
    protocol: "HTTP/2",
  });
  assert.equal(mismatch.status, 400);
  await mismatch.body?.cancel();
  const same = await proxy.raw({
    target: "/",
    authority: "a.example",
    headers: { host: "A.example" },
    protocol: "HTTP/2",
  });
  assert.equal(same.status, 200);
  await same.body?.cancel();
  assert.equal(seen.length, 1);
  assert.equal(seen[0].headers.get("host"), "A.example");
  await proxy.close();
});

const TRAVERSALS = [
  "/public/../admin",
  "/./admin",
  "//admin",
  "/%61dmin",
  "/public/%2e%2e/admin",
  "/public%2f..%2fadmin",
  "/public%2F..%2Fadmin",
  "/public\\..\\admin",
  "/public/..;/admin",
  "/public/%2e%2e;/admin",
  "/public/..%5cadmin",
];

Deno.test("every traversal hits the /admin deny route or gets 400, never the upstream", async () => {
  const { seen, upstream } = recorder();
  const proxy = await createInProcessProxy({ routes: DENY_ADMIN, upstream });
  for (const target of TRAVERSALS) {
    const response = await proxy.raw({ target, authority: "a" });
    assert.ok([400, 403].includes(response.status), `${target}: ${response.status}`);
    await response.body?.cancel();
  }
  assert.deepEqual(seen.map((s) => s.path), []);
  // The normalized path is what is forwarded; the query is kept as sent.
  const ok = await proxy.raw({ target: "/a/./b//c/../d?x=/../y", authority: "a" });
  assert.equal(ok.status, 200);
  await ok.body?.cancel();
  assert.equal(seen[0].path, "/a/b/d?x=/../y");
  await proxy.close();
});

Deno.test("path options: unescape_and_forward routes %2F as /, normalize_path off forwards as sent", async () => {
  const { seen, upstream } = recorder();
  const unescape = await createInProcessProxy({
    routes: DENY_ADMIN,
    upstream,
    requestPolicy: {
      path: { ...DEFAULT_PATH_OPTIONS, escapedSlashes: "unescape_and_forward" },
      forwarded: forwardedPolicy(true, 0, []),
    },
  });
  const denied = await unescape.raw({ target: "/public%2f..%2fadmin", authority: "a" });
  assert.equal(denied.status, 403);
  await denied.body?.cancel();
  const passed = await unescape.raw({ target: "/a%2Fb", authority: "a" });
  assert.equal(passed.status, 200);
  await passed.body?.cancel();
  assert.equal(seen[0].path, "/a/b");
  await unescape.close();
});

Deno.test("a route with case_sensitive false matches the path in any case", async () => {
  const { seen, upstream } = recorder();
  const proxy = await createInProcessProxy({
    routes: [
      {
        match: { prefix: "/admin", headers: [], caseSensitive: false },
        directResponse: { status: 403, body: "" },
      },
      { match: { path: "/Exact", headers: [] } },
    ],
    upstream,
  });
  for (const target of ["/ADMIN", "/Admin/x", "/%41dmin"]) {
    const response = await proxy.raw({ target, authority: "a" });
    assert.equal(response.status, 403, target);
    await response.body?.cancel();
  }
  const exact = await proxy.raw({ target: "/exact", authority: "a" });
  assert.equal(exact.status, 404, "the default is case-sensitive");
  await exact.body?.cancel();
  assert.equal(seen.length, 0);
  await proxy.close();
});

Deno.test("Connection cannot remove what a filter added or what the proxy sets", async () => {
  const { seen, upstream } = recorder();
  const proxy = await createInProcessProxy({
    streamFilters: [{ type: "test_user_tier" }],
    upstream,
  });
  const response = await proxy.raw({
    target: "/",
    authority: "a",
    headers: {
      connection: "close, x-user-tier, x-authenticated-user, x-forwarded-for, x-request-id, x-drop",
      "x-drop": "1",
      "keep-alive": "timeout=5",
    },
  });
  assert.equal(response.status, 200);
  await response.body?.cancel();
  const headers = seen[0].headers;
  assert.equal(headers.get("x-user-tier"), "gold");
  assert.equal(headers.get("x-authenticated-user"), "alice");
  assert.equal(headers.get("x-forwarded-for"), "127.0.0.1");
  assert.match(headers.get("x-request-id") ?? "", /^[0-9a-f-]{36}$/);
  assert.equal(headers.get("x-drop"), null);
  assert.equal(headers.get("keep-alive"), null);
  assert.equal(headers.get("connection"), null);
  await proxy.close();
});

Deno.test("the upstream's hop-by-hop headers go before sender filters run", async () => {
  registerStreamFilter("test_sender_adds", () => ({
    createFilterChain(chain) {
      chain.addSender({
        append(s) {
          s.headers.set("x-cache", "hit");
          return "continue";
        },
      });
    },
  }));
  const proxy = await createInProcessProxy({
    streamFilters: [{ type: "test_sender_adds" }],
    upstream: () =>
      new Response("x", { headers: { connection: "x-cache, x-secret", "x-secret": "s" } }),
  });
  const response = await proxy.raw({ target: "/", authority: "a" });
  await response.body?.cancel();
  assert.equal(response.headers.get("x-cache"), "hit");
  assert.equal(response.headers.get("x-secret"), null);
  await proxy.close();
});

Deno.test("an untrusted client's X-Forwarded-Proto/Host and x-request-id are replaced; a trusted one's kept", async () => {
  const { seen, upstream } = recorder();
  const clientHeaders = {
    "x-forwarded-proto": "https",
    "x-forwarded-host": "evil.example",
    "x-forwarded-for": "6.6.6.6",
    "x-request-id": "chosen",
  };
  const edge = await createInProcessProxy({ upstream });
  (await edge.raw({ target: "/", authority: "a.example", headers: clientHeaders })).body?.cancel();
  assert.equal(seen[0].headers.get("x-forwarded-proto"), "http");
  assert.equal(seen[0].headers.get("x-forwarded-host"), "a.example");
  assert.equal(seen[0].headers.get("x-forwarded-for"), "6.6.6.6, 127.0.0.1");
  assert.notEqual(seen[0].headers.get("x-request-id"), "chosen");
  await edge.close();

  const behindLb = await createInProcessProxy({
    upstream,
    requestPolicy: {
      path: DEFAULT_PATH_OPTIONS,
      forwarded: forwardedPolicy(true, 0, ["10.0.0.0/8"]),
    },
  });
  const trusted = await behindLb.raw({
    target: "/",
    authority: "a.example",
    headers: clientHeaders,
    remoteAddress: "10.1.1.1",
  });
  await trusted.body?.cancel();
  assert.equal(seen[1].headers.get("x-forwarded-proto"), "https");
  assert.equal(seen[1].headers.get("x-forwarded-host"), "evil.example");
  assert.equal(seen[1].headers.get("x-forwarded-for"), "6.6.6.6, 10.1.1.1");
  assert.equal(seen[1].headers.get("x-request-id"), "chosen");
  const outsider = await behindLb.raw({
    target: "/",
    authority: "a.example",
    headers: clientHeaders,
    remoteAddress: "192.0.2.1",
  });
  await outsider.body?.cancel();
  assert.equal(seen[2].headers.get("x-forwarded-proto"), "http");
  await behindLb.close();
});

Deno.test("a virtual host's per_filter_config applies when no route matches", async () => {
  const proxy = await createInProcessProxy({
    streamFilters: [{ type: "test_config_echo", config: { level: "listener" } }],
    routes: [{ match: { prefix: "/only", headers: [] } }],
    virtualHost: { perFilterConfig: { test_config_echo: { level: "virtual host" } } },
    upstream: () => new Response("x"),
  });
  const response = await proxy.raw({ target: "/elsewhere", authority: "a" });
  await response.body?.cancel();
  assert.equal(response.status, 404);
  assert.equal(response.headers.get("x-config"), JSON.stringify({ level: "virtual host" }));
  await proxy.close();
});

Deno.test("a virtual host's response_headers_to_add are added to a direct_response", async () => {
  const proxy = await createInProcessProxy({
    routes: [{
      match: { prefix: "/", headers: [] },
      directResponse: { status: 200, body: "direct\n" },
      responseHeadersToAdd: [{ key: "x-route", value: "r", append: false }],
    }],
    virtualHost: { responseHeadersToAdd: [{ key: "x-vhost", value: "v", append: false }] },
    upstream: () => new Response("x"),
  });
  const response = await proxy.raw({ target: "/", authority: "a" });
  assert.equal(await response.text(), "direct\n");
  assert.equal(response.headers.get("x-vhost"), "v");
  assert.equal(response.headers.get("x-route"), "r");
  await proxy.close();
});
