/**
 * Drain of a Bolt listener on SIGTERM, with real peers: npm `sofa-rpc-node` clients call
 * a slow `sofa-rpc-node` server through the real proxy process.
 */

import assert from "node:assert/strict";
import { startProxy, writeConfig } from "../../helpers/proxy_process.ts";
import { startBoltClient, startBoltServer } from "./peers.ts";

function config(server: string, drainTimeout: string): string {
  return `
drain_timeout: ${drainTimeout}
servers:
  - routers:
      - router_config_name: any
        virtual_hosts:
          - name: rpc
            domains: ["*"]
            routers:
              - match: { headers: [{ name: service, value: ".*" }] }
                route: { cluster_name: slow }
    listeners:
      - name: bolt_in
        address: 127.0.0.1:0
        filter_chains:
          - filters:
              - type: proxy
                config: { downstream_protocol: bolt, router_config_name: any }
cluster_manager:
  clusters:
    - { name: slow, type: SIMPLE, lb_type: LB_RANDOM, hosts: [{ address: "${server}" }] }
`;
}

/** Whether a TCP connection to `address` is refused. */
async function refused(address: string): Promise<boolean> {
  const [hostname, port] = address.split(":");
  try {
    const conn = await Deno.connect({ hostname, port: Number(port) });
    conn.close();
    return false;
  } catch (error) {
    if (error instanceof Deno.errors.ConnectionRefused) return true;
    throw error;
  }
}

Deno.test("Bolt drain on SIGTERM: calls in flight are answered, new connections refused, exit 0", async () => {
  const server = await startBoltServer("slow");
  const proxy = await startProxy(await writeConfig(config(server.address, "10s")), {
    flags: ["--allow-net", "--allow-read"],
  });
  const address = proxy.listeners.get("bolt_in")!;
  const busy = startBoltClient(address);
  const idle = startBoltClient(address);
  try {
    // Both clients hold a connection to the proxy; `idle` has nothing in flight.
    assert.equal((await busy.call("echo", ["warm"])).result, "slow:warm");
    assert.equal((await idle.call("echo", ["warm"])).result, "slow:warm");
    const inFlight = busy.many(50, { delay: 1500, timeout: 10_000 });
    const single = busy.call("slow", [1500, "one"], { timeout: 10_000 });
    // The client writes its calls in order on one connection, and the proxy reads them in
    // order: once a later call is answered, all of the slow ones are in flight.
    assert.equal((await busy.call("echo", ["probe"])).result, "slow:probe");
    const signalled = Date.now();
    proxy.kill("SIGTERM");
    await proxy.waitForOutput(/"?SIGTERM"?: draining for up to 10000 ms/, 5000);

    // The listener stops accepting at once (the line is logged just before it closes).
    let closed = await refused(address);
    for (let i = 0; i < 20 && !closed; i++) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      closed = await refused(address);
    }
    assert.ok(closed, "a new connection after the drain began is refused");
    // A new call on a connection opened before the drain is turned away as overflow
    // (SERVER_THREADPOOL_BUSY), not left waiting; the client may go elsewhere.
    const late = await idle.call("echo", ["late"]);
    assert.equal(late.ok, false, JSON.stringify(late));
    assert.match(late.error!.message, /\(status 503\)/);
    assert.match(late.error!.message, /draining/);

    // Every call in flight when the signal came is answered by the server.
    const reply = await inFlight;
    assert.equal(reply.matched, 50, JSON.stringify(reply));
    assert.equal(reply.errors, 0, JSON.stringify(reply));
    assert.equal((await single).result, "slow:one");

    const status = await proxy.status;
    assert.equal(status.code, 0, proxy.output());
    // It exited once the calls were answered, not at the drain timeout.
    assert.ok(Date.now() - signalled < 9000, `exited ${Date.now() - signalled} ms after SIGTERM`);
    assert.doesNotMatch(proxy.output(), /drain timeout/);
  } finally {
    await Promise.all([busy.close(), idle.close()]);
    await proxy.stop();
    await server.stop();
  }
});

Deno.test("Bolt drain timeout: calls still in flight are cut with one warning, exit 0", async () => {
  const server = await startBoltServer("slow");
  const proxy = await startProxy(await writeConfig(config(server.address, "300ms")), {
    flags: ["--allow-net", "--allow-read"],
  });
  const address = proxy.listeners.get("bolt_in")!;
  const client = startBoltClient(address);
  try {
    assert.equal((await client.call("echo", ["warm"])).result, "slow:warm");
    const cut = client.many(5, { delay: 5000, timeout: 10_000 });
    assert.equal((await client.call("echo", ["probe"])).result, "slow:probe");
    proxy.kill("SIGTERM");
    assert.equal((await proxy.status).code, 0);
    assert.match(proxy.output(), /Listener bolt_in: drain timeout; 5 request\(s\) cut/);
    // The client learns at once that the connection is gone: no call waits for its timeout.
    const started = Date.now();
    const reply = await cut;
    assert.equal(reply.errors, 5, JSON.stringify(reply));
    assert.doesNotMatch(reply.firstError ?? "", /RpcResponseTimeoutError/);
    assert.ok(Date.now() - started < 4000, `${Date.now() - started} ms`);
  } finally {
    await client.close();
    await proxy.stop();
    await server.stop();
  }
});
