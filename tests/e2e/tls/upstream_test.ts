/**
 * Cluster TLS through the real proxy process: SNI and `ca_cert` over HTTP/1.1 and
 * HTTP/2 (h2 by ALPN), failed verifications answered 502 with a log line that says why,
 * and client certificates to an upstream that requires them (mTLS).
 */

import assert from "node:assert/strict";
import { makeTestPki } from "../../helpers/certs.ts";
import { type ProxyProcess, startProxy, writeConfig } from "../../helpers/proxy_process.ts";
import {
  eventually,
  startNodeTlsUpstream,
  startTlsUpstream,
  type TlsUpstream,
  tlsYaml,
} from "./helpers.ts";

const pki = await makeTestPki();

/** Starts a plain-HTTP proxy whose cluster `up` reaches `upstream` with `tls` (YAML). */
async function proxyTo(upstream: TlsUpstream, tls: string, extra = ""): Promise<ProxyProcess> {
  const file = await writeConfig(tlsYaml({
    clusters: [{ name: "up", hosts: [upstream.address], extra: `${extra}tls_context: ${tls}` }],
  }));
  return await startProxy(file);
}

async function get(proxy: ProxyProcess): Promise<{ status: number; body: string }> {
  const response = await fetch(`http://${proxy.listeners.get("l")}/`);
  return { status: response.status, body: await response.text() };
}

Deno.test("an upstream is reached over TLS with server_name as SNI, checked against ca_cert", async () => {
  const upstream = await startNodeTlsUpstream({ cert: pki.altServerCert, key: pki.altServerKey });
  const proxy = await proxyTo(
    upstream,
    `{ status: true, ca_cert: ${pki.paths.caCert}, server_name: ${pki.altServerName} }`,
  );
  try {
    assert.deepEqual(await get(proxy), { status: 200, body: "hello anonymous" });
    assert.deepEqual(upstream.seen.serverNames, [pki.altServerName]);
  } finally {
    await proxy.stop();
    await upstream.close();
  }
});

Deno.test("an HTTP/2 cluster reaches its upstream over TLS by ALPN", async () => {
  const upstream = startTlsUpstream(pki.serverCert, pki.serverKey);
  const proxy = await proxyTo(
    upstream,
    `{ status: true, ca_cert: ${pki.paths.caCert}, server_name: localhost }`,
    "protocol: Http2\n",
  );
  try {
    const { status, body } = await get(proxy);
    assert.equal(status, 200);
    assert.equal(JSON.parse(body).protocol, "HTTP/2");
  } finally {
    await proxy.stop();
    await upstream.close();
  }
});

Deno.test("an upstream certificate from an unknown CA gives 502 and a log line that says so", async () => {
  const upstream = startTlsUpstream(pki.serverCert, pki.serverKey);
  const proxy = await proxyTo(upstream, `{ status: true, ca_cert: ${pki.paths.otherCaCert} }`);
  try {
    const { status } = await get(proxy);
    assert.equal(status, 502);
    await proxy.waitForOutput(
      new RegExp(
        `upstream ${upstream.address} failed \\(UF, cluster "up"\\): TLS handshake with ${upstream.address} ` +
          "failed: the certificate is not signed by a trusted CA",
      ),
    );
  } finally {
    await proxy.stop();
    await upstream.close();
  }
});

Deno.test("an upstream certificate for another name gives 502 and a log line that names it", async () => {
  const upstream = startTlsUpstream(pki.serverCert, pki.serverKey);
  const proxy = await proxyTo(
    upstream,
    `{ status: true, ca_cert: ${pki.paths.caCert}, server_name: api.internal }`,
  );
  try {
    const { status } = await get(proxy);
    assert.equal(status, 502);
    await proxy.waitForOutput(/the certificate is not valid for \\?"api\.internal\\?"/);
  } finally {
    await proxy.stop();
    await upstream.close();
  }
});

