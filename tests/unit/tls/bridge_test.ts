import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { connect as nodeTlsConnect } from "node:tls";
import { ConfigError } from "../../../src/config/errors.ts";
import type { TlsMaterial } from "../../../src/filter/api.ts";
import {
  serveTlsBridge,
  type TlsBridgeServeInfo,
  type TlsBridgeServer,
  type TlsClientFailure,
} from "../../../src/tls/bridge.ts";
import { makeTestPki } from "../../helpers/certs.ts";
import { curl, testTlsContext } from "./tls_context.ts";

const pki = await makeTestPki();

interface Running {
  server: TlsBridgeServer;
  failures: TlsClientFailure[];
  infos: TlsBridgeServeInfo[];
  url: string;
}

async function start(requireClientCert: boolean, material?: TlsMaterial): Promise<Running> {
  const failures: TlsClientFailure[] = [];
  const infos: TlsBridgeServeInfo[] = [];
  const server = await serveTlsBridge({
    hostname: "127.0.0.1",
    port: 0,
    tls: testTlsContext(`${pki.dir}/config.yaml`, { requireClientCert }),
    material: material ?? { cert: pki.serverCert, key: pki.serverKey, ca: pki.caCert },
    onTlsError: (failure) => failures.push(failure),
  }, (request, info) => {
    infos.push(info);
    return new Response(`${request.method} ${new URL(request.url).pathname}\n`);
  });
  return { server, failures, infos, url: `https://localhost:${server.addr.port}/hello` };
}

/** Waits until `condition` holds, polling, for at most 5 s. */
async function eventually(condition: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 100 && !condition(); i++) await new Promise((r) => setTimeout(r, 50));
  assert.ok(condition(), `timed out waiting for ${what}`);
}

Deno.test("the bridge accepts a client with a good certificate over HTTP/2 and HTTP/1.1", async () => {
  const { server, infos, url } = await start(true);
  try {
    const client = [
      "--cacert",
      pki.paths.caCert,
      "--cert",
      pki.paths.clientCert,
      "--key",
      pki.paths.clientKey,
    ];
    const h2 = await curl(["--http2", ...client, "-w", "%{http_version}", url]);
    assert.equal(h2.stdout, "GET /hello\n2", h2.stderr);
    const h1 = await curl(["--http1.1", ...client, "-w", "%{http_version}", url]);
    assert.equal(h1.stdout, "GET /hello\n1.1", h1.stderr);
    assert.equal(infos.length, 2);
    for (const info of infos) {
      assert.equal(info.remoteAddr.hostname, "127.0.0.1");
      assert.equal(info.serverName, "localhost");
      assert.equal(info.clientCertificate?.subject, "CN=mosaic-client");
      assert.equal(info.clientCertificate?.issuer, "CN=Mosaic Test CA");
      assert.equal(
        info.clientCertificate?.fingerprint256,
        new X509Certificate(pki.clientCert).fingerprint256,
      );
    }
  } finally {
    await server.shutdown();
  }
});

Deno.test("the bridge refuses a client without a certificate or with a wrong one", async () => {
  const { server, failures, infos, url } = await start(true);
  try {
    const none = await curl(["--cacert", pki.paths.caCert, url]);
    assert.notEqual(none.code, 0);
    const wrong = await curl([
      "--cacert",
      pki.paths.caCert,
      "--cert",
      pki.paths.otherClientCert,
      "--key",
      pki.paths.otherClientKey,
      url,
    ]);
    assert.notEqual(wrong.code, 0);
    assert.equal(infos.length, 0, "no request reached the handler");
    await eventually(() => failures.length === 2, "two handshake failures");
    assert.deepEqual(failures.map((f) => f.reason), [
      "the client sent no certificate, and the listener requires one",
      "client certificate rejected: UNABLE_TO_VERIFY_LEAF_SIGNATURE",
    ]);
    assert.equal(failures[0].remoteAddr.hostname, "127.0.0.1");
  } finally {
    await server.shutdown();
  }
});

