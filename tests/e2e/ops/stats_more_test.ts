/**
 * The stats that count outside the listener and cluster path, through the real proxy
 * (`main.ts` with an `admin:` block): a `plugin` filter's calls, errors and restarts
 * (also with `workers: 2`, where the plugins run in the main thread and their stats join
 * the workers' sum once), TLS handshakes and failed handshakes of a listener, the expiry
 * gauge of its certificate, and a proxy-wasm guest's own metric in `/stats/prometheus`.
 */

import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { makeTestPki } from "../../helpers/certs.ts";
import { freePort, startProxy, writeConfig } from "../../helpers/proxy_process.ts";
import { buildGuests } from "../../fixtures/wasm/build.ts";
import { nodeCommand } from "../../unit/plugin/helpers.ts";
import { curl, DIRECT_ROUTE, eventually, startTlsUpstream, tlsYaml } from "../tls/helpers.ts";
import { stat } from "./ops_helpers.ts";

const PLUGIN_FLAGS = ["--allow-all"];

/** The value of one Prometheus sample `name{labels}`, or undefined when absent. */
async function prometheus(admin: string, sample: RegExp): Promise<number | undefined> {
  const text = await (await fetch(`${admin}/stats/prometheus`)).text();
  for (const line of text.split("\n")) {
    if (line.startsWith("#")) continue;
    const space = line.lastIndexOf(" ");
    if (sample.test(line.slice(0, space))) return Number(line.slice(space + 1));
  }
  return undefined;
}

/** The histogram `name` of `/stats`. */
async function histogramCount(admin: string, name: string): Promise<number> {
  const body = await (await fetch(`${admin}/stats`)).json() as {
    histograms: { name: string; count: number }[];
  };
  return body.histograms.find((h) => h.name === name)?.count ?? 0;
}

async function pluginYaml(adminPort: number, workers?: number): Promise<string> {
  const [node, bundle] = await nodeCommand("echo_plugin.ts");
  return `servers:
  - default_log_level: INFO
    routers:
      - router_config_name: r
        virtual_hosts:
          - name: v
            domains: ["*"]
            routers: [{ match: { prefix: / }, direct_response: { status: 200, body: ok } }]
    listeners:
      - name: web
        address: 127.0.0.1:0
        filter_chains: [{ filters: [{ type: proxy, config: { router_config_name: r } }] }]
        stream_filters:
          - type: plugin
            config: { plugin: echo, timeout: 2s, failure_mode: closed, response: true }
plugins:
  echo: { command: [${JSON.stringify(node)}, ${JSON.stringify(bundle)}], network: unix }
admin:
  address: 127.0.0.1:${adminPort}
${workers ? `workers: ${workers}\n` : ""}`;
}

async function get(url: string): Promise<{ status: number; pid: string | null }> {
  const res = await fetch(url, { headers: { connection: "close" } });
  await res.body?.cancel();
  return { status: res.status, pid: res.headers.get("x-pid") };
}

