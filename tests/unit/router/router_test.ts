import assert from "node:assert/strict";
import type { RouteConfig, RouterConfig, VirtualHostConfig } from "../../../src/config/types.ts";
import { Route, Router, RouterConfigError } from "../../../src/router/router.ts";

/** A route sending to `cluster`, with every field the loader would default. */
function route(
  match: Partial<RouteConfig["match"]>,
  extra: Partial<RouteConfig> & { cluster?: string } = {},
): RouteConfig {
  const { cluster, ...rest } = extra;
  return {
    name: undefined,
    match: { headers: [], ...match },
    route: {
      clusterName: cluster ?? "default",
      weightedClusters: [],
      timeoutMs: 0,
      retryPolicy: undefined,
      prefixRewrite: undefined,
      hostRewrite: undefined,
    },
    directResponse: undefined,
    requestHeadersToAdd: [],
    requestHeadersToRemove: [],
    responseHeadersToAdd: [],
    responseHeadersToRemove: [],
    perFilterConfig: {},
    ...rest,
  };
}

/** A virtual host with every field the loader would default. */
function vhost(
  name: string,
  domains: string[],
  routes: RouteConfig[],
  extra: Partial<VirtualHostConfig> = {},
): VirtualHostConfig {
  return {
    name,
    domains,
    routes,
    requestHeadersToAdd: [],
    requestHeadersToRemove: [],
    responseHeadersToAdd: [],
    responseHeadersToRemove: [],
    perFilterConfig: {},
    ...extra,
  };
}

function router(...virtualHosts: VirtualHostConfig[]): Router {
  return new Router({ name: "test_router", virtualHosts } satisfies RouterConfig);
}

