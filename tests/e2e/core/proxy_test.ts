import assert from "node:assert/strict";
import { startProxy, startUpstream, writeConfig } from "../../helpers/proxy_process.ts";
import { mosaicYaml } from "../fixtures/mosaic_yaml.ts";

/** An upstream that echoes what it saw as JSON. */
function echoUpstream(name = "a") {
  return startUpstream(async (request) => {
    const url = new URL(request.url);
    return Response.json({
      upstream: name,
      method: request.method,
      path: url.pathname + url.search,
      headers: Object.fromEntries(request.headers),
      body: await request.text(),
    }, { headers: { "x-upstream": name, "connection": "keep-alive, x-secret", "x-secret": "1" } });
  });
}

Deno.test("the demo filter answers 403 without the header and proxies with it", async () => {
  const upstream = echoUpstream();
  const file = await writeConfig(mosaicYaml({
    streamFilters: ["- type: demo\n  config: { User: admin }"],
    clusters: [{ name: "up", hosts: [upstream.address] }],
  }));
  const proxy = await startProxy(file);
  try {
    const base = `http://${proxy.listeners.get("l")}`;
    const denied = await fetch(`${base}/`);
    assert.equal(denied.status, 403);
    await denied.body?.cancel();
    const allowed = await fetch(`${base}/hello?x=1`, { headers: { User: "admin" } });
    assert.equal(allowed.status, 200);
    const seen = await allowed.json();
    assert.equal(seen.path, "/hello?x=1");
    assert.equal(seen.headers.user, "admin");
  } finally {
    await proxy.stop();
    await upstream.close();
  }
});

Deno.test("proxy manners: hop-by-hop stripped both ways, X-Forwarded-*, request id, Host kept", async () => {
  const upstream = echoUpstream();
  const file = await writeConfig(
    mosaicYaml({ clusters: [{ name: "up", hosts: [upstream.address] }] }),
  );
  const proxy = await startProxy(file);
  try {
    const base = `http://${proxy.listeners.get("l")}`;
    const response = await fetch(`${base}/`, {
      headers: {
        "connection": "keep-alive, x-private",
        "x-private": "secret",
        "keep-alive": "timeout=5",
        "te": "trailers",
        "x-forwarded-for": "10.1.1.1",
        "x-request-id": "req-42",
      },
    });
    const seen = await response.json();
    assert.equal(seen.headers["x-private"], undefined);
    assert.equal(seen.headers["keep-alive"], undefined);
    assert.equal(seen.headers["te"], undefined);
    assert.equal(seen.headers["x-forwarded-for"], "10.1.1.1, 127.0.0.1");
    assert.equal(seen.headers["x-forwarded-proto"], "http");
    assert.equal(seen.headers["x-forwarded-host"], proxy.listeners.get("l"));
    // An untrusted client's request id is regenerated (issue 8.6; trusted_proxies keeps it).
    assert.notEqual(seen.headers["x-request-id"], "req-42");
    assert.match(seen.headers["x-request-id"], /^[0-9a-f-]{36}$/);
    assert.equal(seen.headers["host"], proxy.listeners.get("l"));
    assert.equal(response.headers.get("x-secret"), null, "names in upstream Connection dropped");
    assert.equal(response.headers.get("x-upstream"), "a");

    const generated = await (await fetch(`${base}/`)).json();
    assert.match(generated.headers["x-request-id"], /^[0-9a-f-]{36}$/);
  } finally {
    await proxy.stop();
    await upstream.close();
  }
});

Deno.test("routes: prefix, path, regex, headers, direct response, rewrites and header edits", async () => {
  const a = echoUpstream("a");
  const b = echoUpstream("b");
  const file = await writeConfig(mosaicYaml({
    routes: [
      `- match: { path: /exact }
  direct_response: { status: 201, body: "exact match" }`,
      `- match: { regex: "/items/[0-9]+" }
  route: { cluster_name: b }`,
      `- match: { prefix: /api, headers: [{ name: x-version, value: "2" }] }
  route: { cluster_name: b, prefix_rewrite: /v2 }`,
      `- match: { prefix: /api }
  route: { cluster_name: a, prefix_rewrite: /v1, host_rewrite: api.internal }
  request_headers_to_add: [{ header: { key: x-added, value: yes } }]
  request_headers_to_remove: [x-drop]
  response_headers_to_add: [{ header: { key: x-route, value: api } }]
  response_headers_to_remove: [x-upstream]`,
      `- match: { prefix: / }
  route: { cluster_name: a }`,
    ],
    clusters: [{ name: "a", hosts: [a.address] }, { name: "b", hosts: [b.address] }],
  }));
  const proxy = await startProxy(file);
  try {
    const base = `http://${proxy.listeners.get("l")}`;
    const exact = await fetch(`${base}/exact`);
    assert.equal(exact.status, 201);
    assert.equal(await exact.text(), "exact match");

    const item = await (await fetch(`${base}/items/42`)).json();
    assert.equal(item.upstream, "b");
    const notItem = await (await fetch(`${base}/items/abc`)).json();
    assert.equal(notItem.upstream, "a");

    const v2 = await (await fetch(`${base}/api/users?id=1`, { headers: { "x-version": "2" } }))
      .json();
    assert.equal(v2.upstream, "b");
    assert.equal(v2.path, "/v2/users?id=1");

    const v1Response = await fetch(`${base}/api/users`, { headers: { "x-drop": "1" } });
    assert.equal(v1Response.headers.get("x-route"), "api");
    assert.equal(v1Response.headers.get("x-upstream"), null);
    const v1 = await v1Response.json();
    assert.equal(v1.path, "/v1/users");
    assert.equal(v1.headers.host, "api.internal");
    assert.equal(v1.headers["x-added"], "yes");
    assert.equal(v1.headers["x-drop"], undefined);
  } finally {
    await proxy.stop();
    await a.close();
    await b.close();
  }
});

