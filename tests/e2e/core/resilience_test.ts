import assert from "node:assert/strict";
import { freePort, startProxy, startUpstream, writeConfig } from "../../helpers/proxy_process.ts";
import { mosaicYaml } from "../fixtures/mosaic_yaml.ts";

Deno.test("a refused upstream answers 502; retries move to a live host", async () => {
  const live = startUpstream(() => new Response("live"));
  const dead = `127.0.0.1:${freePort()}`;
  const file = await writeConfig(mosaicYaml({
    routes: [
      `- match: { prefix: /retry }
  route: { cluster_name: mixed, retry_policy: { retry_on: true, num_retries: 2 } }`,
      "- match: { prefix: / }\n  route: { cluster_name: dead }",
    ],
    clusters: [{ name: "dead", hosts: [dead] }, { name: "mixed", hosts: [dead, live.address] }],
  }));
  const proxy = await startProxy(file);
  try {
    const base = `http://${proxy.listeners.get("l")}`;
    const failed = await fetch(`${base}/`);
    assert.equal(failed.status, 502);
    await failed.body?.cancel();
    for (let i = 0; i < 4; i++) {
      const retried = await fetch(`${base}/retry`);
      assert.equal(retried.status, 200);
      assert.equal(await retried.text(), "live");
    }
  } finally {
    await proxy.stop();
    await live.close();
  }
});

Deno.test("a 5xx is retried when retry_policy says so", async () => {
  let calls = 0;
  const flaky = startUpstream(() =>
    ++calls % 2 === 1 ? new Response("busy", { status: 503 }) : new Response("ok")
  );
  const file = await writeConfig(mosaicYaml({
    routes: [
      "- match: { prefix: / }\n  route: { cluster_name: up, retry_policy: { retry_on: true, num_retries: 1 } }",
    ],
    clusters: [{ name: "up", hosts: [flaky.address] }],
  }));
  const proxy = await startProxy(file);
  try {
    const response = await fetch(`http://${proxy.listeners.get("l")}/`);
    assert.equal(response.status, 200);
    assert.equal(await response.text(), "ok");
    assert.equal(calls, 2);
  } finally {
    await proxy.stop();
    await flaky.close();
  }
});

Deno.test("a slow upstream past the route timeout answers 504", async () => {
  const slow = startUpstream(async () => {
    await new Promise((resolve) => setTimeout(resolve, 1500));
    return new Response("late");
  });
  const file = await writeConfig(mosaicYaml({
    routes: ["- match: { prefix: / }\n  route: { cluster_name: up, timeout: 200ms }"],
    clusters: [{ name: "up", hosts: [slow.address] }],
  }));
  const proxy = await startProxy(file);
  try {
    const started = Date.now();
    const response = await fetch(`http://${proxy.listeners.get("l")}/`);
    assert.equal(response.status, 504);
    await response.body?.cancel();
    assert.ok(Date.now() - started < 1400, "answered before the upstream did");
  } finally {
    await proxy.stop();
    await new Promise((resolve) => setTimeout(resolve, 1600));
    await slow.close();
  }
});

Deno.test("requests over the cluster's connection and pending limits answer 503", async () => {
  const release = Promise.withResolvers<void>();
  const slow = startUpstream(async () => {
    await release.promise;
    return new Response("done");
  });
  const file = await writeConfig(mosaicYaml({
    clusters: [{
      name: "up",
      hosts: [slow.address],
      extra: "circuit_breakers:\n  thresholds: [{ max_connections: 1, max_pending_requests: 0 }]",
    }],
  }));
  const proxy = await startProxy(file);
  try {
    const base = `http://${proxy.listeners.get("l")}`;
    const first = fetch(`${base}/1`);
    await new Promise((resolve) => setTimeout(resolve, 300));
    const second = await fetch(`${base}/2`);
    assert.equal(second.status, 503);
    await second.body?.cancel();
    release.resolve();
    const done = await first;
    assert.equal(await done.text(), "done");
  } finally {
    await proxy.stop();
    await slow.close();
  }
});

Deno.test("built-in filters: fault abort, ip_access deny, payload_limit 413", async () => {
  const upstream = startUpstream(async (request) =>
    new Response(`got ${(await request.text()).length}`)
  );
  const file = await writeConfig(mosaicYaml({
    streamFilters: [
      "- type: fault\n  config: { abort_percent: 0, abort_status: 503 }",
      "- type: ip_access\n  config: { rules: [{ action: deny, addrs: [10.0.0.0/8] }], default_action: allow, header: x-client-ip }",
      "- type: payload_limit\n  config: { max_entity_size: 1000 }",
    ],
    routes: [
      `- match: { prefix: /fault }
  route: { cluster_name: up }
  per_filter_config: { fault: { abort_percent: 100, abort_status: 418 } }`,
      "- match: { prefix: / }\n  route: { cluster_name: up }",
    ],
    clusters: [{ name: "up", hosts: [upstream.address] }],
  }));
  const proxy = await startProxy(file);
  try {
    const base = `http://${proxy.listeners.get("l")}`;
    const faulted = await fetch(`${base}/fault`);
    assert.equal(faulted.status, 418);
    await faulted.body?.cancel();
    const denied = await fetch(`${base}/`, { headers: { "x-client-ip": "10.2.3.4" } });
    assert.equal(denied.status, 403);
    await denied.body?.cancel();
    const small = await fetch(`${base}/`, { method: "POST", body: "x".repeat(1000) });
    assert.equal(await small.text(), "got 1000");
    const big = await fetch(`${base}/`, { method: "POST", body: "x".repeat(1001) });
    assert.equal(big.status, 413);
    await big.body?.cancel();
    const chunked = await fetch(`${base}/`, {
      method: "POST",
      body: ReadableStream.from([
        new TextEncoder().encode("y".repeat(800)),
        new TextEncoder().encode("y".repeat(800)),
      ]),
    });
    assert.equal(chunked.status, 413);
    await chunked.body?.cancel();
  } finally {
    await proxy.stop();
    await upstream.close();
  }
});

Deno.test("the fault filter delays a request by fixed_delay", async () => {
  const upstream = startUpstream(() => new Response("ok"));
  const file = await writeConfig(mosaicYaml({
    streamFilters: ["- type: fault\n  config: { fixed_delay: 300ms, delay_percent: 100 }"],
    clusters: [{ name: "up", hosts: [upstream.address] }],
  }));
  const proxy = await startProxy(file);
  try {
    const started = Date.now();
    const response = await fetch(`http://${proxy.listeners.get("l")}/`);
    assert.equal(await response.text(), "ok");
    assert.ok(Date.now() - started >= 290);
  } finally {
    await proxy.stop();
    await upstream.close();
  }
});

Deno.test("SIGTERM lets an in-flight request finish, then exits 0", async () => {
  const upstream = startUpstream(async () => {
    await new Promise((resolve) => setTimeout(resolve, 700));
    return new Response("finished");
  });
  const file = await writeConfig(
    mosaicYaml({ clusters: [{ name: "up", hosts: [upstream.address] }] }),
  );
  const proxy = await startProxy(file);
  try {
    const inFlight = fetch(`http://${proxy.listeners.get("l")}/`);
    await new Promise((resolve) => setTimeout(resolve, 200));
    proxy.kill("SIGTERM");
    const response = await inFlight;
    assert.equal(await response.text(), "finished");
    const status = await proxy.status;
    assert.equal(status.code, 0);
    await proxy.waitForOutput("Stopped");
  } finally {
    await proxy.stop();
    await upstream.close();
  }
});
