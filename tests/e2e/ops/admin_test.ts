/**
 * The admin API of the real proxy (`main.ts` with a config that has `admin:`): stats as
 * JSON and Prometheus text that count what the test sent, clusters and hosts, listeners,
 * readiness and the health check switch (POST only, bearer token), the redacted config,
 * the log level, the index at `/`, and the sum over `workers: 2`.
 */

import assert from "node:assert/strict";
import { startProxy, writeConfig } from "../../helpers/proxy_process.ts";
import { opsSetup, send, stat } from "./ops_helpers.ts";

const TOKEN = "s3cret-admin-token";

async function get(url: string, init?: RequestInit): Promise<[number, string]> {
  const res = await fetch(url, init);
  return [res.status, await res.text()];
}

Deno.test("the admin API counts requests, answers every endpoint and guards mutations", async () => {
  const setup = opsSetup();
  const proxy = await startProxy(await writeConfig(setup.yaml({ token: TOKEN })));
  try {
    const { admin } = setup;
    assert.deepEqual(await send(`${setup.proxy}/`, 5), [200, 200, 200, 200, 200]);
    assert.deepEqual(await send(`${setup.proxy}/`, 2, {}), [403, 403]);
    assert.deepEqual(await send(`${setup.proxy}/fail`, 1), [503]);
    assert.deepEqual(await send(`${setup.proxy}/dead`, 1), [502]);

    assert.equal(await stat(admin, "listener.web.downstream_rq_total"), 9);
    assert.equal(await stat(admin, "listener.web.downstream_rq_2xx"), 5);
    assert.equal(await stat(admin, "listener.web.downstream_rq_403"), 2);
    assert.equal(await stat(admin, "listener.web.downstream_rq_5xx"), 2);
    assert.equal(await stat(admin, "cluster.up.upstream_rq_total"), 6);
    assert.equal(await stat(admin, "cluster.up.upstream_rq_503"), 1);
    assert.equal(await stat(admin, "cluster.up.upstream_cx_active"), 1);
    assert.equal(await stat(admin, "cluster.dead.upstream_cx_connect_fail"), 1);
    assert.equal(await stat(admin, "cluster.dead.upstream_rq_5xx"), 1);
    assert.equal(await stat(admin, `cluster.up.host.${setup.upstream.address}.rq_total`), 6);
    assert.equal(await stat(admin, "filter.web.demo.calls"), 9);
    assert.equal(await stat(admin, "filter.web.demo.stops"), 2);
    assert.equal(await stat(admin, "filter.web.demo.responds"), 2);

    const [, prom] = await get(`${admin}/stats/prometheus`);
    assert.match(prom, /^# TYPE mosaic_listener_downstream_rq_total counter$/m);
    assert.match(prom, /^mosaic_listener_downstream_rq_total\{listener="web"\} 9$/m);
    assert.match(prom, /^mosaic_cluster_upstream_rq_time_count\{cluster="up"\} 6$/m);

    const [, clusters] = await get(`${admin}/clusters`);
    assert.match(
      clusters,
      new RegExp(`^up::${setup.upstream.address}::health_flags::healthy$`, "m"),
    );
    assert.match(clusters, new RegExp(`^up::${setup.upstream.address}::rq_total::6$`, "m"));
    const json = await (await fetch(`${admin}/clusters?format=json`)).json();
    assert.equal(json.clusters[0].hosts[0].weight, 1);

    const [, listeners] = await get(`${admin}/listeners`);
    assert.equal(listeners, `web::127.0.0.1:${setup.listenerPort}\n`);

    // The config dump has the config, its version, and no secret.
    const dump = await (await fetch(`${admin}/api/v1/config_dump`)).json();
    assert.equal(dump.config.admin.bearer_token, "[redacted]");
    assert.match(dump.info.version, /^sha256:[0-9a-f]{12}$/);
    assert.equal(dump.config.servers[0].listeners[0].name, "web");

    // Readiness: 200, then fail (POST + token) makes it 503, ok brings it back.
    assert.deepEqual(await get(`${admin}/ready`), [200, "LIVE\n"]);
    assert.equal((await get(`${admin}/healthcheck/fail`))[0], 405);
    assert.equal((await get(`${admin}/healthcheck/fail`, { method: "POST" }))[0], 401);
    const auth = { authorization: `Bearer ${TOKEN}` };
    assert.equal(
      (await get(`${admin}/healthcheck/fail`, { method: "POST", headers: auth }))[0],
      200,
    );
    assert.deepEqual(await get(`${admin}/ready`), [503, "FAILED\n"]);
    await get(`${admin}/healthcheck/ok`, { method: "POST", headers: auth });
    assert.equal((await get(`${admin}/ready`))[0], 200);

    // Log level: Envoy's /logging and MOSN's update_loglevel.
    assert.match((await get(`${admin}/logging`))[1], /mosaic: info/);
    assert.equal((await get(`${admin}/logging?level=debug`))[0], 405);
    assert.equal(
      (await get(`${admin}/logging?level=debug`, { method: "POST", headers: auth }))[0],
      200,
    );
    assert.match((await get(`${admin}/logging`))[1], /mosaic: debug/);
    const [code, body] = await get(`${admin}/api/v1/update_loglevel`, {
      method: "POST",
      headers: auth,
      body: JSON.stringify({ log_path: "", log_level: "WARN" }),
    });
    assert.deepEqual([code, body], [200, "update logger success: warning\n"]);

    // Plugin enable needs POST; status reads with GET.
    assert.equal((await get(`${admin}/api/v1/plugin?enable=x`))[0], 405);
    assert.equal((await get(`${admin}/api/v1/plugin?status=all`))[0], 200);

    // Every endpoint is listed at /.
    const [, index] = await get(`${admin}/`);
    for (
      const path of [
        "/stats",
        "/stats/prometheus",
        "/api/v1/config_dump",
        "/clusters",
        "/listeners",
        "/ready",
        "/healthcheck/fail",
        "/healthcheck/ok",
        "/logging",
        "/api/v1/update_loglevel",
        "/api/v1/plugin",
        "/api/v1/workers",
        "/dashboard",
      ]
    ) assert.match(index, new RegExp(` ${path.replaceAll("/", "\\/")} `), path);
  } finally {
    await proxy.stop();
    await setup.upstream.close();
  }
});

Deno.test("with workers: 2 the admin API sums every worker's counters", async () => {
  const setup = opsSetup();
  const proxy = await startProxy(await writeConfig(setup.yaml({ workers: 2 })));
  try {
    // New connections: the kernel spreads them over both workers.
    for (let i = 0; i < 40; i++) {
      const res = await fetch(`${setup.proxy}/`, {
        headers: { user: "admin", connection: "close" },
      });
      await res.body?.cancel();
    }
    assert.equal(await stat(setup.admin, "listener.web.downstream_rq_total"), 40);
    const [, prom] = await get(`${setup.admin}/stats/prometheus`);
    assert.match(prom, /^mosaic_listener_downstream_rq_total\{listener="web"\} 40$/m);
    const workers = await (await fetch(`${setup.admin}/api/v1/workers`)).json();
    assert.equal(workers.workers.length, 2);
  } finally {
    await proxy.stop();
    await setup.upstream.close();
  }
});
