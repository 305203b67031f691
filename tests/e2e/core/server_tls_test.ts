/**
 * A TLS listener (the node:tls bridge) serves HTTP/1.1 with Mosaic's own server: the
 * default timeouts apply over TLS too, and SIGTERM drains it.
 */

import assert from "node:assert/strict";
import { connect } from "node:tls";
import { makeTestPki } from "../../helpers/certs.ts";
import { startProxy, startUpstream, writeConfig } from "../../helpers/proxy_process.ts";
import { tlsYaml } from "../tls/helpers.ts";

const pki = await makeTestPki();
const TLS =
  `{ status: true, cert_chain: ${pki.paths.serverCert}, private_key: ${pki.paths.serverKey} }`;

/** Sends `pieces` over TLS (http/1.1 by ALPN) and reads until close or `ms`. */
function tlsExchange(
  address: string,
  pieces: string[],
  ms: number,
): Promise<{ text: string; closed: boolean; elapsed: number }> {
  const [host, port] = address.split(":");
  const started = Date.now();
  return new Promise((resolve) => {
    let text = "";
    let done = false;
    const socket = connect({
      host,
      port: Number(port),
      ca: Deno.readTextFileSync(pki.paths.caCert),
      servername: "localhost",
      ALPNProtocols: ["http/1.1"],
    }, () => {
      for (const piece of pieces) socket.write(piece);
    });
    const finish = (closed: boolean) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      resolve({ text, closed, elapsed: Date.now() - started });
    };
    const timer = setTimeout(() => finish(false), ms);
    socket.on("data", (chunk: Uint8Array) => text += new TextDecoder().decode(chunk));
    socket.on("end", () => finish(true));
    socket.on("close", () => finish(true));
    socket.on("error", () => finish(true));
  });
}

Deno.test("over TLS, a slow head gets 408 and the connection closes; good requests pass", async () => {
  const upstream = startUpstream((request) => new Response(new URL(request.url).pathname));
  const file = await writeConfig(
    tlsYaml({ tls: TLS, clusters: [{ name: "up", hosts: [upstream.address] }] })
      .replace(
        "        filter_chains:",
        "        header_read_timeout: 600ms\n        filter_chains:",
      ),
  );
  const proxy = await startProxy(file);
  try {
    const address = proxy.listeners.get("l")!;
    const good = await tlsExchange(address, [
      "GET /ok HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    ], 5000);
    assert.match(good.text, /^HTTP\/1\.1 200 OK[\s\S]*\/ok$/);
    const slow = await tlsExchange(address, ["GET / HTTP/1.1\r\nHost: a\r\nX-Slow"], 5000);
    assert.ok(slow.closed, "the proxy closed the slow connection");
    assert.match(slow.text, /^HTTP\/1\.1 408 Request Timeout/);
    assert.ok(slow.elapsed < 3000, `closed after ${slow.elapsed} ms`);
  } finally {
    await proxy.stop();
    await upstream.close();
  }
});

Deno.test("SIGTERM drains a TLS listener: the in-flight request is answered, exit 0", async () => {
  const reached = Promise.withResolvers<void>();
  const upstream = startUpstream(async () => {
    reached.resolve();
    await new Promise((resolve) => setTimeout(resolve, 1200));
    return new Response("slow");
  });
  const file = await writeConfig(
    tlsYaml({
      tls: TLS,
      clusters: [{ name: "up", hosts: [upstream.address] }],
      topLevel: "drain_timeout: 10s",
    }),
  );
  const proxy = await startProxy(file);
  try {
    const inFlight = tlsExchange(
      proxy.listeners.get("l")!,
      ["GET / HTTP/1.1\r\nHost: a\r\n\r\n"],
      8000,
    );
    // The request is in flight once the upstream has it (a busy machine may take a while
    // to finish the TLS handshake; a connection with no request yet is closed at once).
    await reached.promise;
    proxy.kill("SIGTERM");
    const answered = await inFlight;
    assert.match(answered.text, /^HTTP\/1\.1 200 OK[\s\S]*connection: close[\s\S]*slow$/);
    assert.equal((await proxy.status).code, 0);
  } finally {
    await proxy.stop();
    await upstream.close();
  }
});
