/**
 * The request side through the real proxy process, with a raw TCP client and a raw
 * upstream that records every request head it receives: path traversal against a deny
 * route, Host validation, absolute-form, hop-by-hop against a filter-added header and
 * forwarded-header trust. Plain listeners may run on Deno.serve or Mosaic's own server;
 * either may refuse a hostile request itself, so the rule is "400, or the deny route,
 * never the upstream".
 */

import assert from "node:assert/strict";
import { startProxy, writeConfig } from "../../helpers/proxy_process.ts";
import { AUTHORITY, rawRequest, TRAVERSALS } from "../../attack/request_corpus.ts";

/** A raw HTTP/1.1 upstream: records each request head, answers 200 keep-alive. */
function startRawUpstream() {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const heads: string[] = [];
  const conns = new Set<Deno.Conn>();
  (async () => {
    for await (const conn of listener) {
      conns.add(conn);
      (async () => {
        const buffer = new Uint8Array(65536);
        let pending = "";
        try {
          for (;;) {
            const n = await conn.read(buffer);
            if (n === null) break;
            pending += new TextDecoder().decode(buffer.subarray(0, n));
            let end;
            while ((end = pending.indexOf("\r\n\r\n")) >= 0) {
              heads.push(pending.slice(0, end));
              pending = pending.slice(end + 4);
              await conn.write(
                new TextEncoder().encode("HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nupstream\n"),
              );
            }
          }
        } catch { /* closed */ }
        conns.delete(conn);
        try {
          conn.close();
        } catch { /* closed */ }
      })();
    }
  })().catch(() => {});
  return {
    address: `127.0.0.1:${(listener.addr as Deno.NetAddr).port}`,
    heads,
    close() {
      listener.close();
      for (const conn of conns) conn.close();
    },
  };
}

/** Sends raw bytes, reads the whole reply (the request says Connection: close). */
async function exchange(address: string, text: string): Promise<string> {
  const [hostname, port] = address.split(":");
  const conn = await Deno.connect({ hostname, port: Number(port) });
  await conn.write(new TextEncoder().encode(text));
  const timer = setTimeout(() => conn.close(), 5000);
  let reply = "";
  try {
    const buffer = new Uint8Array(65536);
    for (;;) {
      const n = await conn.read(buffer);
      if (n === null) break;
      reply += new TextDecoder().decode(buffer.subarray(0, n));
    }
  } catch {
    /* closed by the timer */
  } finally {
    clearTimeout(timer);
    try {
      conn.close();
    } catch { /* closed */ }
  }
  return reply;
}

function statusOf(reply: string): number {
  return Number(/^HTTP\/1\.[01] (\d{3})/.exec(reply)?.[1] ?? 0);
}

function headerOf(head: string, name: string): string | undefined {
  const line = head.split("\r\n").find((l) => l.toLowerCase().startsWith(`${name}:`));
  return line?.slice(name.length + 1).trim();
}

const TIER_FILTER = `export function createStreamFilterFactory() {
  return {
    createFilterChain(chain) {
      chain.addReceiver({
        onReceive(s) {
          s.headers.set("x-user-tier", "gold");
          s.headers.set("x-authenticated-user", "alice");
          return "continue";
        },
      }, "before_route");
    },
  };
}
`;

