/**
 * Client certificates on a listener (`require_client_cert`) through the real proxy
 * process: served by the node:tls bridge, which verifies them against `ca_cert`. A good
 * certificate is let in; none, or one from another CA, fails the handshake with a log line.
 */

import assert from "node:assert/strict";
import { makeTestPki } from "../../helpers/certs.ts";
import { startProxy, writeConfig } from "../../helpers/proxy_process.ts";
import { countLines, curl, DIRECT_ROUTE, eventually, tlsYaml } from "./helpers.ts";

const pki = await makeTestPki();
const p = pki.paths;

Deno.test("require_client_cert lets a good client certificate in and refuses none or a wrong one", async () => {
  const file = await writeConfig(tlsYaml({
    tls: `{ status: true, cert_chain: ${p.serverCert}, private_key: ${p.serverKey}, ` +
      `ca_cert: ${p.caCert}, require_client_cert: true }`,
    routes: [DIRECT_ROUTE],
  }));
  // MOSAIC_TLS_SERVE=direct cannot take a listener that verifies clients off the bridge.
  Deno.env.set("MOSAIC_TLS_SERVE", "direct");
  const proxy = await startProxy(file).finally(() => Deno.env.delete("MOSAIC_TLS_SERVE"));
  try {
    assert.match(proxy.output(), /"node:tls bridge" \("require_client_cert/);
    const url = `https://localhost:${proxy.listeners.get("l")!.split(":")[1]}/`;
    for (const version of ["--http1.1", "--http2"]) {
      const good = await curl([
        version,
        "--cacert",
        p.caCert,
        "--cert",
        p.clientCert,
        "--key",
        p.clientKey,
        "-w",
        " %{http_code}",
        url,
      ]);
      assert.equal(good.stdout, "hello over tls 200", good.stderr);
    }

    const none = await curl(["--cacert", p.caCert, url]);
    assert.notEqual(none.code, 0, "no client certificate must fail");
    await eventually(
      () => countLines(proxy.output(), /failed on listener "l": .*sent no certificate/) === 1,
      "the log line of the missing certificate",
    );

    const wrong = await curl([
      "--cacert",
      p.caCert,
      "--cert",
      p.otherClientCert,
      "--key",
      p.otherClientKey,
      url,
    ]);
    assert.notEqual(wrong.code, 0, "a client certificate from another CA must fail");
    await eventually(
      () =>
        countLines(
          proxy.output(),
          /failed on listener "l": "client certificate rejected: UNABLE_TO_VERIFY_LEAF_SIGNATURE"/,
        ) === 1,
      "the log line of the wrong certificate",
    );
  } finally {
    await proxy.stop();
  }
});

Deno.test("require_client_cert without ca_cert stops start-up with the reason", async () => {
  const yaml = tlsYaml({
    tls: `{ status: true, cert_chain: ${p.serverCert}, private_key: ${p.serverKey}, ` +
      "require_client_cert: true }",
    routes: [DIRECT_ROUTE],
  });
  const proxy = await startProxy(await writeConfig(yaml), { args: ["run"] });
  assert.equal((await proxy.status).code, 1);
  assert.match(
    proxy.output(),
    /tls_context\.ca_cert: require_client_cert needs ca_cert: the CA that signs accepted client certificates/,
  );
});
