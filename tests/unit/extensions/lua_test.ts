import type { RequestView } from "../../../mod.ts";
import assert from "node:assert/strict";
import { registerStreamFilter } from "../../../mod.ts";
import { createStreamFilterFactory, parseLuaConfig } from "../../../extensions/filters/lua/mod.ts";
import { downstreamProtocol } from "../../../extensions/filters/lua/host.ts";
import { createInProcessProxy, type InProcessOptions } from "../../../src/proxy/in_process.ts";

registerStreamFilter("lua", createStreamFilterFactory);

async function echo(request: Request): Promise<Response> {
  return Response.json({
    method: request.method,
    url: new URL(request.url).pathname,
    headers: Object.fromEntries(request.headers),
    body: await request.text(),
  }, { headers: { "x-upstream": "1", foo: "bar" } });
}

async function withLua(
  code: string,
  body: (request: (path: string, init?: RequestInit) => Promise<Response>) => Promise<void>,
  options: Partial<InProcessOptions> & { config?: Record<string, unknown>; failureMode?: "open" } =
    {},
): Promise<void> {
  const proxy = await createInProcessProxy({
    upstream: echo,
    ...options,
    streamFilters: [{
      type: "lua",
      failureMode: options.failureMode,
      config: { inline_code: code, ...options.config },
    }],
  });
  try {
    await body((path, init) => proxy.request(path, init));
  } finally {
    await proxy.close();
  }
}

Deno.test("lua: Envoy's documented header and body-size example runs unchanged", () =>
  withLua(
    `
function envoy_on_request(request_handle)
  -- Wait for the entire request body and add a request header with the body size.
  request_handle:headers():add("request_body_size", request_handle:body():length())
end

function envoy_on_response(response_handle)
  -- Wait for the entire response body and add a response header with the body size.
  response_handle:headers():add("response_body_size", response_handle:body():length())
  -- Remove a response header named 'foo'
  response_handle:headers():remove("foo")
end
`,
    async (request) => {
      const response = await request("/", { method: "POST", body: "twelve bytes" });
      const seen = await response.json();
      assert.equal(seen.headers.request_body_size, "12");
      assert.equal(response.headers.get("foo"), null);
      assert.ok(Number(response.headers.get("response_body_size")) > 10);
    },
  ));

Deno.test("lua: respond() answers 403 with the script's headers and body", () =>
  withLua(
    `function envoy_on_request(h)
       if h:headers():get("x-deny") then
         h:respond({[":status"] = "403", ["x-why"] = "lua"}, "nope")
       end
     end`,
    async (request) => {
      const denied = await request("/", { headers: { "x-deny": "1" } });
      assert.equal(denied.status, 403);
      assert.equal(denied.headers.get("x-why"), "lua");
      assert.equal(await denied.text(), "nope");
      const ok = await request("/");
      assert.equal(ok.status, 200);
      await ok.body?.cancel();
    },
  ));

Deno.test("lua: headers API: get, getAtIndex, getNumValues, replace, pairs, pseudo-headers", () =>
  withLua(
    `function envoy_on_request(h)
       local hs = h:headers()
       local names = {}
       for k, v in hs:pairs() do names[#names + 1] = k end
       hs:add("x-path", hs:get(":path"))
       hs:add("x-method", hs:get(":method"))
       hs:add("x-num", hs:getNumValues("x-multi"))
       hs:add("x-second", hs:getAtIndex("x-multi", 1))
       hs:replace("x-replace", "new")
       hs:add("x-names", table.concat(names, ","))
       hs:replace(":path", "/rewritten")
     end
     function envoy_on_response(h)
       h:headers():replace(":status", "201")
       h:headers():add("x-status-was", "200")
     end`,
    async (request) => {
      const headers = new Headers({ "x-replace": "old" });
      headers.append("x-multi", "a");
      headers.append("x-multi", "b");
      const response = await request("/orig?q=1", { headers });
      assert.equal(response.status, 201);
      const seen = await response.json();
      assert.equal(seen.url, "/rewritten");
      assert.equal(seen.headers["x-path"], "/orig?q=1");
      assert.equal(seen.headers["x-method"], "GET");
      assert.equal(seen.headers["x-num"], "2");
      assert.equal(seen.headers["x-second"], "b");
      assert.equal(seen.headers["x-replace"], "new");
      assert.match(seen.headers["x-names"], /^:authority,:path,:method,.*x-multi/);
    },
  ));

Deno.test("lua: body setBytes rewrites the request body and Content-Length follows", () =>
  withLua(
    `function envoy_on_request(h)
       local body = h:body()
       if body then body:setBytes(string.upper(body:getBytes(0, body:length()))) end
     end`,
    async (request) => {
      const seen = await (await request("/", { method: "POST", body: "hello" })).json();
      assert.equal(seen.body, "HELLO");
      assert.equal(seen.headers["content-length"], "5");
    },
  ));

