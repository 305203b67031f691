import { testTlsContext } from "./tls_context.ts";
import assert from "node:assert/strict";
import { ConfigError } from "../../../src/config/errors.ts";
import type { TlsContextConfig } from "../../../src/config/types.ts";
import { makeTlsConnect, UpstreamTlsError } from "../../../src/tls/client.ts";
import { UpstreamConnectError } from "../../../src/upstream/types.ts";
import { makeTestPki } from "../../helpers/certs.ts";
import {
  echo,
  pairRoundTrips,
  startDenoEcho,
  startNodeEcho,
  startPairServer,
} from "./upstreams.ts";

const pki = await makeTestPki();

function clusterTls(overrides: Partial<TlsContextConfig> = {}): TlsContextConfig {
  return testTlsContext(`${pki.dir}/config.yaml`, {
    caCert: "ca.crt",
    position: {
      file: `${pki.dir}/config.yaml`,
      line: 40,
      path: "cluster_manager.clusters[0].tls_context",
    },
    ...overrides,
  });
}

Deno.test("an upstream signed by ca_cert is verified, and ALPN picks h2", async () => {
  const upstream = startDenoEcho(pki.serverCert, pki.serverKey, ["h2", "http/1.1"]);
  try {
    const connect = makeTlsConnect(clusterTls({ alpn: ["h2", "http/1.1"] }));
    using conn = await connect("127.0.0.1", upstream.port);
    assert.equal((await conn.handshake()).alpnProtocol, "h2");
    assert.equal(await echo(conn, "ping"), "ping");
    using byName = await connect("localhost", upstream.port);
    assert.equal(await echo(byName, "pong"), "pong");
  } finally {
    await upstream.close();
  }
});

Deno.test("an upstream signed by an unknown CA fails with a message that says so", async () => {
  const upstream = startDenoEcho(pki.serverCert, pki.serverKey);
  try {
    for (const tls of [clusterTls({ caCert: undefined }), clusterTls({ caCert: "other-ca.crt" })]) {
      await assert.rejects(makeTlsConnect(tls)("127.0.0.1", upstream.port), (error: unknown) => {
        assert.ok(error instanceof UpstreamTlsError);
        assert.ok(error instanceof UpstreamConnectError, "the proxy answers 502");
        assert.equal(error.kind, "unknown_ca");
        assert.equal(
          error.message,
          `TLS handshake with 127.0.0.1:${upstream.port} failed: the certificate is not ` +
            "signed by a trusted CA (invalid peer certificate: UnknownIssuer)",
        );
        return true;
      });
    }
  } finally {
    await upstream.close();
  }
});

Deno.test("an upstream certificate for another name fails with a message that names it", async () => {
  const upstream = startDenoEcho(pki.serverCert, pki.serverKey);
  try {
    const connect = makeTlsConnect(clusterTls({ serverName: "api.internal" }));
    await assert.rejects(connect("127.0.0.1", upstream.port), (error: unknown) => {
      assert.ok(error instanceof UpstreamTlsError);
      assert.equal(error.kind, "wrong_name");
      assert.match(
        error.message,
        new RegExp(
          `^TLS handshake with 127\\.0\\.0\\.1:${upstream.port} \\(server name "api\\.internal"\\) ` +
            `failed: the certificate is not valid for "api\\.internal" \\(invalid peer certificate: ` +
            `certificate not valid for name "api\\.internal"; certificate is only valid for ` +
            `DnsName\\("localhost"\\) or IpAddress\\(127\\.0\\.0\\.1\\)\\)$`,
        ),
      );
      return true;
    });
  } finally {
    await upstream.close();
  }
});

Deno.test("server_name is sent as SNI and checked against the certificate", async () => {
  const upstream = await startNodeEcho({ cert: pki.altServerCert, key: pki.altServerKey });
  try {
    const connect = makeTlsConnect(clusterTls({ serverName: pki.altServerName }));
    using conn = await connect("127.0.0.1", upstream.port);
    assert.equal(await echo(conn, "sni"), "sni");
    assert.deepEqual(upstream.seen.map((s) => s.serverName), [pki.altServerName]);
    // Without server_name the host (an IP, so no SNI) is what the certificate must match.
    await assert.rejects(
      makeTlsConnect(clusterTls())("127.0.0.1", upstream.port),
      (error: unknown) => error instanceof UpstreamTlsError && error.kind === "wrong_name",
    );
  } finally {
    await upstream.close();
  }
});

Deno.test("a client certificate from cert_chain and private_key does mTLS to the upstream", async () => {
  const upstream = await startNodeEcho({
    cert: pki.serverCert,
    key: pki.serverKey,
    ca: pki.caCert,
    requestCert: true,
  });
  try {
    const connect = makeTlsConnect(
      clusterTls({ certChain: "client.crt", privateKey: "client.key", alpn: ["http/1.1"] }),
    );
    using conn = await connect("localhost", upstream.port);
    assert.equal((await conn.handshake()).alpnProtocol, null, "the upstream offers no ALPN");
    assert.equal(await echo(conn, "mutual"), "mutual");
    assert.deepEqual(upstream.seen, [
      { serverName: "localhost", authorized: true, clientCn: "mosaic-client" },
    ]);
    // Material from a provider works the same way.
    const fromMaterial = makeTlsConnect(clusterTls({ caCert: undefined }), {
      cert: pki.clientCert,
      key: pki.clientKey,
      ca: pki.caCert,
    });
    using second = await fromMaterial("127.0.0.1", upstream.port);
    assert.equal(await echo(second, "again"), "again");
    assert.equal(upstream.seen.length, 2);
  } finally {
    await upstream.close();
  }
});

