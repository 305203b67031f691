import assert from "node:assert/strict";
import { freePort, startProxy, writeConfig } from "../../helpers/proxy_process.ts";
import { mosaicYaml } from "../fixtures/mosaic_yaml.ts";

/** An upstream on a fixed port that answers its name, so it can be killed and restarted. */
function named(name: string, port: number) {
  const server = Deno.serve(
    { hostname: "127.0.0.1", port, onListen() {} },
    (request) =>
      new URL(request.url).pathname === "/health" ? new Response("ok") : new Response(name),
  );
  return { close: () => server.shutdown() };
}

async function get(url: string): Promise<{ status: number; body: string }> {
  const response = await fetch(url);
  return { status: response.status, body: await response.text() };
}

Deno.test("outlier detection ejects a killed host, traffic moves to the live one, and the host comes back", async () => {
  const portA = freePort();
  const portB = freePort();
  const a = named("A", portA);
  let b = named("B", portB);
  const file = await writeConfig(mosaicYaml({
    clusters: [{
      name: "up",
      hosts: [`127.0.0.1:${portA}`, `127.0.0.1:${portB}`],
      extra: `outlier_detection:
  consecutive_gateway_failure: 3
  interval: 100ms
  base_ejection_time: 300ms
  max_ejection_percent: 50`,
    }],
  }));
  const proxy = await startProxy(file);
  const base = `http://${proxy.listeners.get("l")}/`;
  try {
    const before = new Set<string>();
    for (let i = 0; i < 4; i++) before.add((await get(base)).body);
    assert.deepEqual(before, new Set(["A", "B"]));

    await b.close();
    // A bounded loop of sequential requests: B fails at most consecutive_gateway_failure
    // times before it is ejected, then every request goes to A.
    let failed = 0;
    const served = new Map<string, number>();
    for (let i = 0; i < 40; i++) {
      const { status, body } = await get(base);
      if (status === 502) failed++;
      else served.set(body, (served.get(body) ?? 0) + 1);
    }
    assert.ok(failed >= 1 && failed <= 3, `failed requests: ${failed}`);
    assert.equal(served.get("A"), 40 - failed);
    assert.equal(served.get("B"), undefined);
    await proxy.waitForOutput(
      `host 127.0.0.1:${portB} of cluster "up" ejected for 300 ms (consecutive gateway failures, ejection 1)`,
    );

    b = named("B", portB);
    // Bounded: each pass waits a little for the sweep; B is back within a few sweeps.
    let back = false;
    for (let i = 0; i < 200 && !back; i++) {
      const { status, body } = await get(base);
      assert.ok(status === 200 || status === 502, `status ${status}`);
      if (body === "B") back = true;
      else await new Promise((r) => setTimeout(r, 25));
    }
    assert.ok(back, "B served again after its ejection");
    await proxy.waitForOutput(`host 127.0.0.1:${portB} of cluster "up" is back from ejection`);
  } finally {
    await proxy.stop();
    await a.close();
    await b.close().catch(() => {});
  }
});

Deno.test("active http health checks take a killed host out and bring it back", async () => {
  const portA = freePort();
  const portB = freePort();
  const a = named("A", portA);
  let b = named("B", portB);
  const file = await writeConfig(mosaicYaml({
    clusters: [{
      name: "up",
      hosts: [`127.0.0.1:${portA}`, `127.0.0.1:${portB}`],
      extra: `health_check:
  protocol: http
  timeout: 500ms
  interval: 50ms
  healthy_threshold: 2
  unhealthy_threshold: 2
  check_config:
    http_check_config: { path: /health, codes: [{ start: 200, end: 299 }] }`,
    }],
  }));
  const proxy = await startProxy(file);
  const base = `http://${proxy.listeners.get("l")}/`;
  try {
    const before = new Set<string>();
    for (let i = 0; i < 4; i++) before.add((await get(base)).body);
    assert.deepEqual(before, new Set(["A", "B"]));

    await b.close();
    await proxy.waitForOutput(
      `host 127.0.0.1:${portB} of cluster "up" failed its health checks (no answer)`,
    );
    for (let i = 0; i < 20; i++) assert.deepEqual(await get(base), { status: 200, body: "A" });

    b = named("B", portB);
    await proxy.waitForOutput(`host 127.0.0.1:${portB} of cluster "up" passed its health checks`);
    const after = new Set<string>();
    for (let i = 0; i < 4; i++) after.add((await get(base)).body);
    assert.deepEqual(after, new Set(["A", "B"]));
  } finally {
    await proxy.stop();
    await a.close();
    await b.close().catch(() => {});
  }
});

Deno.test("a circuit breaker overflow answers 503 with UO in the access log", async () => {
  const release = Promise.withResolvers<void>();
  let arrived = Promise.withResolvers<void>();
  const port = freePort();
  const server = Deno.serve({ hostname: "127.0.0.1", port, onListen() {} }, async () => {
    arrived.resolve();
    await release.promise;
    return new Response("slow");
  });
  const file = await writeConfig(mosaicYaml({
    routes: [
      "- match: { prefix: /retry }\n  route: { cluster_name: up, retry_policy: { retry_on: true, num_retries: 1 } }",
      "- match: { prefix: / }\n  route: { cluster_name: up }",
    ],
    clusters: [{
      name: "up",
      hosts: [`127.0.0.1:${port}`],
      extra: "circuit_breakers: [{ max_requests: 1, max_retries: 0 }]",
    }],
    listenerExtra: `        access_logs:
          - log_path: stdout
            log_format: "ACCESS %path% %response_code% %response_flag%"`,
  }));
  const proxy = await startProxy(file);
  const base = `http://${proxy.listeners.get("l")}`;
  try {
    const first = fetch(`${base}/held`);
    await arrived.promise;
    const over = await fetch(`${base}/over`);
    assert.equal(over.status, 503);
    assert.equal(await over.text(), "upstream overflow\n");
    await proxy.waitForOutput("ACCESS /over 503 UO");
    release.resolve();
    assert.equal(await (await first).text(), "slow");
    await proxy.waitForOutput("ACCESS /held 200 -");
    arrived = Promise.withResolvers<void>();
  } finally {
    await proxy.stop();
    release.resolve();
    await server.shutdown();
  }
});

Deno.test("max_retries 0: a retry is not made and the failure answers 503 UO", async () => {
  const dead = freePort();
  const file = await writeConfig(mosaicYaml({
    routes: [
      "- match: { prefix: / }\n  route: { cluster_name: up, retry_policy: { retry_on: true, num_retries: 2 } }",
    ],
    clusters: [{
      name: "up",
      hosts: [`127.0.0.1:${dead}`],
      extra: "circuit_breakers: [{ max_retries: 0 }]",
    }],
    listenerExtra: `        access_logs:
          - log_path: stdout
            log_format: "ACCESS %path% %response_code% %response_flag%"`,
  }));
  const proxy = await startProxy(file);
  try {
    const response = await get(`http://${proxy.listeners.get("l")}/again`);
    assert.deepEqual(response, { status: 503, body: "upstream overflow\n" });
    await proxy.waitForOutput("ACCESS /again 503 UO");
  } finally {
    await proxy.stop();
  }
});
