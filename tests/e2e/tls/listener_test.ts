/**
 * TLS listeners through the real proxy process: HTTP/1.1 and HTTP/2 by ALPN on both ways
 * of serving (Deno.serve and the node:tls bridge), plain text sent to the TLS port, and
 * how the way is chosen.
 */

import assert from "node:assert/strict";
import { makeTestPki } from "../../helpers/certs.ts";
import {
  type ProxyProcess,
  startProxy,
  startUpstream,
  writeConfig,
} from "../../helpers/proxy_process.ts";
import { countLines, curl, DIRECT_ROUTE, eventually, tlsYaml } from "./helpers.ts";

const pki = await makeTestPki();
const FLAGS = ["--allow-net", "--allow-read", "--allow-env"];
const TLS =
  `{ status: true, cert_chain: ${pki.paths.serverCert}, private_key: ${pki.paths.serverKey} }`;

/** Starts the proxy with MOSAIC_TLS_SERVE set to `mode` in its environment. */
async function startWithMode(
  file: string,
  mode: "direct" | "bridge" | "auto",
  flags = [...FLAGS, "--unstable-net"],
): Promise<ProxyProcess> {
  Deno.env.set("MOSAIC_TLS_SERVE", mode);
  try {
    return await startProxy(file, { flags });
  } finally {
    Deno.env.delete("MOSAIC_TLS_SERVE");
  }
}

for (const mode of ["direct", "bridge"] as const) {
  Deno.test(`a TLS listener (${mode}) serves HTTP/1.1 and HTTP/2 by ALPN and says https upstream`, async () => {
    const upstream = startUpstream((request) =>
      Response.json({
        proto: request.headers.get("x-forwarded-proto"),
        path: new URL(request.url).pathname,
      })
    );
    const file = await writeConfig(
      tlsYaml({ tls: TLS, clusters: [{ name: "up", hosts: [upstream.address] }] }),
    );
    const proxy = await startWithMode(file, mode);
    try {
      const name = mode === "direct" ? "Deno.serve" : "node:tls bridge";
      assert.match(proxy.output(), new RegExp(`TLS on listener "l": "${name}"`));
      const port = proxy.listeners.get("l")!.split(":")[1];
      for (const [flag, version] of [["--http1.1", "1.1"], ["--http2", "2"]]) {
        const result = await curl([
          flag,
          "--cacert",
          pki.paths.caCert,
          "-w",
          "\n%{http_code} %{http_version}",
          `https://localhost:${port}/over-tls`,
        ]);
        assert.equal(result.code, 0, result.stderr);
        const [body, status] = result.stdout.split("\n");
        assert.equal(status, `200 ${version}`);
        assert.deepEqual(JSON.parse(body), { proto: "https", path: "/over-tls" });
      }
      // Without the CA the client refuses the certificate.
      const untrusted = await curl([`https://localhost:${port}/`]);
      assert.equal(untrusted.code, 60, untrusted.stderr);
    } finally {
      await proxy.stop();
      await upstream.close();
    }
  });
}

Deno.test("plain text to a bridged TLS port fails cleanly and is logged once", async () => {
  const file = await writeConfig(tlsYaml({ tls: TLS, routes: [DIRECT_ROUTE] }));
  const proxy = await startWithMode(file, "bridge");
  try {
    const address = proxy.listeners.get("l")!;
    const plain = await curl([`http://${address}/`]);
    assert.notEqual(plain.code, 0, "an http:// request to the TLS port must fail");
    const pattern = /TLS handshake from .* failed on listener "l": .*plain-text data/;
    await eventually(() => countLines(proxy.output(), pattern) === 1, "the plain-text log line");
    // The listener lives on.
    const secure = await curl(["--cacert", pki.paths.caCert, `https://${address}/`]);
    assert.equal(secure.stdout, "hello over tls");
    assert.equal(countLines(proxy.output(), pattern), 1);
  } finally {
    await proxy.stop();
  }
});

Deno.test("plain text to a Deno.serve TLS port fails cleanly; Deno reports nothing to log", async () => {
  const file = await writeConfig(tlsYaml({ tls: TLS, routes: [DIRECT_ROUTE] }));
  const proxy = await startWithMode(file, "direct");
  try {
    const address = proxy.listeners.get("l")!;
    const before = proxy.output().length;
    const plain = await curl([`http://${address}/`]);
    // curl reads the TLS alert as a malformed HTTP/0.9 answer.
    assert.notEqual(plain.code, 0, "an http:// request to the TLS port must fail");
    const secure = await curl(["--cacert", pki.paths.caCert, `https://${address}/`]);
    assert.equal(secure.stdout, "hello over tls");
    assert.equal(proxy.output().slice(before).trim(), "");
  } finally {
    await proxy.stop();
  }
});

Deno.test("by default a TLS listener is bridged, and the log says why", async () => {
  const file = await writeConfig(tlsYaml({ tls: TLS, routes: [DIRECT_ROUTE] }));
  const proxy = await startWithMode(file, "auto", FLAGS);
  try {
    assert.match(
      proxy.output(),
      /"node:tls bridge" \("new certificates \(SIGHUP, refresh\) fail no/,
    );
    const secure = await curl([
      "--cacert",
      pki.paths.caCert,
      `https://${proxy.listeners.get("l")}/`,
    ]);
    assert.equal(secure.stdout, "hello over tls");
  } finally {
    await proxy.stop();
  }
});

// deno.json's unstable list has "net" (for workers' reusePort), so a proxy run from the
// project folder always has it, and a direct listener can be rebound for a rotation.
Deno.test("MOSAIC_TLS_SERVE=direct serves through Deno.serve", async () => {
  const file = await writeConfig(tlsYaml({ tls: TLS, routes: [DIRECT_ROUTE] }));
  const proxy = await startWithMode(file, "direct", FLAGS);
  try {
    assert.match(proxy.output(), /TLS on listener "l": "Deno\.serve"/);
    const secure = await curl([
      "--cacert",
      pki.paths.caCert,
      `https://${proxy.listeners.get("l")}/`,
    ]);
    assert.equal(secure.stdout, "hello over tls");
  } finally {
    await proxy.stop();
  }
});

Deno.test("tls_context serve_mode in the config chooses how the listener serves", async () => {
  const upstream = startUpstream(() => new Response("ok"));
  const tls = TLS.replace("status: true,", "status: true, serve_mode: direct,");
  const file = await writeConfig(
    tlsYaml({ tls, clusters: [{ name: "up", hosts: [upstream.address] }] }),
  );
  const proxy = await startProxy(file, { flags: [...FLAGS, "--unstable-net"] });
  try {
    assert.match(proxy.output(), /TLS on listener "l": "Deno\.serve"/);
    const port = proxy.listeners.get("l")!.split(":")[1];
    const result = await curl(["--cacert", pki.paths.caCert, `https://localhost:${port}/`]);
    assert.equal(result.stdout, "ok");
  } finally {
    await proxy.stop();
    await upstream.close();
  }
});
