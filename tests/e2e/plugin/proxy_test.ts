/**
 * The plugin framework under the real proxy (`main.ts` in its own process): a plugin
 * killed under a request loop, and the proxy killed under its plugins.
 */

import assert from "node:assert/strict";
import { startProxy, writeConfig } from "../../helpers/proxy_process.ts";
import { isAlive, nodeCommand, waitFor } from "../../unit/plugin/helpers.ts";

async function config(): Promise<string> {
  const [node, bundle] = await nodeCommand("echo_plugin.ts");
  const listener = (name: string, failureMode: string) => `
      - name: ${name}
        address: 127.0.0.1:0
        filter_chains: [{ filters: [{ type: proxy, config: { router_config_name: r } }] }]
        stream_filters:
          - type: plugin
            config: { plugin: echo, timeout: 2s, failure_mode: ${failureMode}, response: true }`;
  return await writeConfig(`servers:
  - default_log_level: INFO
    routers:
      - router_config_name: r
        virtual_hosts:
          - name: v
            domains: ["*"]
            routers: [{ match: { prefix: / }, direct_response: { status: 200, body: ok } }]
    listeners:${listener("closed", "closed")}${listener("open", "open")}
plugins:
  echo: { command: [${JSON.stringify(node)}, ${JSON.stringify(bundle)}], network: unix }
`);
}

/** One request; the echo plugin puts its pid on the response (the before_send call). */
async function get(address: string): Promise<{ status: number; pid: string | null }> {
  const res = await fetch(`http://${address}/`);
  await res.body?.cancel();
  return { status: res.status, pid: res.headers.get("x-pid") };
}

Deno.test("a plugin killed under a request loop: 503 when closed, 200 when open, restarted, the proxy unharmed", async () => {
  const proxy = await startProxy(await config(), { flags: ["--allow-all"] });
  try {
    const closed = proxy.listeners.get("closed")!;
    const open = proxy.listeners.get("open")!;
    const first = await get(closed);
    assert.equal(first.status, 200);
    const pid = Number(first.pid);
    assert.ok(pid > 0 && isAlive(pid));

    Deno.kill(pid, "SIGKILL");
    const killedAt = Date.now();
    const closedStatuses = new Set<number>();
    let back = 0;
    for (let i = 0; i < 1000 && Date.now() - killedAt < 10_000; i++) {
      const [c, o] = await Promise.all([get(closed), get(open)]);
      closedStatuses.add(c.status);
      assert.equal(o.status, 200, "failure_mode open lets requests through");
      if (c.status === 200 && c.pid !== null && c.pid !== String(pid)) {
        back = Date.now() - killedAt;
        break;
      }
      assert.ok(c.status === 503 || c.status === 200, `closed answered ${c.status}`);
      await new Promise((r) => setTimeout(r, 10));
    }
    assert.ok(closedStatuses.has(503), "requests in the gap were answered 503");
    assert.ok(back > 0, "the plugin came back");
    // 100 ms backoff plus one Node.js start; generous for a loaded test machine.
    assert.ok(back < 3000, `back after ${back} ms`);
    assert.ok(isAlive(proxy.pid), "the proxy is still up");
    assert.match(proxy.output(), /Plugin "echo" \(pid \d+\) was killed by SIGKILL/);
  } finally {
    const status = await proxy.stop();
    assert.equal(status.code, 0, proxy.output());
  }
});

Deno.test("the proxy killed with SIGKILL: its SDK plugin is gone within 2 s", async () => {
  const proxy = await startProxy(await config(), { flags: ["--allow-all"] });
  try {
    const pid = Number((await get(proxy.listeners.get("closed")!)).pid);
    assert.ok(pid > 0 && isAlive(pid));
    proxy.kill("SIGKILL");
    const killedAt = Date.now();
    await proxy.status;
    await waitFor(() => !isAlive(pid), 5000, "the plugin to exit");
    const gone = Date.now() - killedAt;
    assert.ok(gone < 2000, `the plugin exited ${gone} ms after the proxy`);
  } finally {
    await proxy.stop();
  }
});
