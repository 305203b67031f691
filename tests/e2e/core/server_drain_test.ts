/**
 * The HTTP/1.1 server under SIGTERM, a taken port, and 2,000 idle keep-alive
 * connections, against the real proxy.
 */

import assert from "node:assert/strict";
import { freePort, startProxy, startUpstream, writeConfig } from "../../helpers/proxy_process.ts";
import { mosaicYaml } from "../fixtures/mosaic_yaml.ts";
import { rawExchange, statusLines } from "../../attack/client_socket.ts";
import { startRecordingUpstream } from "../../attack/client_upstream.ts";

const H = "Host: a\r\n";
const MAIN = new URL("../../../main.ts", import.meta.url).pathname;

/** An upstream that answers after `ms`; `reached` settles when a request got there. */
function slowUpstream(ms: number) {
  const reached = Promise.withResolvers<void>();
  const upstream = startUpstream(async () => {
    reached.resolve();
    await new Promise((resolve) => setTimeout(resolve, ms));
    return new Response("slow");
  });
  return Object.assign(upstream, { reached: reached.promise });
}

Deno.test("drain on SIGTERM: in-flight requests are answered with Connection: close, idle connections close, exit 0", async () => {
  const upstream = slowUpstream(1500);
  const file = await writeConfig(mosaicYaml({
    clusters: [{ name: "up", hosts: [upstream.address] }],
    topLevel: "drain_timeout: 10s",
  }));
  const proxy = await startProxy(file);
  try {
    const address = proxy.listeners.get("l")!;
    const [hostname, port] = address.split(":");
    // An idle keep-alive connection, and an in-flight request.
    const idle = await Deno.connect({ hostname, port: Number(port) });
    const inFlight = rawExchange(address, `GET /slow HTTP/1.1\r\n${H}\r\n`, { readMs: 8000 });
    await upstream.reached;
    proxy.kill("SIGTERM");
    const idleClosed = await idle.read(new Uint8Array(16)).catch(() => null);
    idle.close();
    assert.equal(idleClosed, null, "the idle connection was closed at once");
    const answered = await inFlight;
    assert.deepEqual(statusLines(answered.text), ["HTTP/1.1 200 OK"]);
    assert.match(answered.text, /\r\nconnection: close\r\n/);
    assert.ok(answered.text.endsWith("slow"));
    assert.equal((await proxy.status).code, 0);
  } finally {
    await proxy.stop();
    await upstream.close();
  }
});

Deno.test("drain timeout: what is left is cut, with one warning counting the cut requests", async () => {
  const upstream = slowUpstream(6000);
  const file = await writeConfig(mosaicYaml({
    clusters: [{ name: "up", hosts: [upstream.address] }],
    topLevel: "drain_timeout: 300ms",
  }));
  const proxy = await startProxy(file);
  try {
    const address = proxy.listeners.get("l")!;
    const cut = rawExchange(address, `GET /slow HTTP/1.1\r\n${H}\r\n`, { readMs: 8000 });
    await upstream.reached;
    proxy.kill("SIGTERM");
    const result = await cut;
    assert.ok(result.closed);
    assert.deepEqual(statusLines(result.text), []);
    assert.equal((await proxy.status).code, 0);
    assert.match(
      proxy.output(),
      /Listener "?l"?: drain timeout of 300 ms passed; cut 1 request\(s\) in flight/,
    );
  } finally {
    await proxy.stop();
    await upstream.close();
  }
});

Deno.test("a taken port is named by the config's file, line, path and listener", async () => {
  const taken = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (taken.addr as Deno.NetAddr).port;
  try {
    const yaml = mosaicYaml({ clusters: [{ name: "up", hosts: [`127.0.0.1:${freePort()}`] }] })
      .replace("127.0.0.1:0", `127.0.0.1:${port}`);
    const file = await writeConfig(yaml);
    const line = yaml.split("\n").findIndex((l) => l.includes("- name: l")) + 1;
    const run = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--allow-net", "--allow-read", "--allow-env", MAIN, file],
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(run.code, 1);
    const text = new TextDecoder().decode(run.stderr);
    assert.ok(
      text.includes(
        `${file}:${line}: servers[0].listeners[0] (listener "l"): ` +
          `cannot listen on 127.0.0.1:${port}: address already in use`,
      ),
      text,
    );
  } finally {
    taken.close();
  }
});