Deno.test("a client certificate does mTLS to an upstream that requires one; none gives 502", async () => {
  const upstream = await startNodeTlsUpstream({
    cert: pki.serverCert,
    key: pki.serverKey,
    ca: pki.caCert,
  });
  const withCert = await proxyTo(
    upstream,
    `{ status: true, ca_cert: ${pki.paths.caCert}, cert_chain: ${pki.paths.clientCert}, ` +
      `private_key: ${pki.paths.clientKey} }`,
  );
  try {
    assert.deepEqual(await get(withCert), { status: 200, body: "hello mosaic-client" });
    assert.deepEqual(upstream.seen.clients, ["mosaic-client"]);
  } finally {
    await withCert.stop();
  }
  const without = await proxyTo(upstream, `{ status: true, ca_cert: ${pki.paths.caCert} }`);
  try {
    assert.equal((await get(without)).status, 502);
    // Under TLS 1.3 the upstream refuses the missing certificate after the client's side
    // of the handshake is done, so the proxy sees it as a reset on its first read.
    await without.waitForOutput(
      new RegExp(
        `upstream ${upstream.address} failed \\(UR, cluster "up"\\): .*reset the connection`,
      ),
    );
    await eventually(() => upstream.seen.refused === 1, "the upstream's refusal");
    assert.deepEqual(upstream.seen.clients, ["mosaic-client"]);
  } finally {
    await without.stop();
    await upstream.close();
  }
});

Deno.test("an HTTP/2 cluster asking for a client certificate is refused at start-up", async () => {
  const upstream = startTlsUpstream(pki.serverCert, pki.serverKey);
  const file = await writeConfig(tlsYaml({
    clusters: [{
      name: "up",
      hosts: [upstream.address],
      extra: `protocol: Http2\ntls_context: { status: true, cert_chain: ${pki.paths.clientCert}, ` +
        `private_key: ${pki.paths.clientKey} }`,
    }],
  }));
  const proxy = await startProxy(file, { args: ["run"] });
  try {
    assert.equal((await proxy.status).code, 1);
    assert.match(
      proxy.output(),
      /tls_context\.cert_chain: an HTTP\/2 cluster over TLS takes ca_cert and server_name only/,
    );
  } finally {
    await upstream.close();
  }
});

Deno.test("a cluster's client certificate can come from a certificate provider (the cert_loader plugin)", async () => {
  const setup = await new Deno.Command("sh", {
    args: [
      new URL("../../../examples/cert_loader/setup.sh", import.meta.url).pathname,
      "typescript",
    ],
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).output();
  assert.ok(setup.success, new TextDecoder().decode(setup.stderr));
  const dir = await Deno.makeTempDir({ prefix: "mosaic-client-certs-" });
  // The loader answers with server.crt/server.key: here, the client's certificate.
  await Deno.writeTextFile(`${dir}/server.crt`, pki.clientCert);
  await Deno.writeTextFile(`${dir}/server.key`, pki.clientKey);
  await Deno.writeTextFile(`${dir}/ca.crt`, pki.caCert);
  const upstream = await startNodeTlsUpstream({
    cert: pki.serverCert,
    key: pki.serverKey,
    ca: pki.caCert,
  });
  const loader = new URL("../../../examples/cert_loader/build/cert_loader.mjs", import.meta.url);
  const file = await writeConfig(tlsYaml({
    clusters: [{
      name: "up",
      hosts: [upstream.address],
      extra: "tls_context: { status: true, type: plugin, extend_verify: { plugin: loader } }",
    }],
    topLevel: `plugins:\n  loader:\n    command: [node, ${loader.pathname}, -d, ${dir}]\n`,
  }));
  const proxy = await startProxy(file, {
    flags: ["--allow-net", "--allow-read", "--allow-write", "--allow-run", "--allow-env"],
  });
  try {
    assert.deepEqual(await get(proxy), { status: 200, body: "hello mosaic-client" });
  } finally {
    await proxy.stop();
    await upstream.close();
    await Deno.remove(dir, { recursive: true });
  }
});
