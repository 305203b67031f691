import assert from "node:assert/strict";
import { Histogram, quantile } from "../../../src/stats/histogram.ts";
import { StatsRegistry, threadStats } from "../../../src/stats/scopes.ts";
import { PluginManager } from "../../../src/plugin/manager.ts";
import { nodeCommand, pluginConfig } from "../plugin/helpers.ts";
import { sumStats, toEnvoyJson, toPrometheus } from "../../../src/stats/snapshot.ts";
import { filterMetrics } from "../../../src/stats/metrics.ts";
import { certificateExpiries } from "../../../src/tls/expiry.ts";
import { customMetricName } from "../../../extensions/filters/proxywasm/vm.ts";
import { makeTestPki } from "../../helpers/certs.ts";
import { X509Certificate } from "node:crypto";

Deno.test("a histogram counts each value in the first bucket whose bound it does not pass", () => {
  const h = new Histogram([1, 10, 100]);
  for (const v of [0.5, 1, 2, 10, 50, 1000]) h.record(v);
  assert.deepEqual(h.counts, [2, 2, 1, 1]);
  assert.equal(h.count, 6);
  assert.equal(h.sum, 1063.5);
});

Deno.test("quantiles interpolate inside the bucket, as histogram_quantile does", () => {
  const h = new Histogram([10, 20]);
  for (let i = 0; i < 10; i++) h.record(15);
  assert.equal(quantile(h.snapshot(), 0.5), 15);
  assert.equal(quantile(h.snapshot(), 1), 20);
  assert.ok(Number.isNaN(quantile(new Histogram().snapshot(), 0.5)));
});

Deno.test("a listener counts responses by class and by code, and its time", () => {
  const stats = new StatsRegistry();
  const l = stats.listener("ingress");
  for (const status of [200, 200, 404, 503]) {
    l.downstream_rq_total++;
    l.downstream_rq_active++;
    l.answered(status, 3);
  }
  const scope = stats.snapshot().scopes.find((s) => s.kind === "listener")!;
  assert.equal(scope.counters.downstream_rq_total, 4);
  assert.equal(scope.counters.downstream_rq_2xx, 2);
  assert.equal(scope.counters.downstream_rq_4xx, 1);
  assert.equal(scope.counters.downstream_rq_5xx, 1);
  assert.equal(scope.counters.downstream_rq_200, 2);
  assert.equal(scope.counters.downstream_rq_503, 1);
  assert.equal(scope.gauges.downstream_rq_active, 0);
  assert.equal(scope.histograms.downstream_rq_time.count, 4);
});

Deno.test("the same name gives the same stats object, so counters outlive a reload", () => {
  const stats = new StatsRegistry();
  assert.equal(stats.listener("a"), stats.listener("a"));
  assert.equal(stats.cluster("c"), stats.cluster("c"));
  const host = stats.host("c", "127.0.0.1:1", { active: 2 });
  assert.equal(stats.host("c", "127.0.0.1:1"), host);
  host.connected();
  host.connected();
  host.disconnected();
  host.connectFailed();
  const c = stats.snapshot().scopes.find((s) => s.kind === "cluster")!;
  assert.equal(c.counters.upstream_cx_total, 2);
  assert.equal(c.gauges.upstream_cx_active, 1);
  assert.equal(c.counters.upstream_cx_connect_fail, 1);
  assert.equal(c.gauges.upstream_rq_active, 2, "read from the live host");
  assert.equal(c.gauges.membership_healthy, 1);
});

Deno.test("workers' snapshots sum counter by counter, gauge by gauge and bucket by bucket", () => {
  const a = new StatsRegistry();
  const b = new StatsRegistry();
  for (const r of [a, b]) {
    const l = r.listener("ingress");
    l.downstream_rq_total += 3;
    l.downstream_rq_time.record(2);
  }
  b.cluster("only-b").upstream_rq_total = 5;
  const sum = sumStats([a.snapshot(), b.snapshot()]);
  const l = sum.scopes.find((s) => s.kind === "listener")!;
  assert.equal(l.counters.downstream_rq_total, 6);
  assert.equal(l.histograms.downstream_rq_time.count, 2);
  assert.equal(sum.scopes.find((s) => s.kind === "cluster")!.counters.upstream_rq_total, 5);
});

Deno.test("/stats names stats as Envoy does, and filters them by a regular expression", () => {
  const stats = new StatsRegistry();
  stats.listener("ingress").downstream_rq_total = 7;
  stats.cluster("c1").upstream_rq_retry = 2;
  stats.host("c1", "127.0.0.1:8080").rq_total = 4;
  stats.filter("ingress", "auth").calls = 9;
  const json = toEnvoyJson(stats.snapshot());
  const value = (name: string) => json.stats.find((s) => s.name === name)?.value;
  assert.equal(value("listener.ingress.downstream_rq_total"), 7);
  assert.equal(value("cluster.c1.upstream_rq_retry"), 2);
  assert.equal(value("cluster.c1.host.127.0.0.1:8080.rq_total"), 4);
  assert.equal(value("filter.ingress.auth.calls"), 9);
  const only = toEnvoyJson(stats.snapshot(), /retry/);
  assert.deepEqual(only.stats.map((s) => s.name), ["cluster.c1.upstream_rq_retry"]);
});

