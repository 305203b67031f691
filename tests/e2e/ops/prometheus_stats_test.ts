/**
 * A real Prometheus (Debian's package, installed when missing) scrapes the real proxy's
 * `/stats/prometheus` every second; a query of the request counter through Prometheus'
 * HTTP API returns the number of requests the test sent.
 */

import assert from "node:assert/strict";
import { freePort, startProxy, writeConfig } from "../../helpers/proxy_process.ts";
import { ensureDebianPackage, opsSetup, send } from "./ops_helpers.ts";

async function query(base: string, promql: string): Promise<number | undefined> {
  const res = await fetch(`${base}/api/v1/query?query=${encodeURIComponent(promql)}`);
  const body = await res.json() as {
    status: string;
    data: { result: { metric: Record<string, string>; value: [number, string] }[] };
  };
  const first = body.data?.result?.[0];
  return first === undefined ? undefined : Number(first.value[1]);
}

Deno.test("Prometheus scrapes the proxy and its query returns the requests sent", async () => {
  const prometheus = await ensureDebianPackage("prometheus", "prometheus");
  const setup = opsSetup();
  const dir = await Deno.makeTempDir({ prefix: "mosaic-prometheus-" });
  const proxy = await startProxy(await writeConfig(setup.yaml(), dir));
  const promPort = freePort();
  await Deno.writeTextFile(
    `${dir}/prometheus.yml`,
    `global: { scrape_interval: 1s, evaluation_interval: 1s }
scrape_configs:
  - job_name: mosaic
    metrics_path: /stats/prometheus
    static_configs: [{ targets: ["127.0.0.1:${setup.adminPort}"] }]
`,
  );
  const child = new Deno.Command(prometheus, {
    args: [
      `--config.file=${dir}/prometheus.yml`,
      `--storage.tsdb.path=${dir}/tsdb`,
      `--web.listen-address=127.0.0.1:${promPort}`,
    ],
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const log = (async () => {
    let text = "";
    for await (const chunk of child.stderr.pipeThrough(new TextDecoderStream())) text += chunk;
    return text;
  })();
  const base = `http://127.0.0.1:${promPort}`;
  try {
    const sent = 17;
    assert.deepEqual(new Set(await send(`${setup.proxy}/`, sent)), new Set([200]));
    // Wait for a scrape that saw every request (scrapes are 1 s apart).
    const deadline = Date.now() + 60_000;
    let value: number | undefined;
    while (Date.now() < deadline) {
      value = await query(base, 'mosaic_listener_downstream_rq_total{listener="web"}')
        .catch(() => undefined);
      if (value === sent) break;
      await new Promise((r) => setTimeout(r, 500));
    }
    assert.equal(value, sent, `Prometheus' value; its log:\n${await Promise.race([log, ""])}`);
    assert.equal(await query(base, 'up{job="mosaic"}'), 1);
    assert.equal(await query(base, 'mosaic_cluster_upstream_rq_2xx{cluster="up"}'), sent);
    const p99 = await query(
      base,
      'histogram_quantile(0.99, mosaic_listener_downstream_rq_time_bucket{listener="web"})',
    );
    assert.ok(p99 !== undefined && p99 > 0, `p99 ${p99}`);
  } finally {
    child.kill("SIGTERM");
    await child.status;
    await log;
    await proxy.stop();
    await setup.upstream.close();
    await Deno.remove(dir, { recursive: true });
  }
});