Deno.test("plain text to the bridge fails cleanly and is reported once", async () => {
  const { server, failures, url } = await start(false);
  try {
    const plain = await curl([`http://127.0.0.1:${server.addr.port}/`]);
    assert.notEqual(plain.code, 0);
    await eventually(() => failures.length === 1, "the handshake failure");
    assert.equal(
      failures[0].reason,
      "plain-text data on the TLS port (an http:// request to an https:// listener?)",
    );
    // Without require_client_cert, any client that trusts the CA gets in.
    const ok = await curl(["--cacert", pki.paths.caCert, url]);
    assert.equal(ok.stdout, "GET /hello\n");
    assert.equal(failures.length, 1);
  } finally {
    await server.shutdown();
  }
});

Deno.test("the bridge's inner port answers 403 to anyone but the bridge", async () => {
  const { server } = await start(false);
  try {
    const response = await fetch(`http://127.0.0.1:${server.innerAddr.port}/`);
    assert.equal(response.status, 403);
    assert.equal(await response.text(), "Connect through the TLS listener\n");
  } finally {
    await server.shutdown();
  }
});

Deno.test("require_client_cert without a CA is a config error", async () => {
  await assert.rejects(
    start(true, { cert: pki.serverCert, key: pki.serverKey }),
    (error: unknown) => {
      assert.ok(error instanceof ConfigError);
      assert.equal(error.path, "servers[0].listeners[0].filter_chains[0].tls_context.ca_cert");
      assert.match(error.message, /require_client_cert needs ca_cert/);
      return true;
    },
  );
});

/** One HTTP/1.1 request on a new TLS connection; resolves to the status line. */
async function requestOnce(port: number, caCerts: string[]): Promise<string> {
  const conn = await Deno.connectTls({ hostname: "localhost", port, caCerts });
  try {
    await conn.write(
      new TextEncoder().encode("GET / HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n"),
    );
    let text = "";
    const buffer = new Uint8Array(4096);
    for (let n = await conn.read(buffer); n !== null; n = await conn.read(buffer)) {
      text += new TextDecoder().decode(buffer.subarray(0, n));
    }
    return text.slice(0, text.indexOf("\r\n"));
  } finally {
    conn.close();
  }
}

function servedFingerprint(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = nodeTlsConnect({ host: "127.0.0.1", port, rejectUnauthorized: false }, () => {
      const fingerprint = socket.getPeerCertificate().fingerprint256;
      socket.destroy();
      resolve(fingerprint);
    });
    socket.once("error", reject);
  });
}

Deno.test("setMaterial rotates the certificate under a request loop with no failure", async () => {
  const next = await makeTestPki();
  const first = { cert: pki.serverCert, key: pki.serverKey };
  const second = { cert: next.serverCert, key: next.serverKey };
  const { server } = await start(false, first);
  try {
    const port = server.addr.port;
    const caCerts = [pki.caCert, next.caCert];
    let stop = false;
    let ok = 0;
    const errors: string[] = [];
    const worker = async () => {
      for (let i = 0; i < 2000 && !stop; i++) {
        try {
          const status = await requestOnce(port, caCerts);
          if (status === "HTTP/1.1 200 OK") ok++;
          else errors.push(status);
        } catch (error) {
          errors.push(String(error));
        }
      }
    };
    const workers = Array.from({ length: 4 }, worker);
    for (let swap = 0; swap < 6; swap++) {
      await new Promise((r) => setTimeout(r, 150));
      server.setMaterial(swap % 2 === 0 ? second : first);
    }
    await new Promise((r) => setTimeout(r, 150));
    stop = true;
    await Promise.all(workers);
    assert.deepEqual(errors, []);
    assert.ok(ok >= 8, `only ${ok} requests ran`);
    // Six swaps end on `first`; one more puts `second` in force for new connections.
    server.setMaterial(second);
    assert.equal(
      await servedFingerprint(port),
      new X509Certificate(next.serverCert).fingerprint256,
    );
  } finally {
    await server.shutdown();
  }
});