Deno.test("weighted clusters and round robin spread requests over hosts", async () => {
  const a = echoUpstream("a");
  const b = echoUpstream("b");
  const c = echoUpstream("c");
  const file = await writeConfig(mosaicYaml({
    routes: [
      `- match: { prefix: /w }
  route:
    weighted_clusters:
      - cluster: { name: ab, weight: 50 }
      - cluster: { name: c, weight: 50 }`,
      `- match: { prefix: / }
  route: { cluster_name: ab }`,
    ],
    clusters: [{ name: "ab", hosts: [a.address, b.address] }, { name: "c", hosts: [c.address] }],
  }));
  const proxy = await startProxy(file);
  try {
    const base = `http://${proxy.listeners.get("l")}`;
    const seen: string[] = [];
    for (let i = 0; i < 4; i++) seen.push((await (await fetch(`${base}/`)).json()).upstream);
    assert.deepEqual(seen.toSorted(), ["a", "a", "b", "b"]);
    const weighted = new Set<string>();
    for (let i = 0; i < 60 && weighted.size < 2; i++) {
      weighted.add((await (await fetch(`${base}/w`)).json()).upstream === "c" ? "c" : "ab");
    }
    assert.deepEqual([...weighted].toSorted(), ["ab", "c"]);
  } finally {
    await proxy.stop();
    await Promise.all([a.close(), b.close(), c.close()]);
  }
});

Deno.test("no route answers 404 and the access log records it", async () => {
  const upstream = echoUpstream();
  const file = await writeConfig(mosaicYaml({
    routes: ["- match: { prefix: /only }\n  route: { cluster_name: up }"],
    clusters: [{ name: "up", hosts: [upstream.address] }],
    listenerExtra: `        access_logs:
          - log_path: stdout
            log_format: "ACCESS %method% %path% %response_code% %response_flag% %upstream_host%"`,
  }));
  const proxy = await startProxy(file);
  try {
    const base = `http://${proxy.listeners.get("l")}`;
    const missing = await fetch(`${base}/elsewhere`);
    assert.equal(missing.status, 404);
    await missing.body?.cancel();
    await (await fetch(`${base}/only`)).text();
    await proxy.waitForOutput("ACCESS GET /elsewhere 404 NR -");
    await proxy.waitForOutput(`ACCESS GET /only 200 - ${upstream.address}`);
  } finally {
    await proxy.stop();
    await upstream.close();
  }
});

Deno.test("h2c with prior knowledge is proxied to an HTTP/1.1 upstream", async () => {
  const upstream = echoUpstream();
  const file = await writeConfig(
    mosaicYaml({ clusters: [{ name: "up", hosts: [upstream.address] }] }),
  );
  const proxy = await startProxy(file);
  try {
    const out = await new Deno.Command("curl", {
      args: [
        "-s",
        "--http2-prior-knowledge",
        "-w",
        "\\n%{http_version}",
        `http://${proxy.listeners.get("l")}/h2`,
      ],
    }).output();
    const text = new TextDecoder().decode(out.stdout);
    const [json, version] = text.split("\n");
    assert.equal(version, "2");
    assert.equal(JSON.parse(json).path, "/h2");
  } finally {
    await proxy.stop();
    await upstream.close();
  }
});

Deno.test("upstream_protocol Http2 speaks h2c to the upstream and keeps gzip bodies intact", async () => {
  const gzipped = new Uint8Array(
    await new Response(
      new Blob(["compressed body"]).stream().pipeThrough(new CompressionStream("gzip")),
    ).arrayBuffer(),
  );
  const upstream = startUpstream((request) =>
    new Response(gzipped, {
      headers: {
        "content-encoding": "gzip",
        // Over h2 the authority is in the URL and there is no Host header.
        "x-seen-host": new URL(request.url).host,
        "x-seen-http2": String(!request.headers.has("host")),
      },
    })
  );
  const file = await writeConfig(
    mosaicYaml({ clusters: [{ name: "up", hosts: [upstream.address] }] })
      .replace(
        "config: { router_config_name: r }",
        "config: { router_config_name: r, upstream_protocol: Http2 }",
      ),
  );
  const proxy = await startProxy(file);
  try {
    const out = await new Deno.Command("curl", {
      args: [
        "-s",
        "-D",
        "-",
        "-o",
        "/dev/null",
        "-H",
        "accept-encoding: gzip",
        `http://${proxy.listeners.get("l")}/`,
      ],
    }).output();
    const head = new TextDecoder().decode(out.stdout).toLowerCase();
    assert.match(head, /content-encoding: gzip/);
    assert.match(head, new RegExp(`x-seen-host: ${proxy.listeners.get("l")}`));
    assert.match(head, /x-seen-http2: true/);
    const raw = await fetch(`http://${proxy.listeners.get("l")}/`, {
      headers: { "accept-encoding": "gzip" },
    });
    assert.equal(raw.headers.get("content-encoding"), "gzip");
    await raw.body?.cancel();
  } finally {
    await proxy.stop();
    await upstream.close();
  }
});