Deno.test("the Prometheus text has one TYPE line per family and cumulative buckets", () => {
  const stats = new StatsRegistry();
  stats.listener("a").downstream_rq_total = 1;
  stats.listener('b"x').downstream_rq_total = 2;
  stats.cluster("c").upstream_rq_time.record(3);
  const text = toPrometheus(stats.snapshot());
  assert.equal(text.match(/# TYPE mosaic_listener_downstream_rq_total counter/g)?.length, 1);
  assert.match(text, /^mosaic_listener_downstream_rq_total\{listener="a"\} 1$/m);
  assert.match(text, /^mosaic_listener_downstream_rq_total\{listener="b\\"x"\} 2$/m);
  assert.match(text, /# TYPE mosaic_cluster_upstream_rq_time histogram/);
  assert.match(text, /^mosaic_cluster_upstream_rq_time_bucket\{cluster="c",le="1"\} 0$/m);
  assert.match(text, /^mosaic_cluster_upstream_rq_time_bucket\{cluster="c",le="5"\} 1$/m);
  assert.match(text, /^mosaic_cluster_upstream_rq_time_bucket\{cluster="c",le="\+Inf"\} 1$/m);
  assert.match(text, /^mosaic_cluster_upstream_rq_time_count\{cluster="c"\} 1$/m);
  // Families are contiguous: a family's samples never resume after another family.
  const names = text.split("\n").filter((l) => l && !l.startsWith("#")).map((l) =>
    l.replace(/(_bucket|_sum|_count)?[{ ].*$/, "")
  );
  const seen = new Set<string>();
  for (let i = 0; i < names.length; i++) {
    if (i > 0 && names[i] !== names[i - 1]) {
      assert.ok(!seen.has(names[i]), `${names[i]} resumes`);
      seen.add(names[i - 1]);
    }
  }
});

Deno.test("a filter's own metrics keep their value by name and refuse another type", () => {
  const stats = new StatsRegistry();
  const m = filterMetrics("ingress", "auth", stats);
  const denied = m.counter("denied");
  denied.inc();
  denied.inc(2);
  denied.inc(-5);
  assert.equal(filterMetrics("ingress", "auth", stats).counter("denied").value, 3);
  const inflight = m.gauge("inflight");
  inflight.inc();
  inflight.inc();
  inflight.dec();
  m.histogram("size", { buckets: [10, 100] }).record(50);
  assert.throws(() => m.gauge("denied"), /is a counter/);
  assert.throws(() => m.counter("bad name"), TypeError);
  assert.throws(() => m.histogram("h", { buckets: [5, 1] }), /ascend/);
  const text = toPrometheus(stats.snapshot());
  assert.match(text, /^mosaic_custom_denied\{listener="ingress",filter="auth"\} 3$/m);
  assert.match(text, /^mosaic_custom_inflight\{listener="ingress",filter="auth"\} 1$/m);
  assert.match(text, /^mosaic_custom_size_bucket\{listener="ingress",filter="auth",le="100"\} 1$/m);
});

Deno.test("a plugin counts calls, errors, timeouts and latency; restarts come from its instance", () => {
  const stats = new StatsRegistry();
  const p = stats.plugin("checker");
  let restarts = 2;
  p.restartsSource = () => restarts;
  p.called(3, false, false);
  p.called(7, true, false);
  p.called(1000, true, true);
  restarts = 3;
  const scope = stats.snapshot().scopes.find((s) => s.kind === "plugin")!;
  assert.deepEqual(scope.labels, { plugin: "checker" });
  assert.deepEqual(scope.counters, { calls: 3, errors: 2, timeouts: 1, restarts: 3 });
  assert.equal(scope.histograms.latency.count, 3);
  assert.equal(scope.histograms.latency.sum, 1010);
  const prom = toPrometheus(stats.snapshot());
  assert.match(prom, /^mosaic_plugin_calls\{plugin="checker"\} 3$/m);
  assert.match(prom, /^mosaic_plugin_latency_count\{plugin="checker"\} 3$/m);
});

Deno.test("the main thread's own snapshot has only the plugins, added once to the workers' sum", () => {
  const main = new StatsRegistry();
  main.plugin("checker").called(2, false, false);
  main.listener("web").downstream_rq_total = 99; // not served from the main thread with workers
  assert.deepEqual(main.mainThreadSnapshot().scopes.map((s) => s.kind), ["plugin"]);
  const worker = (n: number) => {
    const w = new StatsRegistry();
    w.listener("web").downstream_rq_total = n;
    return w.snapshot();
  };
  const sum = sumStats([sumStats([worker(1), worker(2)]), main.mainThreadSnapshot()]);
  const json = toEnvoyJson(sum);
  assert.equal(json.stats.find((s) => s.name === "plugin.checker.calls")?.value, 1);
  assert.equal(json.stats.find((s) => s.name === "listener.web.downstream_rq_total")?.value, 3);
});

Deno.test("a listener's certificates: seconds until notAfter, the first to expire, the same in every worker", () => {
  const now = Date.now();
  const registry = () => {
    const r = new StatsRegistry();
    r.certificates("tls", [
      { name: "leaf", notAfterMs: now + 3 * 86_400_000 + 5000 },
      { name: "ca", notAfterMs: now + 30 * 86_400_000 },
    ]);
    return r;
  };
  const one = registry().snapshot();
  const leaf = one.scopes.find((s) => s.kind === "certificate" && s.labels.certificate === "leaf")!;
  assert.deepEqual(leaf.labels, { listener: "tls", certificate: "leaf" });
  const left = leaf.gauges.seconds_until_expiry;
  assert.ok(Math.abs(left - (3 * 86_400 + 5)) <= 2, `${left}`);
  const listener = one.scopes.find((s) => s.kind === "listener")!;
  assert.equal(listener.gauges.ssl_days_until_first_cert_expiring, 3);
  assert.ok(Math.abs(listener.gauges.ssl_seconds_until_first_cert_expiring - left) <= 1);
  // Four workers serve the same certificate: the sum keeps one value, not four times it.
  const sum = sumStats([one, registry().snapshot(), registry().snapshot(), registry().snapshot()]);
  const summed = sum.scopes.find((s) =>
    s.kind === "certificate" && s.labels.certificate === "leaf"
  )!;
  assert.ok(Math.abs(summed.gauges.seconds_until_expiry - left) <= 2);
  assert.match(
    toPrometheus(sum),
    /^mosaic_certificate_seconds_until_expiry\{listener="tls",certificate="ca"\} \d+$/m,
  );
  // New material replaces the old certificates.
  const r = registry();
  r.certificates("tls", [{ name: "next", notAfterMs: now + 86_400_000 }]);
  const names = r.snapshot().scopes.filter((s) => s.kind === "certificate").map((s) =>
    s.labels.certificate
  );
  assert.deepEqual(names, ["next"]);
});

Deno.test("certificateExpiries reads notAfter of every certificate of a PEM chain", async () => {
  const pki = await makeTestPki();
  const chain = pki.serverCert + "\n" + pki.caCert;
  const expiries = certificateExpiries(chain);
  assert.equal(expiries.length, 2);
  for (const [e, pem] of [[expiries[0], pki.serverCert], [expiries[1], pki.caCert]] as const) {
    assert.equal(e.notAfterMs, Date.parse(new X509Certificate(pem).validTo));
  }
  assert.ok(expiries[0].notAfterMs > Date.now());
  assert.deepEqual(certificateExpiries("not a pem"), []);
});

Deno.test("the plugin manager counts a real plugin's calls, a timeout and a call while it is disabled", async () => {
  const name = `stats_echo_${crypto.randomUUID().slice(0, 8)}`;
  const manager = new PluginManager(
    new Map([[name, pluginConfig(name, await nodeCommand("echo_plugin.ts"))]]),
    { healthIntervalMs: 0 },
  );
  await manager.start();
  try {
    for (let i = 0; i < 3; i++) await manager.call(name, { type: "" }, { timeoutMs: 2000 });
    await assert.rejects(manager.call(name, { type: "sleep:1000" }, { timeoutMs: 50 }));
    await assert.rejects(manager.call(name, { type: "fail:boom" }, { timeoutMs: 2000 }));
    await manager.disable(name);
    await assert.rejects(manager.call(name, { type: "" }));
    const scope = threadStats.snapshot().scopes.find((s) =>
      s.kind === "plugin" && s.labels.plugin === name
    )!;
    assert.deepEqual(scope.counters, { calls: 6, errors: 3, timeouts: 1, restarts: 0 });
    assert.equal(scope.histograms.latency.count, 6);
    assert.ok(scope.histograms.latency.sum >= 50, `${scope.histograms.latency.sum}`);
  } finally {
    await manager.stop();
  }
});

Deno.test("a proxy-wasm metric's name becomes a custom metric name", () => {
  assert.equal(customMetricName("conformance_requests"), "conformance_requests");
  assert.equal(customMetricName("example.requests-total"), "example_requests_total");
  assert.equal(customMetricName("9lives"), "_9lives");
  assert.equal(customMetricName(""), "_");
});
