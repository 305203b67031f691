import assert from "node:assert/strict";
import { ConfigError } from "../../../src/config/errors.ts";
import { checkServerTlsSupported, serveTlsOptions } from "../../../src/tls/server.ts";
import { makeTestPki } from "../../helpers/certs.ts";
import { curl, testTlsContext } from "./tls_context.ts";

const pki = await makeTestPki();
const material = { cert: pki.serverCert, key: pki.serverKey };

function serve(): Deno.HttpServer<Deno.NetAddr> {
  return Deno.serve(
    {
      hostname: "127.0.0.1",
      port: 0,
      onListen() {},
      ...serveTlsOptions(material, testTlsContext(pki.dir)),
    },
    (request) => new Response(`hello over ${new URL(request.url).protocol}\n`),
  );
}

Deno.test("Deno.serve with serveTlsOptions answers HTTP/2 and HTTP/1.1 by ALPN", async () => {
  const server = serve();
  try {
    const url = `https://localhost:${server.addr.port}/`;
    const h2 = await curl(["--http2", "--cacert", pki.paths.caCert, "-w", "%{http_version}", url]);
    assert.equal(h2.stderr, "");
    assert.equal(h2.stdout, "hello over https:\n2");
    const h1 = await curl([
      "--http1.1",
      "--cacert",
      pki.paths.caCert,
      "-w",
      "%{http_version}",
      url,
    ]);
    assert.equal(h1.stdout, "hello over https:\n1.1");
    // Untrusted: curl refuses, as `curl https://…` without --cacert does in the demo.
    const untrusted = await curl([url]);
    assert.equal(untrusted.code, 60, untrusted.stderr);
  } finally {
    await server.shutdown();
  }
});

Deno.test("plain text to a Deno.serve TLS port gets a TLS alert and the server lives on", async () => {
  const server = serve();
  try {
    const port = server.addr.port;
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    await conn.write(new TextEncoder().encode("GET / HTTP/1.1\r\nhost: localhost\r\n\r\n"));
    const received: number[] = [];
    const buffer = new Uint8Array(64);
    for (
      let n = await conn.read(buffer);
      n !== null && received.length < 64;
      n = await conn.read(buffer)
    ) {
      received.push(...buffer.subarray(0, n));
    }
    conn.close();
    // One TLS record: alert (21), TLS 1.2 framing, length 2, fatal (2), decode_error (50).
    assert.deepEqual(received, [21, 3, 3, 0, 2, 2, 50]);
    const plain = await curl([`http://127.0.0.1:${port}/`]);
    assert.notEqual(plain.code, 0, "curl http:// to the TLS port fails");
    const after = await curl(["--cacert", pki.paths.caCert, `https://localhost:${port}/`]);
    assert.equal(after.stdout, "hello over https:\n");
  } finally {
    await server.shutdown();
  }
});

Deno.test("a listener tls_context Deno.serve cannot honour is rejected with its position", () => {
  const cases: [Parameters<typeof testTlsContext>[1], string, RegExp][] = [
    [
      { requireClientCert: true },
      "require_client_cert",
      /Deno\.serve cannot verify client certificates on a server socket .*serveTlsBridge/,
    ],
    [
      { alpn: ["http/1.1"] },
      "alpn",
      /Deno\.serve always offers h2 and http\/1\.1 by ALPN; got \["http\/1\.1"\]/,
    ],
    [{ alpn: ["h2", "http/1.1", "spdy/3"] }, "alpn", /always offers h2 and http\/1\.1/],
    [{ minVersion: "TLS1_3" }, "min_version", /cannot set a minimum version of "TLS1_3"/],
  ];
  for (const [overrides, field, expected] of cases) {
    const tls = testTlsContext(`${pki.dir}/config.yaml`, overrides);
    assert.throws(() => serveTlsOptions(material, tls), (error: unknown) => {
      assert.ok(error instanceof ConfigError);
      assert.equal(error.path, `servers[0].listeners[0].filter_chains[0].tls_context.${field}`);
      assert.match(error.message, new RegExp(`^${pki.dir}/config\\.yaml:7: `));
      assert.match(error.message, expected);
      return true;
    });
  }
  checkServerTlsSupported(
    testTlsContext(pki.dir, {
      alpn: ["http/1.1", "h2"],
      minVersion: "TLS1_2",
      maxVersion: "TLS_AUTO",
    }),
  );
});

Deno.test("Deno 2.9.6 cannot require client certificates: Deno.serve and Deno.listenTls ignore the options", async () => {
  // If a Deno upgrade starts honouring any of these, this test fails and
  // checkServerTlsSupported can let require_client_cert through to Deno.serve.
  const mtlsAsked = {
    caCerts: [pki.caCert],
    ca: pki.caCert,
    requestCert: true,
    rejectUnauthorized: true,
  };
  const server = Deno.serve(
    {
      hostname: "127.0.0.1",
      port: 0,
      onListen() {},
      ...material,
      ...mtlsAsked,
    } as Deno.ServeTcpOptions,
    () => new Response("no client certificate needed\n"),
  );
  const listener = Deno.listenTls({ hostname: "127.0.0.1", port: 0, ...material, ...mtlsAsked });
  try {
    const served = await curl([
      "--cacert",
      pki.paths.caCert,
      `https://localhost:${server.addr.port}/`,
    ]);
    assert.equal(served.stdout, "no client certificate needed\n");
    const accepting = listener.accept();
    using client = await Deno.connectTls({
      hostname: "localhost",
      port: listener.addr.port,
      caCerts: [pki.caCert],
    });
    using accepted = await accepting;
    await Promise.all([client.handshake(), accepted.handshake()]);
    await client.write(new Uint8Array([7]));
    const buffer = new Uint8Array(1);
    assert.equal(
      await accepted.read(buffer),
      1,
      "the server accepted a client without a certificate",
    );
  } finally {
    listener.close();
    await server.shutdown();
  }
});