/** Mulberry32: a small seeded PRNG so that distributions are reproducible. */
function seeded(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const NO_HEADERS = new Headers();

function hostOf(r: Router, authority: string): string | undefined {
  return r.match(authority, "/", NO_HEADERS)?.virtualHost;
}

Deno.test("an exact domain wins over wildcards, case-insensitively and with the port ignored", () => {
  const r = router(
    vhost("any", ["*"], [route({ prefix: "/" })]),
    vhost("wild", ["*.example.com"], [route({ prefix: "/" })]),
    vhost("exact", ["www.example.com"], [route({ prefix: "/" })]),
  );
  assert.equal(hostOf(r, "www.example.com"), "exact");
  assert.equal(hostOf(r, "WWW.Example.COM:8080"), "exact");
  assert.equal(hostOf(r, "api.example.com"), "wild");
});

Deno.test("the longest wildcard suffix wins, and a wildcard needs at least one label", () => {
  const r = router(
    vhost("any", ["*"], [route({ prefix: "/" })]),
    vhost("short", ["*.example.com"], [route({ prefix: "/" })]),
    vhost("long", ["*.b.example.com"], [route({ prefix: "/" })]),
  );
  assert.equal(hostOf(r, "a.example.com"), "short");
  assert.equal(hostOf(r, "a.x.example.com"), "short");
  assert.equal(hostOf(r, "a.b.example.com:443"), "long");
  assert.equal(hostOf(r, "z.a.b.example.com"), "long");
  assert.equal(hostOf(r, "b.example.com"), "short");
  assert.equal(hostOf(r, "example.com"), "any");
  assert.equal(hostOf(r, ".example.com"), "any");
  assert.equal(hostOf(r, "other.org"), "any");
});

Deno.test("an unknown authority finds no route when there is no * virtual host", () => {
  const r = router(vhost("exact", ["a.test"], [route({ prefix: "/" })]));
  assert.equal(hostOf(r, "b.test"), undefined);
  assert.equal(hostOf(r, ""), undefined);
});

Deno.test("IPv6 authorities lose their port and keep their brackets", () => {
  const r = router(
    vhost("v6", ["[::1]"], [route({ prefix: "/" })]),
    vhost("v4", ["127.0.0.1"], [route({ prefix: "/" })]),
  );
  assert.equal(hostOf(r, "[::1]:80"), "v6");
  assert.equal(hostOf(r, "[::1]"), "v6");
  assert.equal(hostOf(r, "::1"), "v6");
  assert.equal(hostOf(r, "127.0.0.1:2046"), "v4");
  assert.equal(hostOf(r, "[::2]:80"), undefined);
});

Deno.test("a configured domain with a port matches the host without it", () => {
  const r = router(vhost("api", ["API.test:8080"], [route({ prefix: "/" })]));
  assert.equal(hostOf(r, "api.test"), "api");
  assert.equal(hostOf(r, "api.test:9090"), "api");
});

Deno.test("a domain claimed by two virtual hosts is a config error naming both", () => {
  assert.throws(
    () =>
      router(
        vhost("first", ["a.test"], [route({ prefix: "/" })]),
        vhost("second", ["A.test"], [route({ prefix: "/" })]),
      ),
    (error: unknown) => {
      assert.ok(error instanceof RouterConfigError);
      assert.match(error.message, /virtual_hosts\[1\]\.domains/);
      assert.match(error.message, /already used by virtual host "first"/);
      return true;
    },
  );
});

Deno.test("a wildcard anywhere but the front is a config error", () => {
  assert.throws(
    () => router(vhost("bad", ["www.*.com"], [route({ prefix: "/" })])),
    /domain "www\.\*\.com" is not supported/,
  );
});

function paths(r: Router, ...candidates: string[]): (string | undefined)[] {
  return candidates.map((path) => r.match("h", path, NO_HEADERS)?.name);
}

Deno.test("a prefix matches case-sensitively on the path without its query", () => {
  const r = router(vhost("h", ["*"], [
    route({ prefix: "/search?q" }, { name: "query-prefix" }),
    route({ prefix: "/api" }, { name: "api" }),
  ]));
  assert.deepEqual(paths(r, "/api", "/api/users", "/apiary?x=1", "/API", "/ap", "/search?q=1"), [
    "api",
    "api",
    "api",
    undefined,
    undefined,
    undefined,
  ]);
});

Deno.test("a path matches exactly, the query aside", () => {
  const r = router(vhost("h", ["*"], [route({ path: "/exact" }, { name: "exact" })]));
  assert.deepEqual(paths(r, "/exact", "/exact?x=1", "/exact/", "/exactly", "/Exact", "/"), [
    "exact",
    "exact",
    undefined,
    undefined,
    undefined,
    undefined,
  ]);
});

Deno.test("a regex must match the whole path without its query", () => {
  const r = router(vhost("h", ["*"], [route({ regex: "/users/\\d+" }, { name: "user" })]));
  assert.deepEqual(paths(r, "/users/42", "/users/42?tab=1", "/users/42/posts", "/x/users/42"), [
    "user",
    "user",
    undefined,
    undefined,
  ]);
});

Deno.test("a regex alternation is anchored as a whole", () => {
  const r = router(vhost("h", ["*"], [route({ regex: "/a|/b" }, { name: "ab" })]));
  assert.deepEqual(paths(r, "/a", "/b", "/a/x", "/x/b"), ["ab", "ab", undefined, undefined]);
});

Deno.test("a regex that does not compile is a config error naming its field", () => {
  assert.throws(
    () => router(vhost("h", ["*"], [route({ regex: "/(unclosed" })])),
    (error: unknown) => {
      assert.ok(error instanceof RouterConfigError);
      assert.match(error.message, /virtual_hosts\[0\]\.routers\[0\]\.match\.regex/);
      return true;
    },
  );
});

Deno.test("every header condition must hold: exact values, anchored regexes, present headers", () => {
  const r = router(vhost("h", ["*"], [
    route({
      prefix: "/",
      headers: [
        { name: "X-Version", value: "v\\d", regex: true },
        { name: "x-user", value: "admin", regex: false },
      ],
    }, { name: "both" }),
  ]));
  const match = (init: HeadersInit) => r.match("h", "/", new Headers(init))?.name;
  assert.equal(match({ "x-version": "v2", "x-user": "admin" }), "both");
  assert.equal(match({ "x-version": "xv2", "x-user": "admin" }), undefined);
  assert.equal(match({ "x-version": "v2", "x-user": "Admin" }), undefined);
  assert.equal(match({ "x-version": "v2" }), undefined);
  assert.equal(match({ "x-user": "admin" }), undefined);
});

Deno.test("an invalid header name in a matcher is a config error", () => {
  assert.throws(
    () =>
      router(vhost("h", ["*"], [
        route({ prefix: "/", headers: [{ name: "bad name", value: "x", regex: false }] }),
      ])),
    /match\.headers\[0\]\.name: "bad name" is not a valid header name/,
  );
});

Deno.test("routes are tried in order and the first match wins", () => {
  const r = router(vhost("h", ["*"], [
    route({ prefix: "/", headers: [{ name: "x-canary", value: "1", regex: false }] }, {
      name: "canary",
    }),
    route({ prefix: "/api" }, { name: "api" }),
    route({ path: "/api/special" }, { name: "never" }),
    route({ prefix: "/" }, { name: "catch-all" }),
  ]));
  assert.equal(r.match("h", "/api/special", NO_HEADERS)?.name, "api");
  assert.equal(r.match("h", "/api", new Headers({ "x-canary": "1" }))?.name, "canary");
  assert.equal(r.match("h", "/other", NO_HEADERS)?.name, "catch-all");
});

Deno.test("the same route object is returned for every match and it is frozen", () => {
  const r = router(vhost("h", ["*"], [route({ prefix: "/" }, { name: "only" })]));
  const first = r.match("h", "/a", NO_HEADERS);
  assert.ok(first instanceof Route);
  assert.equal(r.match("other", "/b", NO_HEADERS), first);
  assert.ok(Object.isFrozen(first));
});

Deno.test("a route exposes its action: cluster, timeout, retries, host rewrite", () => {
  const config = route({ prefix: "/" }, { name: "r" });
  config.route = {
    clusterName: "backend",
    weightedClusters: [],
    timeoutMs: 1500,
    retryPolicy: { numRetries: 2, retryOn5xx: true, perTryTimeoutMs: 500 },
    prefixRewrite: undefined,
    hostRewrite: "internal.test",
  };
  const matched = router(vhost("vh", ["*"], [config])).match("h", "/", NO_HEADERS);
  assert.ok(matched);
  assert.equal(matched.virtualHost, "vh");
  assert.equal(matched.clusterName, "backend");
  assert.equal(matched.pickCluster(), "backend");
  assert.equal(matched.timeoutMs, 1500);
  assert.deepEqual(matched.retryPolicy, { numRetries: 2, retryOn5xx: true, perTryTimeoutMs: 500 });
  assert.equal(matched.hostRewrite, "internal.test");
  assert.equal(matched.directResponse, undefined);
});

Deno.test("a direct response route has no cluster", () => {
  const matched = router(vhost("h", ["*"], [
    route({ prefix: "/" }, { route: undefined, directResponse: { status: 418, body: "tea" } }),
  ])).match("h", "/", NO_HEADERS);
  assert.ok(matched);
  assert.deepEqual(matched.directResponse, { status: 418, body: "tea" });
  assert.equal(matched.clusterName, undefined);
  assert.equal(matched.pickCluster(), undefined);
});

function withRewrite(match: Partial<RouteConfig["match"]>, prefixRewrite: string): Route {
  const config = route(match);
  config.route = { ...config.route!, prefixRewrite };
  return new Route(config, vhost("h", ["*"], [config]), { virtualHost: "vh", route: "r" });
}

Deno.test("a prefix rewrite replaces the matched prefix and keeps the query", () => {
  const rewritten = withRewrite({ prefix: "/api/" }, "/v2/");
  assert.equal(rewritten.rewritePath("/api/users?id=1&x=/api/"), "/v2/users?id=1&x=/api/");
  assert.equal(rewritten.rewritePath("/api/"), "/v2/");
  // A filter may have changed the path after the match: then nothing is rewritten.
  assert.equal(rewritten.rewritePath("/elsewhere?q"), "/elsewhere?q");
  assert.equal(withRewrite({ prefix: "/api" }, "").rewritePath("/api?x=1"), "?x=1");
});

Deno.test("a prefix rewrite on a path or regex match replaces the whole path", () => {
  assert.equal(withRewrite({ path: "/old" }, "/new").rewritePath("/old?a=b"), "/new?a=b");
  assert.equal(withRewrite({ regex: "/u/\\d+" }, "/user").rewritePath("/u/7"), "/user");
});

Deno.test("a route without a prefix rewrite leaves the path as it is", () => {
  const matched = router(vhost("h", ["*"], [route({ prefix: "/api" })])).match(
    "h",
    "/api/x?y",
    NO_HEADERS,
  );
  assert.equal(matched?.rewritePath("/api/x?y"), "/api/x?y");
});

Deno.test("header edits run the virtual host's removals and additions, then the route's", () => {
  const ops = {
    requestHeadersToRemove: ["x-remove-by-host"],
    requestHeadersToAdd: [
      { key: "x-host-set", value: "host", append: false },
      { key: "x-multi", value: "host", append: true },
      { key: "x-override", value: "host", append: false },
    ],
    responseHeadersToRemove: ["server"],
    responseHeadersToAdd: [{ key: "x-served-by", value: "host", append: false }],
  };
  const matched = router(vhost("h", ["*"], [
    route({ prefix: "/" }, {
      requestHeadersToRemove: ["x-host-set"],
      requestHeadersToAdd: [
        { key: "x-multi", value: "route", append: true },
        { key: "x-override", value: "route", append: false },
        { key: "x-remove-by-host", value: "route", append: false },
      ],
      responseHeadersToRemove: [],
      responseHeadersToAdd: [{ key: "x-served-by", value: "route", append: true }],
    }),
  ], ops)).match("h", "/", NO_HEADERS);
  assert.ok(matched);

  const request = new Headers({ "x-remove-by-host": "client", "x-multi": "client", "keep": "1" });
  matched.applyRequestHeaders(request);
  assert.deepEqual(Object.fromEntries(request), {
    "keep": "1",
    "x-multi": "client, host, route",
    "x-override": "route",
    "x-remove-by-host": "route",
  });

  const response = new Headers({ server: "upstream", "content-type": "text/plain" });
  matched.applyResponseHeaders(response);
  assert.deepEqual(Object.fromEntries(response), {
    "content-type": "text/plain",
    "x-served-by": "host, route",
  });
});

Deno.test("an invalid header to add is a config error naming the virtual host's field", () => {
  assert.throws(
    () =>
      router(vhost("h", ["*"], [route({ prefix: "/" })], {
        requestHeadersToAdd: [{ key: "bad key", value: "v", append: false }],
      })),
    /virtual_hosts\[0\]\.request_headers_to_add: header "bad key: v"/,
  );
});

Deno.test("per_filter_config takes the route's entry, else the virtual host's", () => {
  const matched = router(vhost("h", ["*"], [
    route({ prefix: "/" }, { perFilterConfig: { demo: { User: "route" } } }),
  ], { perFilterConfig: { demo: { User: "host" }, fault: { percent: 5 } } })).match(
    "h",
    "/",
    NO_HEADERS,
  );
  assert.ok(matched);
  assert.deepEqual(matched.perFilterConfig("demo"), { User: "route" });
  assert.deepEqual(matched.perFilterConfig("fault"), { percent: 5 });
  assert.equal(matched.perFilterConfig("payload_limit"), undefined);
  assert.equal(matched.perFilterConfig("toString"), undefined);
});

Deno.test("weighted clusters are picked in proportion to their weights", () => {
  const config = route({ prefix: "/" });
  config.route = {
    ...config.route!,
    clusterName: undefined,
    weightedClusters: [
      { name: "stable", weight: 70 },
      { name: "drained", weight: 0 },
      { name: "canary", weight: 30 },
    ],
  };
  const matched = router(vhost("h", ["*"], [config])).match("h", "/", NO_HEADERS);
  assert.ok(matched);
  assert.equal(matched.clusterName, "stable");
  const random = seeded(42);
  const counts = new Map<string | undefined, number>();
  for (let i = 0; i < 10_000; i++) {
    const name = matched.pickCluster(random);
    counts.set(name, (counts.get(name) ?? 0) + 1);
  }
  assert.equal(counts.get("drained"), undefined);
  const stable = counts.get("stable") ?? 0;
  const canary = counts.get("canary") ?? 0;
  assert.equal(stable + canary, 10_000);
  assert.ok(Math.abs(stable - 7_000) < 300, `stable was picked ${stable} times, expected ~7000`);
  // The edges of the random source map to the first and the last weighted cluster.
  assert.equal(matched.pickCluster(() => 0), "stable");
  assert.equal(matched.pickCluster(() => 0.9999999), "canary");
  assert.equal(matched.pickCluster(() => 1), "canary");
});
