/**
 * SOFARPC (Bolt) through the real proxy, with real peers only: npm `sofa-rpc-node`'s
 * RpcServer and RpcClient, and `sofa-bolt-node`'s encoder for heartbeats and oneway
 * requests, all under Node.js.
 */

import assert from "node:assert/strict";
import { freePort, startProxy, writeConfig } from "../../helpers/proxy_process.ts";
import { boltRaw, startBoltClient, startBoltServer } from "./peers.ts";

const FIXTURES = new URL("./fixtures/", import.meta.url).pathname;
const ECHO = "com.example.EchoService:1.0";

function proxyListener(name: string, address: string, router: string, extra = ""): string {
  return `
      - name: ${name}
        address: ${address}
        filter_chains:
          - filters:
              - type: proxy
                config: { downstream_protocol: bolt, router_config_name: ${router}${extra} }`;
}

Deno.test("SOFARPC calls through Mosaic get the answers, errors and status a direct call gets", async (t) => {
  const s1 = await startBoltServer("s1");
  const s2 = await startBoltServer("s2");
  const killPort = freePort();
  let s3 = await startBoltServer("s3", killPort);
  const tierPort = freePort();
  const config = await writeConfig(`
servers:
  - routers:
      - router_config_name: by_service
        virtual_hosts:
          - name: rpc
            domains: ["*"]
            routers:
              - match: { headers: [{ name: service, value: "${ECHO}" }] }
                route: { cluster_name: echo }
              - match: { headers: [{ name: service, value: "com\\\\.example\\\\.Other.*", regex: true }] }
                route: { cluster_name: other }
      - router_config_name: slow
        virtual_hosts:
          - name: rpc
            domains: ["*"]
            routers:
              - match: { headers: [{ name: service, value: ".*" }] }
                route: { cluster_name: echo, timeout: 300ms }
      - router_config_name: any_echo
        virtual_hosts:
          - name: rpc
            domains: ["*"]
            routers:
              - match: { headers: [{ name: service, value: ".*" }] }
                route: { cluster_name: echo }
      - router_config_name: any_url
        virtual_hosts:
          - name: rpc
            domains: ["*"]
            routers:
              - match: { headers: [{ name: service, value: ".*" }] }
                route: { cluster_name: echo_by_url }
      - router_config_name: to_kill
        virtual_hosts:
          - name: rpc
            domains: ["*"]
            routers:
              - match: { headers: [{ name: service, value: ".*" }] }
                route: { cluster_name: killed }
      - router_config_name: tier_client
        virtual_hosts:
          - name: rpc
            domains: ["*"]
            routers:
              - match: { headers: [{ name: service, value: ".*" }] }
                route: { cluster_name: tier_server }
    listeners:${
    proxyListener(
      "bolt_in",
      "127.0.0.1:0",
      "by_service",
      ", extend_config: { max_frame_size: 65536 }",
    )
  }
        stream_filters:
          - type: module
            module: ${FIXTURES}deny_service.ts
            config: { deny: "com.example.Blocked:1.0" }${
    proxyListener("bolt_slow", "127.0.0.1:0", "slow")
  }${proxyListener("bolt_demo", "127.0.0.1:0", "any_echo")}
        stream_filters:
          - type: demo
            config: { service: "${ECHO}" }
      - name: bolt_url
        address: 127.0.0.1:0
        filter_chains:
          - filters:
              - type: proxy
                config:
                  downstream_protocol: X
                  upstream_protocol: X
                  router_config_name: any_url
                  extend_config: { sub_protocol: bolt_by_url, module: ${FIXTURES}codec.ts }${
    proxyListener("bolt_kill", "127.0.0.1:0", "to_kill")
  }${proxyListener("tier_client", "127.0.0.1:0", "tier_client")}${
    proxyListener("tier_server", `127.0.0.1:${tierPort}`, "any_echo")
  }
cluster_manager:
  clusters:
    - { name: echo, type: SIMPLE, lb_type: LB_RANDOM, hosts: [{ address: "${s1.address}" }] }
    - { name: echo_by_url, type: SIMPLE, lb_type: LB_RANDOM, hosts: [{ address: "${s1.address}" }] }
    - { name: other, type: SIMPLE, lb_type: LB_RANDOM, hosts: [{ address: "${s2.address}" }] }
    - { name: killed, type: SIMPLE, lb_type: LB_RANDOM, hosts: [{ address: "127.0.0.1:${killPort}" }] }
    - name: tier_server
      type: SIMPLE
      lb_type: LB_RANDOM
      hosts: [{ address: "127.0.0.1:${tierPort}" }]
`);
  const proxy = await startProxy(config, { flags: ["--allow-net", "--allow-read"] });
  const at = (name: string) => proxy.listeners.get(name)!;
  const client = startBoltClient(at("bolt_in"));
  try {
    await t.step("a plain call is answered by the server", async () => {
      assert.deepEqual(await client.call("echo", ["hi"]), { id: 1, ok: true, result: "s1:hi" });
    });

    await t.step("a server-side exception reaches the client as the server threw it", async () => {
      const direct = startBoltClient(s1.address);
      try {
        const viaProxy = await client.call("fail", ["boom"]);
        const straight = await direct.call("fail", ["boom"]);
        assert.equal(viaProxy.ok, false);
        assert.deepEqual(viaProxy.error, straight.error);
        assert.match(viaProxy.error!.message, /Error: boom/);
      } finally {
        await direct.close();
      }
    });

    await t.step("1,000 concurrent calls are multiplexed, each answer to its caller", async () => {
      const reply = await client.many(1000);
      assert.equal(reply.matched, 1000, JSON.stringify(reply));
      assert.equal(reply.mismatched, 0);
      assert.equal(reply.errors, 0);
    });

    await t.step("routes by the service header to two clusters", async () => {
      const other = await client.call("who", [], { service: "com.example.OtherService" });
      assert.deepEqual(other.result, "s2:other");
    });

    await t.step("a filter loaded by URL denies by a Bolt header", async () => {
      const denied = await client.call("echo", ["x"], { service: "com.example.Blocked" });
      assert.equal(denied.ok, false);
      assert.match(denied.error!.message, /service com\.example\.Blocked:1\.0 is denied/);
      assert.match(denied.error!.message, /status 403/);
    });

    await t.step("a built-in filter denies by a Bolt header", async () => {
      const demo = startBoltClient(at("bolt_demo"));
      try {
        assert.equal((await demo.call("echo", ["ok"])).result, "s1:ok");
        const denied = await demo.call("who", [], { service: "com.example.OtherService" });
        assert.equal(denied.ok, false);
        assert.match(denied.error!.message, /status 403/);
      } finally {
        await demo.close();
      }
    });

    await t.step("no matching route is answered with Bolt's no-processor error", async () => {
      const none = await client.call("x", [], { service: "com.example.Nowhere" });
      assert.equal(none.ok, false);
      assert.match(none.error!.message, /no route \(status 404\)/);
    });

    await t.step("the route timeout answers with Bolt's timeout status", async () => {
      const slow = startBoltClient(at("bolt_slow"));
      try {
        const reply = await slow.call("slow", [3000, "late"], { timeout: 10_000 });
        assert.equal(reply.ok, false);
        assert.match(reply.error!.message, /upstream request timeout \(status 504\)/);
        // The client's own timeout, shorter than the server's answer, still works.
        const own = await slow.call("slow", [1000, "late"], { timeout: 100 });
        assert.equal(own.error?.name, "RpcResponseTimeoutError");
        assert.equal((await slow.call("echo", ["after"])).result, "s1:after");
      } finally {
        await slow.close();
      }
    });

    await t.step("heartbeats are answered, and oneway requests reach the server", async () => {
      assert.equal(await boltRaw(at("bolt_in"), "heartbeat"), "heartbeat_ack 7");
      assert.equal(await boltRaw(at("bolt_in"), "oneway", "note-1"), "sent");
      let notified: unknown = "[]";
      for (let i = 0; i < 50 && !String(notified).includes("note-1"); i++) {
        notified = (await client.call("notified")).result;
        if (!String(notified).includes("note-1")) await new Promise((r) => setTimeout(r, 100));
      }
      assert.deepEqual(JSON.parse(String(notified)), ["note-1"]);
    });

    await t.step("a codec loaded by URL serves the same calls", async () => {
      const viaUrl = startBoltClient(at("bolt_url"));
      try {
        assert.equal((await viaUrl.call("echo", ["url"])).result, "s1:url");
      } finally {
        await viaUrl.close();
      }
    });

    await t.step("two tiers: client → Mosaic → Mosaic → server", async () => {
      const tier = startBoltClient(at("tier_client"));
      try {
        assert.equal((await tier.call("echo", ["two-tier"])).result, "s1:two-tier");
        const reply = await tier.many(200);
        assert.equal(reply.matched, 200, JSON.stringify(reply));
        const failure = await tier.call("fail", ["deep"]);
        assert.match(failure.error!.message, /Error: deep/);
      } finally {
        await tier.close();
      }
    });

    await t.step(
      "malformed and oversized frames close the connection with one log line",
      async () => {
        const [hostname, port] = at("bolt_in").split(":");
        const cases: [Uint8Array, RegExp][] = [
          [new TextEncoder().encode("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), /not a Bolt v1 frame/],
          [oversizedHead(100_000_000), /frame of \d+ bytes is over the limit of 65536 bytes/],
          [badHeaderMap(), /Bolt header map overruns its length/],
        ];
        for (const [bytes, logged] of cases) {
          const conn = await Deno.connect({ hostname, port: Number(port) });
          await conn.write(bytes);
          const buffer = new Uint8Array(1024);
          let closed = false;
          for (let i = 0; i < 10 && !closed; i++) {
            const n = await conn.read(buffer).catch(() => null);
            closed = n === null;
          }
          conn.close();
          assert.ok(closed, "the proxy closes the connection");
          await proxy.waitForOutput(logged, 5000);
        }
        assert.match(
          proxy.output(),
          /Listener bolt_in: closing connection from 127\.0\.0\.1:\d+: /,
        );
        assert.equal((await client.call("echo", ["still"])).result, "s1:still");
      },
    );

    await t.step("a server killed under load: every call answered, then recovery", async () => {
      const loaded = startBoltClient(at("bolt_kill"));
      try {
        assert.equal((await loaded.call("echo", ["before"])).result, "s3:before");
        const inFlight = loaded.many(300, { delay: 2000, timeout: 30_000 });
        await new Promise((r) => setTimeout(r, 500));
        await s3.kill();
        const reply = await inFlight;
        assert.equal((reply.matched ?? 0) + (reply.errors ?? 0), 300);
        assert.ok((reply.errors ?? 0) > 0, JSON.stringify(reply));
        assert.doesNotMatch(reply.firstError ?? "", /RpcResponseTimeoutError/);
        s3 = await startBoltServer("s3", killPort);
        let after = await loaded.call("echo", ["after"]);
        for (let i = 0; i < 20 && !after.ok; i++) {
          await new Promise((r) => setTimeout(r, 200));
          after = await loaded.call("echo", ["after"]);
        }
        assert.equal(after.result, "s3:after");
      } finally {
        await loaded.close();
      }
    });
  } finally {
    await client.close();
    await proxy.stop();
    await Promise.all([s1.stop(), s2.stop(), s3.stop()]);
  }
});

/** A Bolt request head claiming `contentLength` bytes of content. */
function oversizedHead(contentLength: number): Uint8Array {
  const head = new Uint8Array(22);
  const view = new DataView(head.buffer);
  head[0] = 1; // proto
  head[1] = 1; // request
  view.setUint16(2, 1); // cmdcode request
  head[4] = 1;
  view.setUint32(5, 1);
  head[9] = 1;
  view.setInt32(10, 3000);
  view.setInt32(18, contentLength);
  return head;
}

/** A whole Bolt request whose header map claims a key longer than the map. */
function badHeaderMap(): Uint8Array {
  const frame = new Uint8Array(22 + 8);
  const view = new DataView(frame.buffer);
  frame[0] = 1;
  frame[1] = 1;
  view.setUint16(2, 1);
  frame[4] = 1;
  view.setUint32(5, 2);
  frame[9] = 1;
  view.setUint16(16, 8); // headerLen
  view.setInt32(22, 1000); // key length past the map
  return frame;
}