Deno.test("lua: dynamic metadata set on the request is read on the response (Envoy's example)", () =>
  withLua(
    `function envoy_on_request(request_handle)
       request_handle:streamInfo():dynamicMetadata():set("envoy.filters.http.lua", "request.info", {
         auth = request_handle:headers():get("authorization"),
         token = request_handle:headers():get("x-request-token"),
       })
     end
     function envoy_on_response(response_handle)
       local meta = response_handle:streamInfo():dynamicMetadata():get("envoy.filters.http.lua")["request.info"]
       response_handle:logInfo("Auth: "..meta.auth..", token: "..meta.token)
       response_handle:headers():add("x-auth", meta.auth .. "/" .. meta.token)
       response_handle:headers():add("x-remote", response_handle:streamInfo():downstreamRemoteAddress())
     end`,
    async (request) => {
      const response = await request("/", {
        headers: { authorization: "Bearer t", "x-request-token": "42" },
      });
      await response.body?.cancel();
      assert.equal(response.headers.get("x-auth"), "Bearer t/42");
      assert.match(response.headers.get("x-remote")!, /^127\.0\.0\.1:\d+$/);
    },
  ));

Deno.test("lua: an endless loop is stopped by the instruction budget and answers 500", () =>
  withLua(
    `function envoy_on_request(h)
       if h:headers():get("x-loop") then
         while true do pcall(function() while true do end end) end
       end
     end`,
    async (request) => {
      const looped = await request("/", { headers: { "x-loop": "1" } });
      assert.equal(looped.status, 500);
      await looped.body?.cancel();
      const after = await request("/");
      assert.equal(after.status, 200, "the engine serves the next request");
      await after.body?.cancel();
    },
  ));

Deno.test("lua: failure_mode open lets a failing script's request through", () =>
  withLua(
    `function envoy_on_request(h) error("boom") end`,
    async (request) => {
      const response = await request("/");
      assert.equal(response.status, 200);
      await response.body?.cancel();
    },
    { failureMode: "open" },
  ));

Deno.test("lua: the sandbox has no os, io, debug, package, require, load or dofile", () =>
  withLua(
    `function envoy_on_request(h)
       local missing = {}
       for _, name in ipairs({"os", "io", "debug", "package", "require", "load", "loadfile",
                              "dofile", "loadstring"}) do
         if _G[name] == nil then missing[#missing + 1] = name end
       end
       h:headers():add("x-missing", table.concat(missing, ","))
       h:headers():add("x-has", tostring(string ~= nil and table ~= nil and math ~= nil and
         utf8 ~= nil and coroutine ~= nil and string.dump == nil))
       if h:headers():get("x-exit") then os.exit(1) end
     end`,
    async (request) => {
      const seen = await (await request("/")).json();
      assert.equal(
        seen.headers["x-missing"],
        "os,io,debug,package,require,load,loadfile,dofile,loadstring",
      );
      assert.equal(seen.headers["x-has"], "true");
      const exit = await request("/", { headers: { "x-exit": "1" } });
      assert.equal(exit.status, 500);
      await exit.body?.cancel();
    },
  ));

Deno.test("lua: the memory ceiling stops a script that allocates without end", () =>
  withLua(
    `function envoy_on_request(h)
       if h:headers():get("x-hog") then
         local t = {}
         for i = 1, 1e9 do t[i] = string.rep("x", 1000) .. i end
       end
     end`,
    async (request) => {
      const hog = await request("/", { headers: { "x-hog": "1" } });
      assert.equal(hog.status, 500);
      await hog.body?.cancel();
      const after = await request("/");
      assert.equal(after.status, 200);
      await after.body?.cancel();
    },
    { config: { memory_limit: 8 * 1024 * 1024, instruction_budget: 100_000_000 } },
  ));

Deno.test("lua: a syntax error names the listener, the filter and Lua's line", async () => {
  await assert.rejects(
    createInProcessProxy({
      upstream: echo,
      streamFilters: [{
        type: "lua",
        config: { inline_code: "function envoy_on_request(h)\n x = = 1\nend" },
      }],
    }),
    /Lua script "inline_code" of filter "lua" on listener "in-process" does not load: inline_code:2: unexpected symbol near '='/,
  );
});