Deno.test("2,000 idle keep-alive connections cost one file descriptor each", async () => {
  const upstream = startRecordingUpstream();
  const file = await writeConfig(
    mosaicYaml({ clusters: [{ name: "up", hosts: [upstream.address] }] }),
  );
  const proxy = await startProxy(file);
  const conns: Deno.Conn[] = [];
  try {
    const address = proxy.listeners.get("l")!;
    const [hostname, port] = address.split(":");
    const fds = async () => {
      let n = 0;
      for await (const _ of Deno.readDir(`/proc/${proxy.pid}/fd`)) n++;
      return n;
    };
    const rss = async () =>
      Number(/VmRSS:\s+(\d+)/.exec(await Deno.readTextFile(`/proc/${proxy.pid}/status`))![1]);
    // One request first, so the pool's upstream connection and lazy state exist.
    await rawExchange(address, `GET / HTTP/1.1\r\n${H}Connection: close\r\n\r\n`);
    const before = await fds();
    const rssBefore = await rss();
    const request = new TextEncoder().encode(`GET /k HTTP/1.1\r\n${H}\r\n`);
    const buffer = new Uint8Array(1024);
    for (let batch = 0; batch < 20; batch++) {
      const opened = await Promise.all(
        Array.from({ length: 100 }, () => Deno.connect({ hostname, port: Number(port) })),
      );
      conns.push(...opened);
      await Promise.all(opened.map(async (conn) => {
        await conn.write(request);
        await conn.read(buffer);
      }));
    }
    const after = await fds();
    const rssAfter = await rss();
    console.log(
      `2,000 idle connections: +${after - before} fds, RSS ${rssBefore} -> ${rssAfter} KiB ` +
        `(${((rssAfter - rssBefore) / 2000).toFixed(1)} KiB each)`,
    );
    // Besides the 2,000: the upstream pool's connections, at most one per request of a
    // batch of 100 that ran at once.
    assert.ok(after - before <= 2000 + 100 + 10, `+${after - before} fds for 2,000 connections`);
    assert.ok(after - before >= 2000, "the connections are still open");
  } finally {
    for (const conn of conns) conn.close();
    await proxy.stop();
    upstream.close();
  }
});

Deno.test("tcp_proxy drain: an open connection is cut at drain_timeout, with a warning, and exit 0", async () => {
  // An upstream that holds every connection open and says nothing.
  const silent = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const held: Deno.Conn[] = [];
  const serving = (async () => {
    for await (const conn of silent) held.push(conn);
  })();
  const file = await writeConfig(`servers:
  - listeners:
      - name: tcp
        address: 127.0.0.1:0
        filter_chains:
          - filters:
              - type: tcp_proxy
                config: { cluster: silent }
drain_timeout: 300ms
cluster_manager:
  clusters:
    - name: silent
      type: SIMPLE
      lb_type: LB_ROUNDROBIN
      hosts: [{ address: "127.0.0.1:${(silent.addr as Deno.NetAddr).port}" }]
`);
  const proxy = await startProxy(file);
  try {
    const [hostname, port] = proxy.listeners.get("tcp")!.split(":");
    const conn = await Deno.connect({ hostname, port: Number(port) });
    await conn.write(new TextEncoder().encode("hello"));
    for (let i = 0; i < 50 && held.length === 0; i++) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    proxy.kill("SIGTERM");
    assert.equal((await proxy.status).code, 0);
    assert.match(
      proxy.output(),
      /\[WRN\].*Listener "tcp": drain timeout of 300 ms passed; cut 1 TCP connection\(s\) still open/,
    );
    assert.equal(await conn.read(new Uint8Array(16)).catch(() => null), null);
    conn.close();
  } finally {
    await proxy.stop();
    for (const conn of held) conn.close();
    silent.close();
    await serving.catch(() => {});
  }
});
