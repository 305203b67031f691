import assert from "node:assert/strict";
import { makeTestPki } from "../../helpers/certs.ts";
import { Http1Pool } from "../../../src/upstream/http1_pool.ts";
import { Http2Pool } from "../../../src/upstream/http2_pool.ts";
import { type PoolOptions, UpstreamConnectError } from "../../../src/upstream/types.ts";
import { readText } from "./_raw_server.ts";

const pki = await makeTestPki();

const OPTIONS: PoolOptions = {
  maxRequestPerConn: 0,
  connectTimeoutMs: 5000,
  idleTimeoutMs: 60_000,
  maxConnections: 10,
  maxPendingRequests: 10,
};

/** A Deno.serve server with the test PKI's certificate; it offers h2 and http/1.1. */
function tlsServer() {
  const controller = new AbortController();
  const server = Deno.serve({
    hostname: "127.0.0.1",
    port: 0,
    cert: pki.serverCert,
    key: pki.serverKey,
    signal: controller.signal,
    onListen() {},
  }, (request) => new Response(`${request.method} ${new URL(request.url).host}`));
  return {
    port: server.addr.port,
    async close() {
      controller.abort();
      await server.finished;
    },
  };
}

Deno.test("Http1Pool runs over TLS through its connect parameter", async () => {
  const server = tlsServer();
  const pool = new Http1Pool(
    { hostname: "127.0.0.1", port: server.port },
    OPTIONS,
    (_hostname, port) => Deno.connectTls({ hostname: "localhost", port, caCerts: [pki.caCert] }),
  );
  try {
    for (let i = 0; i < 3; i++) {
      const res = await pool.request({
        method: "GET",
        path: "/",
        headers: new Headers({ host: "secure.test" }),
        body: null,
      });
      assert.equal(await readText(res.body), "GET secure.test");
    }
    assert.equal(pool.size, 1);
  } finally {
    pool.close();
    await server.close();
  }
});

Deno.test("Http2Pool speaks h2 over TLS with extra CA certificates", async () => {
  const server = tlsServer();
  const pool = new Http2Pool({ hostname: "127.0.0.1", port: server.port }, OPTIONS, {
    caCerts: [pki.caCert],
    serverName: "localhost",
  });
  try {
    const res = await pool.request({
      method: "GET",
      path: "/",
      headers: new Headers({ host: "secure.test" }),
      body: null,
    });
    assert.equal(await readText(res.body), "GET secure.test");
  } finally {
    pool.close();
    await server.close();
  }
});

Deno.test("Http2Pool refuses an upstream whose certificate it does not trust", async () => {
  const server = tlsServer();
  const pool = new Http2Pool({ hostname: "127.0.0.1", port: server.port }, OPTIONS, {
    caCerts: [pki.otherCaCert],
    serverName: "localhost",
  });
  try {
    await assert.rejects(
      pool.request({ method: "GET", path: "/", headers: new Headers(), body: null }),
      UpstreamConnectError,
    );
  } finally {
    pool.close();
    await server.close();
  }
});