Deno.test("lua: per-route disabled, name and source_code choose the script", () =>
  withLua(
    `function envoy_on_request(h) h:headers():add("x-script", "default") end`,
    async (request) => {
      const plain = await (await request("/")).json();
      assert.equal(plain.headers["x-script"], "default");
      const off = await (await request("/off")).json();
      assert.equal(off.headers["x-script"], undefined);
      const named = await (await request("/named")).json();
      assert.equal(named.headers["x-script"], "named");
      assert.equal(named.headers["x-meta"], "from-route");
      const own = await (await request("/own")).json();
      assert.equal(own.headers["x-script"], "own");
    },
    {
      config: {
        source_codes: {
          "named.lua": {
            inline_string: `function envoy_on_request(h)
               h:headers():add("x-script", "named")
               h:headers():add("x-meta", h:metadata():get("tag"))
             end`,
          },
        },
      },
      routes: [
        { match: { prefix: "/off", headers: [] }, perFilterConfig: { lua: { disabled: true } } },
        {
          match: { prefix: "/named", headers: [] },
          perFilterConfig: { lua: { name: "named.lua", metadata: { tag: "from-route" } } },
        },
        {
          match: { prefix: "/own", headers: [] },
          perFilterConfig: {
            lua: {
              source_code: {
                inline_string:
                  `function envoy_on_request(h) h:headers():add("x-script", "own") end`,
              },
            },
          },
        },
        {},
      ],
    },
  ));

Deno.test("lua: config errors name the field", () => {
  const ctx = { source: "config" as const, configFile: "/x/config.yaml", name: "lua" };
  assert.throws(() => parseLuaConfig({ inline_cod: "" }, ctx), /did you mean "inline_code"/);
  assert.throws(
    () => parseLuaConfig({ default_source_code: { filename: "missing.lua" } }, ctx),
    /cannot read Lua script "\/x\/missing.lua"/,
  );
  assert.throws(
    () => parseLuaConfig({ disabled: "yes" }, { ...ctx, source: "per_filter_config" }),
    /expected true or false/,
  );
});

Deno.test("lua: base64Escape, timestamp and print", () =>
  withLua(
    `function envoy_on_request(h)
       h:headers():add("x-b64", h:base64Escape("hi\\0there"))
       h:headers():add("x-ts", h:timestamp() > 1600000000000 and "ok" or "bad")
       print("hello from lua")
     end`,
    async (request) => {
      const seen = await (await request("/")).json();
      assert.equal(seen.headers["x-b64"], btoa("hi\0there"));
      assert.equal(seen.headers["x-ts"], "ok");
    },
  ));

Deno.test("lua: streamInfo():protocol(), requestedServerName() and clearRouteCache()", () =>
  withLua(
    `function envoy_on_request(h)
       local info = h:streamInfo()
       h:headers():add("x-protocol", info:protocol())
       h:headers():add("x-sni", "[" .. info:requestedServerName() .. "]")
       h:clearRouteCache()
     end
     function envoy_on_response(h)
       h:headers():add("x-protocol", h:streamInfo():protocol())
     end`,
    async (request) => {
      const response = await request("/");
      const seen = await response.json();
      assert.equal(seen.headers["x-protocol"], "HTTP/1.1");
      assert.equal(seen.headers["x-sni"], "[]");
      assert.equal(response.headers.get("x-protocol"), "HTTP/1.1");
    },
  ));

Deno.test("lua: downstreamProtocol reads a stream's protocol in Envoy's spelling", () => {
  const view = (protocol?: string) =>
    ({
      method: "GET",
      path: "/",
      headers: new Headers(),
      remoteAddr: { hostname: "127.0.0.1", port: 1 },
      protocol,
    }) as RequestView;
  assert.equal(downstreamProtocol(view()), "HTTP/1.1");
  assert.equal(downstreamProtocol(view("HTTP/1.0")), "HTTP/1.0");
  assert.equal(downstreamProtocol(view("HTTP/2")), "HTTP/2");
  assert.equal(downstreamProtocol(view("h2c")), "HTTP/2");
  assert.equal(downstreamProtocol(view("HTTP/3.0")), "HTTP/3");
});

Deno.test("lua: httpCall reaches an http_call_clusters target (Envoy's documented example)", async () => {
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    async (r) =>
      new Response(`got ${r.method} ${new URL(r.url).pathname} ${await r.text()}`, {
        headers: { foo: "from-side-call" },
      }),
  );
  try {
    await withLua(
      `function envoy_on_request(request_handle)
         -- Make an HTTP call to an upstream host with the following headers, body, and timeout.
         local headers, body = request_handle:httpCall(
         "lua_cluster",
         {
           [":method"] = "POST",
           [":path"] = "/",
           [":authority"] = "lua_cluster"
         },
         "hello world",
         5000)
         request_handle:headers():add("upstream_foo", headers["foo"])
         request_handle:headers():add("upstream_body_size", #body)
         request_handle:headers():add("upstream_status", headers[":status"])
       end`,
      async (request) => {
        const seen = await (await request("/")).json();
        assert.equal(seen.headers.upstream_foo, "from-side-call");
        assert.equal(seen.headers.upstream_body_size, String("got POST / hello world".length));
        assert.equal(seen.headers.upstream_status, "200");
      },
      { config: { http_call_clusters: { lua_cluster: `127.0.0.1:${server.addr.port}` } } },
    );
  } finally {
    await server.shutdown();
  }
});
