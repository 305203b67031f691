// End to end: the `lua` filter in the real proxy (`deno run main.ts config.yaml`) with
// narrow flags and a real upstream: header changes both ways, respond 403, body rewrite,
// per-route disable and name, an endless loop, os.exit, a syntax error at start-up, and
// the proxy's memory over 10,000 requests.
import assert from "node:assert/strict";
import {
  type ProxyProcess,
  startProxy,
  startUpstream,
  type Upstream,
  writeConfig,
} from "../../helpers/proxy_process.ts";

const MAIN = new URL("../../../main.ts", import.meta.url).pathname;
const GLUE = new URL("../../../node_modules/wasmoon/dist/glue.wasm", import.meta.url).pathname;

const SCRIPT = `
function envoy_on_request(h)
  local headers = h:headers()
  local path = headers:get(":path")
  headers:add("x-lua-request", "added")
  if path == "/deny" then h:respond({ [":status"] = "403" }, "denied by lua") end
  if path == "/loop" then while true do end end
  if path == "/exit" then os.exit(1) end
  if path == "/upper" then
    local body = h:body()
    body:setBytes(string.upper(body:getBytes(0, body:length())))
  end
end
function envoy_on_response(h)
  h:headers():add("x-lua-response", "added")
end
`;

function config(upstream: Upstream, script: string): string {
  const indent = (text: string) => text.split("\n").map((l) => `                  ${l}`).join("\n");
  return `servers:
  - default_log_level: INFO
    default_log_path: stderr
    routers:
      - router_config_name: r
        virtual_hosts:
          - name: all
            domains: ["*"]
            routers:
              - match: { prefix: /off }
                route: { cluster_name: up }
                per_filter_config:
                  lua: { disabled: true }
              - match: { prefix: /named }
                route: { cluster_name: up }
                per_filter_config:
                  lua: { name: other.lua }
              - match: { prefix: / }
                route: { cluster_name: up }
    listeners:
      - name: lua_listener
        address: 127.0.0.1:0
        filter_chains:
          - filters:
              - type: proxy
                config: { router_config_name: r }
        stream_filters:
          - type: lua
            config:
              instruction_budget: 200000
              default_source_code:
                inline_string: |
${indent(script)}
              source_codes:
                other.lua:
                  inline_string: |
                    function envoy_on_request(h) h:headers():add("x-lua-request", "other") end
cluster_manager:
  clusters:
    - name: up
      type: SIMPLE
      lb_type: LB_ROUNDROBIN
      hosts:
        - address: "${upstream.address}"
`;
}

function echoUpstream(): Upstream {
  return startUpstream(async (request) =>
    Response.json({
      headers: Object.fromEntries(request.headers),
      body: await request.text(),
    })
  );
}

async function start(upstream: Upstream, script = SCRIPT): Promise<ProxyProcess> {
  const file = await writeConfig(config(upstream, script));
  return startProxy(file, {
    flags: [
      `--allow-net=127.0.0.1`,
      `--allow-read=${file},${GLUE}`,
      "--allow-env=LOG_TOKENS,LOG_STREAM",
    ],
  });
}

Deno.test("e2e lua: headers both ways, 403, body rewrite, per-route disable and name, budget, os.exit", async () => {
  const upstream = echoUpstream();
  const proxy = await start(upstream);
  const base = `http://${proxy.listeners.get("lua_listener")}`;
  try {
    const plain = await fetch(`${base}/`);
    assert.equal(plain.headers.get("x-lua-response"), "added");
    assert.equal((await plain.json()).headers["x-lua-request"], "added");

    const denied = await fetch(`${base}/deny`);
    assert.equal(denied.status, 403);
    assert.equal(await denied.text(), "denied by lua");
    assert.equal(denied.headers.get("x-lua-response"), "added");

    const upper = await fetch(`${base}/upper`, { method: "POST", body: "shout" });
    assert.equal((await upper.json()).body, "SHOUT");

    const off = await fetch(`${base}/off`);
    assert.equal(off.headers.get("x-lua-response"), null);
    assert.equal((await off.json()).headers["x-lua-request"], undefined);

    const named = await fetch(`${base}/named`);
    assert.equal((await named.json()).headers["x-lua-request"], "other");

    const looped = await fetch(`${base}/loop`);
    assert.equal(looped.status, 500);
    await looped.body?.cancel();
    await proxy.waitForOutput(/instruction budget of 200000 exceeded/);

    const exited = await fetch(`${base}/exit`);
    assert.equal(exited.status, 500);
    await exited.body?.cancel();
    await proxy.waitForOutput(/attempt to index a nil value \(global 'os'\)/);

    const after = await fetch(`${base}/`);
    assert.equal(after.status, 200, "the proxy keeps serving");
    await after.body?.cancel();
  } finally {
    await proxy.stop();
    await upstream.close();
  }
});

Deno.test("e2e lua: a syntax error stops start-up with exit code 1 naming the listener, filter and line", async () => {
  const upstream = echoUpstream();
  try {
    const file = await writeConfig(
      config(upstream, "function envoy_on_request(h)\n  local x = = 1\nend"),
    );
    const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--allow-net=127.0.0.1",
        `--allow-read=${file},${GLUE}`,
        "--allow-env=LOG_TOKENS,LOG_STREAM",
        MAIN,
        file,
      ],
      stdin: "null",
      env: { NO_COLOR: "1" },
    }).output();
    const text = new TextDecoder().decode(stdout) + new TextDecoder().decode(stderr);
    assert.equal(code, 1, text);
    assert.match(
      text,
      /Lua script "default_source_code" of filter "lua" on listener "lua_listener" does not load: default_source_code:2: unexpected symbol near '='/,
    );
  } finally {
    await upstream.close();
  }
});

Deno.test("e2e lua: 10,000 requests through one Lua filter grow the proxy's RSS by less than 128 MiB", async () => {
  const upstream = startUpstream(() => new Response("ok"));
  const proxy = await start(upstream);
  const base = `http://${proxy.listeners.get("lua_listener")}`;
  const rss = async () => {
    const status = await Deno.readTextFile(`/proc/${proxy.pid}/status`);
    return Number(/VmRSS:\s+(\d+) kB/.exec(status)![1]) * 1024;
  };
  try {
    const run = async (n: number) => {
      const workers = Array.from({ length: 10 }, async () => {
        for (let i = 0; i < n / 10; i++) {
          const response = await fetch(`${base}/`, { headers: { "x-i": String(i) } });
          await response.text();
          assert.equal(response.headers.get("x-lua-response"), "added");
        }
      });
      await Promise.all(workers);
    };
    await run(1_000); // warm up: JIT, pools, Lua's thread pool
    const before = await rss();
    await run(10_000);
    const growth = (await rss()) - before;
    console.log(`RSS growth over 10,000 requests: ${(growth / 1024 / 1024).toFixed(1)} MiB`);
    // Measured: 53–79 MiB after 10k–40k requests, no upward trend (V8 heap slack after warm-up).
    assert.ok(growth < 128 * 1024 * 1024, `RSS grew by ${Math.round(growth / 1024 / 1024)} MiB`);
  } finally {
    await proxy.stop();
    await upstream.close();
  }
});