for (const workers of [undefined, 2]) {
  const what = workers === undefined ? "in one thread" : `with workers: ${workers}`;
  Deno.test(`plugin stats ${what}: calls, latency, errors while it is down, a restart`, async () => {
    const adminPort = freePort();
    const admin = `http://127.0.0.1:${adminPort}`;
    const proxy = await startProxy(await writeConfig(await pluginYaml(adminPort, workers)), {
      flags: PLUGIN_FLAGS,
    });
    try {
      const url = `http://${proxy.listeners.get("web")}/`;
      const N = 10;
      let pid = "";
      for (let i = 0; i < N; i++) {
        const r = await get(url);
        assert.equal(r.status, 200);
        pid = r.pid!;
      }
      // Each request calls the plugin twice: on the request and on the response.
      assert.equal(await stat(admin, "plugin.echo.calls"), 2 * N);
      assert.equal(await stat(admin, "plugin.echo.errors"), 0);
      assert.equal(await stat(admin, "plugin.echo.timeouts"), 0);
      assert.equal(await stat(admin, "plugin.echo.restarts"), 0);
      assert.equal(await histogramCount(admin, "plugin.echo.latency"), 2 * N);
      assert.equal(await prometheus(admin, /^mosaic_plugin_calls\{plugin="echo"\}$/), 2 * N);
      assert.equal(
        await prometheus(admin, /^mosaic_plugin_latency_count\{plugin="echo"\}$/),
        2 * N,
      );

      // Killed: the calls in the gap fail (503, failure_mode closed) until it is back.
      Deno.kill(Number(pid), "SIGKILL");
      let failed = 0;
      let sent = 0;
      const deadline = Date.now() + 15_000;
      while (Date.now() < deadline) {
        const r = await get(url);
        sent++;
        if (r.status === 503) failed++;
        if (r.status === 200 && r.pid !== pid) break;
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      await eventually(
        async () => await stat(admin, "plugin.echo.restarts") === 1,
        "plugin.echo.restarts to be 1",
      );
      const errors = await stat(admin, "plugin.echo.errors");
      const calls = await stat(admin, "plugin.echo.calls");
      // A request refused on its way in calls once; one that passes calls twice.
      assert.ok(errors >= failed, `errors ${errors} ≥ 503s ${failed}`);
      assert.ok(calls >= 2 * N + sent && calls <= 2 * N + 2 * sent, `calls ${calls}`);
      assert.equal(await histogramCount(admin, "plugin.echo.latency"), calls);
    } finally {
      await proxy.stop();
    }
  });
}

const pki = await makeTestPki();
const TLS =
  `{ status: true, cert_chain: ${pki.paths.serverCert}, private_key: ${pki.paths.serverKey} }`;

for (const workers of [undefined, 2]) {
  const what = workers === undefined ? "" : ` with workers: ${workers}`;
  Deno.test(`TLS stats${what}: handshakes, a failed handshake, the certificate's expiry gauge`, async () => {
    const adminPort = freePort();
    const admin = `http://127.0.0.1:${adminPort}`;
    const yaml = tlsYaml({
      tls: TLS,
      routes: [DIRECT_ROUTE],
      topLevel: `admin:\n  address: 127.0.0.1:${adminPort}\n${
        workers ? `workers: ${workers}\n` : ""
      }`,
    });
    const proxy = await startProxy(await writeConfig(yaml), {
      flags: ["--allow-net", "--allow-read", "--allow-env", "--unstable-net"],
    });
    try {
      const port = proxy.listeners.get("l")!.split(":")[1];
      const N = 6;
      // Each curl is one connection, so one handshake.
      for (let i = 0; i < N; i++) {
        const r = await curl(["--cacert", pki.paths.caCert, `https://localhost:${port}/`]);
        assert.equal(r.code, 0, r.stderr);
        assert.equal(r.stdout, "hello over tls");
      }
      await eventually(
        async () => await stat(admin, "listener.l.ssl_handshake") === N,
        `listener.l.ssl_handshake to be ${N}`,
      );
      // Plain text to the TLS port: one failed handshake.
      const plain = await curl([`http://localhost:${port}/`]);
      assert.notEqual(plain.code, 0);
      await eventually(
        async () => await stat(admin, "listener.l.ssl_connection_error") === 1,
        "listener.l.ssl_connection_error to be 1",
      );
      assert.equal(await stat(admin, "listener.l.ssl_handshake"), N);
      assert.equal(
        await prometheus(admin, /^mosaic_listener_ssl_handshake\{listener="l"\}$/),
        N,
      );

      // The expiry gauge: the test certificate's remaining lifetime (7 days or so).
      const cert = new X509Certificate(pki.serverCert);
      const left = (Date.parse(cert.validTo) - Date.now()) / 1000;
      const cn = /^CN=(.*)$/m.exec(cert.subject)![1];
      const gauge = await prometheus(
        admin,
        new RegExp(
          `^mosaic_certificate_seconds_until_expiry\\{listener="l",certificate="${cn}"\\}$`,
        ),
      );
      assert.ok(gauge !== undefined, "the certificate's gauge is served");
      assert.ok(Math.abs(gauge - left) < 60, `gauge ${gauge} s, certificate ${left} s`);
      const first = await stat(admin, "listener.l.ssl_seconds_until_first_cert_expiring");
      assert.ok(Math.abs(first - left) < 60, `first ${first} s`);
      assert.equal(
        await stat(admin, "listener.l.ssl_days_until_first_cert_expiring"),
        Math.floor(first / 86_400),
      );
      const expiration = await stat(
        admin,
        `certificate.l.${cn}.expiration_unix_time_seconds`,
      );
      assert.equal(expiration, Math.floor(Date.parse(cert.validTo) / 1000));
    } finally {
      await proxy.stop();
    }
  });
}

Deno.test("upstream TLS stats: a cluster counts its handshakes and its failed ones", async () => {
  const upstream = startTlsUpstream(pki.serverCert, pki.serverKey);
  const adminPort = freePort();
  const admin = `http://127.0.0.1:${adminPort}`;
  const tls = (name: string) =>
    `tls_context: { status: true, ca_cert: ${pki.paths.caCert}, server_name: ${name} }`;
  const yaml = tlsYaml({
    routes: [
      "- match: { prefix: /bad }\n  route: { cluster_name: bad }",
      "- match: { prefix: / }\n  route: { cluster_name: up }",
    ],
    clusters: [
      { name: "up", hosts: [upstream.address], extra: tls("localhost") },
      { name: "bad", hosts: [upstream.address], extra: tls("not-this-name.test") },
    ],
    topLevel: `admin:\n  address: 127.0.0.1:${adminPort}\n`,
  });
  const proxy = await startProxy(await writeConfig(yaml));
  try {
    const base = `http://${proxy.listeners.get("l")}`;
    for (let i = 0; i < 5; i++) {
      const res = await fetch(`${base}/`, { headers: { connection: "close" } });
      await res.body?.cancel();
      assert.equal(res.status, 200);
    }
    const bad = await fetch(`${base}/bad`);
    await bad.body?.cancel();
    assert.equal(bad.status, 502);
    const handshakes = await stat(admin, "cluster.up.ssl_handshake");
    assert.ok(handshakes >= 1, `cluster.up.ssl_handshake ${handshakes}`);
    assert.equal(handshakes, await stat(admin, "cluster.up.upstream_cx_total"));
    assert.equal(await stat(admin, "cluster.up.ssl_connection_error"), 0);
    assert.ok(await stat(admin, "cluster.bad.ssl_connection_error") >= 1);
    assert.equal(await stat(admin, "cluster.bad.ssl_handshake"), 0);
  } finally {
    await proxy.stop();
    await upstream.close();
  }
});

Deno.test("a proxy-wasm guest's metric is served as mosaic_custom_<name>{listener,filter}", async () => {
  const guests = await buildGuests();
  const adminPort = freePort();
  const admin = `http://127.0.0.1:${adminPort}`;
  const yaml = `servers:
  - default_log_level: INFO
    routers:
      - router_config_name: r
        virtual_hosts:
          - name: v
            domains: ["*"]
            routers: [{ match: { prefix: / }, direct_response: { status: 200, body: ok } }]
    listeners:
      - name: wasm
        address: 127.0.0.1:0
        filter_chains: [{ filters: [{ type: proxy, config: { router_config_name: r } }] }]
        stream_filters:
          - type: proxywasm
            config:
              vm_config: { path: "${guests.conformance}" }
              root_id: conformance_root
              tag: stats
admin:
  address: 127.0.0.1:${adminPort}
`;
  const proxy = await startProxy(await writeConfig(yaml), {
    flags: ["--allow-net", "--allow-read", "--allow-env"],
  });
  try {
    const url = `http://${proxy.listeners.get("wasm")}/`;
    const N = 7;
    let reported = "";
    for (let i = 0; i < N; i++) {
      const res = await fetch(url);
      await res.body?.cancel();
      assert.equal(res.status, 200);
      reported = res.headers.get("x-metric") ?? "";
    }
    const sample = /^mosaic_custom_conformance_requests\{listener="wasm",filter="[^"]+"\}$/;
    assert.equal(await prometheus(admin, sample), N);
    // proxy_get_metric reads the same count back inside the guest.
    if (reported !== "") assert.equal(Number(reported), N);
    const text = await (await fetch(`${admin}/stats/prometheus`)).text();
    assert.match(text, /^# TYPE mosaic_custom_conformance_requests counter$/m);
  } finally {
    await proxy.stop();
  }
});