async function withProxy(
  extraProxyConfig: string,
  run: (proxyAddress: string, heads: string[]) => Promise<void>,
) {
  const upstream = startRawUpstream();
  const dir = await Deno.makeTempDir({ prefix: "mosaic-e2e-security-" });
  await Deno.writeTextFile(`${dir}/tier.js`, TIER_FILTER);
  const config = await writeConfig(
    `servers:
  - default_log_level: INFO
    routers:
      - router_config_name: r
        virtual_hosts:
          - name: b
            domains: ["b.example"]
            routers:
              - match: { prefix: / }
                route: { cluster_name: up }
                request_headers_to_add: [{ header: { key: x-vhost, value: b } }]
          - name: all
            domains: ["*"]
            routers:
              - match: { prefix: /admin }
                direct_response: { status: 403, body: "denied" }
              - match: { prefix: / }
                route: { cluster_name: up }
    listeners:
      - name: l
        address: 127.0.0.1:0
        filter_chains:
          - filters:
              - type: proxy
                config: { router_config_name: r${extraProxyConfig} }
        stream_filters:
          - type: module
            module: ./tier.js
cluster_manager:
  clusters:
    - name: up
      type: SIMPLE
      lb_type: LB_ROUNDROBIN
      hosts: [{ address: "${upstream.address}" }]
`,
    dir,
  );
  const proxy = await startProxy(config);
  try {
    await run(proxy.listeners.get("l")!, upstream.heads);
  } finally {
    await proxy.stop();
    upstream.close();
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("e2e: traversals hit the deny route or 400; bad Host 400; absolute-form by its authority", async () => {
  await withProxy("", async (address, heads) => {
    for (const row of [...TRAVERSALS, ...AUTHORITY]) {
      heads.length = 0;
      const reply = await exchange(address, rawRequest(row));
      const status = statusOf(reply);
      assert.ok(row.statuses.includes(status), `${row.name}: got ${JSON.stringify(reply)}`);
      if (row.upstream === null) {
        assert.deepEqual(heads.map((h) => h.split("\r\n")[0]), [], row.name);
      } else {
        assert.equal(heads.length, 1, row.name);
        assert.equal(heads[0].split("\r\n")[0], row.upstream, row.name);
        assert.equal(headerOf(heads[0], "host"), row.upstreamHost, row.name);
      }
    }
  });
});

Deno.test("e2e: Connection cannot strip a filter's headers; forwarded headers are the proxy's", async () => {
  await withProxy("", async (address, heads) => {
    const reply = await exchange(
      address,
      "GET /public HTTP/1.1\r\nHost: a\r\n" +
        "Connection: close, x-user-tier, x-authenticated-user, x-forwarded-for, x-drop\r\n" +
        "X-Drop: 1\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Host: evil.example\r\n" +
        "X-Request-Id: chosen-by-client\r\n\r\n",
    );
    assert.equal(statusOf(reply), 200, reply);
    const head = heads.at(-1)!;
    assert.equal(headerOf(head, "x-user-tier"), "gold");
    assert.equal(headerOf(head, "x-authenticated-user"), "alice");
    assert.equal(headerOf(head, "x-drop"), undefined);
    assert.equal(headerOf(head, "x-forwarded-for"), "127.0.0.1");
    assert.equal(headerOf(head, "x-forwarded-proto"), "http");
    assert.equal(headerOf(head, "x-forwarded-host"), "a");
    assert.notEqual(headerOf(head, "x-request-id"), "chosen-by-client");
    assert.match(headerOf(head, "x-request-id") ?? "", /^[0-9a-f-]{36}$/);
  });
});

Deno.test("e2e: a peer in trusted_proxies keeps its X-Forwarded-Proto/Host and x-request-id", async () => {
  await withProxy(', trusted_proxies: ["127.0.0.0/8"]', async (address, heads) => {
    const reply = await exchange(
      address,
      "GET /public HTTP/1.1\r\nHost: a\r\nConnection: close\r\nX-Forwarded-For: 203.0.113.9\r\n" +
        "X-Forwarded-Proto: https\r\nX-Forwarded-Host: shop.example\r\n" +
        "X-Request-Id: from-the-edge\r\n\r\n",
    );
    assert.equal(statusOf(reply), 200, reply);
    const head = heads.at(-1)!;
    assert.equal(headerOf(head, "x-forwarded-for"), "203.0.113.9, 127.0.0.1");
    assert.equal(headerOf(head, "x-forwarded-proto"), "https");
    assert.equal(headerOf(head, "x-forwarded-host"), "shop.example");
    assert.equal(headerOf(head, "x-request-id"), "from-the-edge");
  });
});