Deno.test("an upstream that requires a client certificate refuses one without it", async () => {
  const upstream = await startNodeEcho({
    cert: pki.serverCert,
    key: pki.serverKey,
    ca: pki.caCert,
    requestCert: true,
  });
  try {
    const attempts: [TlsContextConfig, RegExp][] = [
      // Without a certificate the server sends an alert.
      [clusterTls(), /received fatal alert: CertificateRequired/],
      // With one from another CA, node:tls hangs up after the handshake, without an alert.
      [
        clusterTls({ certChain: "other-client.crt", privateKey: "other-client.key" }),
        /Connection ended after 0 bytes/,
      ],
    ];
    for (const [tls, expected] of attempts) {
      // With TLS 1.3 the server judges the client's certificate after the client has
      // finished its handshake: the refusal comes at the first read.
      await assert.rejects(async () => {
        using conn = await makeTlsConnect(tls)("127.0.0.1", upstream.port);
        await echo(conn, "let me in");
      }, expected);
    }
    assert.equal(upstream.seen.length, 0, "no connection got through");
    assert.equal(upstream.failures.length, 2);
  } finally {
    await upstream.close();
  }
});

Deno.test("insecure_skip connects to an untrusted upstream with another name", async () => {
  const upstream = startDenoEcho(pki.serverCert, pki.serverKey, ["h2"]);
  try {
    const connect = makeTlsConnect(
      clusterTls({
        caCert: "other-ca.crt",
        serverName: "api.internal",
        insecureSkip: true,
        alpn: ["h2"],
      }),
    );
    using conn = await connect("127.0.0.1", upstream.port);
    assert.equal((await conn.handshake()).alpnProtocol, "h2");
    assert.equal(conn.remoteAddr.port, upstream.port);
    assert.equal(await echo(conn, "x".repeat(100_000)), "x".repeat(100_000));
    // The stream views work too, for code that pipes.
    const writer = conn.writable.getWriter();
    await writer.write(new TextEncoder().encode("streams"));
    writer.releaseLock();
    const reader = conn.readable.getReader();
    let text = "";
    while (text.length < 7) {
      const { value, done } = await reader.read();
      if (done) break;
      text += new TextDecoder().decode(value);
    }
    reader.releaseLock();
    assert.equal(text, "streams");
  } finally {
    await upstream.close();
  }
});

Deno.test("a refused connection is a connect error, not a TLS error", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = listener.addr.port;
  listener.close();
  for (const tls of [clusterTls(), clusterTls({ insecureSkip: true })]) {
    await assert.rejects(makeTlsConnect(tls)("127.0.0.1", port), (error: unknown) => {
      assert.ok(error instanceof UpstreamConnectError);
      assert.ok(!(error instanceof UpstreamTlsError));
      assert.match(error.message, new RegExp(`^Cannot connect to 127\\.0\\.0\\.1:${port}`));
      return true;
    });
  }
});

Deno.test("tls_context values Deno cannot honour are config errors with their position", () => {
  const cases: [Partial<TlsContextConfig>, string, RegExp][] = [
    [
      { certChain: "client.crt" },
      "private_key",
      /a client certificate needs both cert_chain and private_key/,
    ],
    [{ caCert: "nowhere.crt" }, "ca_cert", /cannot read .*nowhere\.crt: /],
    [{ caCert: pki.clientKey }, "ca_cert", /the inline PEM holds no "CERTIFICATE" PEM block/],
    [
      { maxVersion: "TLS1_2" },
      "max_version",
      /Deno always offers TLS 1\.3 and cannot set a maximum/,
    ],
    [{ minVersion: "TLS1_0" }, "min_version", /Deno always accepts TLS 1\.2 and 1\.3/],
  ];
  for (const [overrides, field, expected] of cases) {
    assert.throws(() => makeTlsConnect(clusterTls(overrides)), (error: unknown) => {
      assert.ok(error instanceof ConfigError);
      assert.equal(error.path, `cluster_manager.clusters[0].tls_context.${field}`);
      assert.equal(error.line, 40);
      assert.match(error.message, expected);
      return true;
    });
  }
});

Deno.test("upstream TLS connections have no-delay set, so two-write exchanges do not stall", async () => {
  // With Nagle's algorithm each exchange would wait for a delayed ACK (~40 ms): 20 of them
  // take 800 ms or more. Without it they take a few ms; 400 ms leaves room for a busy box.
  const upstream = startPairServer(pki.serverCert, pki.serverKey);
  try {
    for (
      const tls of [
        clusterTls(),
        clusterTls({ certChain: "client.crt", privateKey: "client.key" }),
        clusterTls({ insecureSkip: true }),
      ]
    ) {
      using conn = await makeTlsConnect(tls)("localhost", upstream.port);
      const ms = await pairRoundTrips(conn, 20);
      assert.ok(ms < 400, `20 exchanges took ${ms.toFixed(0)} ms`);
    }
  } finally {
    await upstream.close();
  }
});
