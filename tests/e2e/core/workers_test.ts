import assert from "node:assert/strict";
import {
  freePort,
  type ProxyProcess,
  startProxy,
  startUpstream,
  type Upstream,
  writeConfig,
} from "../../helpers/proxy_process.ts";

const MAIN = new URL("../../../main.ts", import.meta.url).pathname;
const CRASH_FILTER = new URL("../fixtures/crash_worker.ts", import.meta.url).pathname;
const FLAGS = ["--allow-net", "--allow-read", "--allow-write", "--allow-env"];

interface Setup {
  dir: string;
  port: number;
  tcpPort: number;
  adminPort: number;
  upstream: Upstream;
}

/** Two workers, an HTTP listener logging `<tag> w%worker%`, and a tcp_proxy listener. */
function workersYaml(setup: Setup, tag: string, extraFilter = ""): string {
  return `workers: 2
drain_timeout: 5s
servers:
  - default_log_level: INFO
    routers:
      - router_config_name: r
        virtual_hosts:
          - name: all
            domains: ["*"]
            routers:
              - match: { prefix: / }
                route: { cluster_name: up }
    listeners:
      - name: web
        address: 127.0.0.1:${setup.port}
        filter_chains:
          - filters:
              - type: proxy
                config: { router_config_name: r }
        stream_filters:
          - type: module
            module: ${CRASH_FILTER}
${extraFilter}
        access_logs:
          - log_path: ${setup.dir}/access.log
            log_format: "${tag} w%worker% %response_code%"
      - name: tcp
        address: 127.0.0.1:${setup.tcpPort}
        filter_chains:
          - filters:
              - type: tcp_proxy
                config: { cluster: up }
cluster_manager:
  clusters:
    - name: up
      type: SIMPLE
      lb_type: LB_ROUNDROBIN
      hosts: [{ address: "${setup.upstream.address}" }]
admin:
  address: 127.0.0.1:${setup.adminPort}
`;
}

async function setUp(): Promise<Setup> {
  const upstream = startUpstream(async (request) => {
    const wait = Number(new URL(request.url).searchParams.get("wait") ?? 0);
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    return new Response("ok");
  });
  return {
    dir: await Deno.makeTempDir({ prefix: "mosaic-workers-" }),
    port: freePort(),
    tcpPort: freePort(),
    adminPort: freePort(),
    upstream,
  };
}

/** One request on a connection of its own; true when it got 200 "ok". */
async function requestOnNewConnection(port: number, path = "/"): Promise<boolean> {
  const client = Deno.createHttpClient({ poolMaxIdlePerHost: 0 });
  try {
    const response = await fetch(`http://127.0.0.1:${port}${path}`, {
      client,
      signal: AbortSignal.timeout(5000),
    });
    const body = await response.text();
    return response.status === 200 && body === "ok";
  } catch {
    return false;
  } finally {
    client.close();
  }
}

/** Access log lines as `[tag, worker]`. */
async function accessLines(dir: string): Promise<string[][]> {
  let text = "";
  try {
    text = await Deno.readTextFile(`${dir}/access.log`);
  } catch {
    return [];
  }
  return text.split("\n").filter((line) => line !== "").map((line) => line.split(" "));
}

/** Waits (bounded) until the access log has lines of `tag` from both workers. */
async function untilBothWorkers(setup: Setup, tag: string, maxRequests = 400): Promise<void> {
  for (let i = 0; i < maxRequests; i++) {
    assert.ok(await requestOnNewConnection(setup.port), `request ${i} failed`);
    if (i % 10 === 9) {
      // Access log lines are flushed once per macrotask; give them a moment.
      await new Promise((resolve) => setTimeout(resolve, 20));
      const seen = new Set(
        (await accessLines(setup.dir)).filter(([t]) => t === tag).map(([, w]) => w),
      );
      if (seen.has("w0") && seen.has("w1")) return;
    }
  }
  assert.fail(`${maxRequests} new connections did not reach both workers with ${tag}`);
}

/** Runs requests on new connections until `done` resolves (bounded); counts failures. */
async function requestLoop(
  port: number,
  done: Promise<unknown>,
  options: { max?: number; timeoutMs?: number } = {},
): Promise<{ sent: number; failed: number }> {
  let finished = false;
  done.then(() => finished = true, () => finished = true);
  const deadline = Date.now() + (options.timeoutMs ?? 30_000);
  const max = options.max ?? 5000;
  let sent = 0;
  let failed = 0;
  const runner = async () => {
    while (!finished && sent < max && Date.now() < deadline) {
      sent++;
      if (!await requestOnNewConnection(port)) failed++;
    }
  };
  await Promise.all([runner(), runner(), runner(), runner()]);
  return { sent, failed };
}

async function tearDown(setup: Setup, proxy: ProxyProcess | undefined): Promise<void> {
  await proxy?.stop();
  await setup.upstream.close();
  await Deno.remove(setup.dir, { recursive: true }).catch(() => {});
}

function count(text: string, pattern: RegExp): number {
  return [...text.matchAll(new RegExp(pattern, "g"))].length;
}

/** Waits (at most `timeoutMs`) until `pattern` appears `n` times in the proxy's output. */
async function waitForCount(proxy: ProxyProcess, pattern: RegExp, n: number, timeoutMs = 15_000) {
  const deadline = Date.now() + timeoutMs;
  while (count(proxy.output(), pattern) < n) {
    if (Date.now() > deadline) assert.fail(`${pattern} not seen ${n} times in:\n${proxy.output()}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

Deno.test("with workers: 2, connections are served by both workers, HTTP and TCP, with the flags that flags prints", async () => {
  const setup = await setUp();
  let proxy: ProxyProcess | undefined;
  try {
    const file = await writeConfig(workersYaml(setup, "v1"), setup.dir);
    const printed = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--allow-read", MAIN, "flags", file],
      env: { NO_COLOR: "1" },
    }).output();
    assert.equal(printed.code, 0, new TextDecoder().decode(printed.stderr));
    const flags = new TextDecoder().decode(printed.stdout).trim().split(" ");
    const root = new URL("../../..", import.meta.url).pathname.replace(/\/$/, "");
    assert.ok(
      flags.some((f) => f.startsWith("--allow-read=") && f.includes(root)),
      flags.join(" "),
    );

    proxy = await startProxy(file, { flags });
    const output = proxy.output();
    for (const worker of ["w0", "w1"]) {
      for (const listener of ["web", "tcp"]) {
        assert.match(
          output,
          new RegExp(`\\[${worker}\\] .*Listener ${listener} on 127\\.0\\.0\\.1`),
        );
      }
    }
    await untilBothWorkers(setup, "v1");

    // The TCP listener forwards bytes on every connection.
    for (let i = 0; i < 20; i++) {
      assert.ok(await requestOnNewConnection(setup.tcpPort), `tcp request ${i} failed`);
    }

    const admin = await fetch(`http://127.0.0.1:${setup.adminPort}/api/v1/workers`);
    const report = await admin.json();
    assert.deepEqual(report.workers.map((w: { state: string }) => w.state), [
      "running",
      "running",
    ]);
  } finally {
    await tearDown(setup, proxy);
  }
});

Deno.test("SIGHUP under a request loop reloads every worker with zero failed requests", async () => {
  const setup = await setUp();
  let proxy: ProxyProcess | undefined;
  try {
    const file = await writeConfig(workersYaml(setup, "v1"), setup.dir);
    proxy = await startProxy(file, { flags: FLAGS });
    const reloads = (async () => {
      for (let i = 2; i <= 4; i++) {
        await writeConfig(workersYaml(setup, `v${i}`), setup.dir);
        proxy!.kill("SIGHUP");
        await waitForCount(proxy!, /Reloaded/, i - 1);
      }
    })();
    const loop = await requestLoop(setup.port, reloads, { max: 3000 });
    await reloads;
    assert.ok(loop.sent > 0);
    assert.equal(loop.failed, 0, `${loop.failed} of ${loop.sent} requests failed`);
    // Every worker serves the last config.
    await untilBothWorkers(setup, "v4");
  } finally {
    await tearDown(setup, proxy);
  }
});

Deno.test("a config that fails on SIGHUP, in the main thread or in a worker's build, changes no worker", async () => {
  const setup = await setUp();
  let proxy: ProxyProcess | undefined;
  try {
    const file = await writeConfig(workersYaml(setup, "v1"), setup.dir);
    proxy = await startProxy(file, { flags: FLAGS });
    await untilBothWorkers(setup, "v1");

    // Fails to load in the main thread: no worker is asked.
    await writeConfig(
      workersYaml(setup, "bad1").replace("drain_timeout", "drain_timout"),
      setup.dir,
    );
    proxy.kill("SIGHUP");
    await proxy.waitForOutput(/Reload failed, the running config stays/);

    // Loads, but a module filter cannot be imported: every worker builds, one fails, all discard.
    const missing = `          - type: module\n            module: ${setup.dir}/missing_filter.ts`;
    await writeConfig(workersYaml(setup, "bad2", missing), setup.dir);
    proxy.kill("SIGHUP");
    await proxy.waitForOutput(/could not build the config, so no worker changed/);

    // Both workers still log v1, and no line says bad1 or bad2.
    const before = (await accessLines(setup.dir)).length;
    for (let i = 0; i < 60; i++) assert.ok(await requestOnNewConnection(setup.port));
    await new Promise((resolve) => setTimeout(resolve, 50));
    const lines = (await accessLines(setup.dir)).slice(before);
    assert.ok(lines.every(([tag]) => tag === "v1"), JSON.stringify(lines.slice(0, 5)));
    assert.equal(count(proxy.output(), /Reloaded/), 0);
  } finally {
    await tearDown(setup, proxy);
  }
});

Deno.test("a worker that crashes is replaced while the other keeps serving", async () => {
  const setup = await setUp();
  let proxy: ProxyProcess | undefined;
  try {
    const file = await writeConfig(workersYaml(setup, "v1"), setup.dir);
    proxy = await startProxy(file, { flags: FLAGS });
    await untilBothWorkers(setup, "v1");

    const crashed = (async () => {
      const client = Deno.createHttpClient({ poolMaxIdlePerHost: 0 });
      const response = await fetch(`http://127.0.0.1:${setup.port}/`, {
        client,
        headers: { "x-crash-worker": "1" },
      });
      assert.equal(await response.text(), "crashing\n");
      client.close();
      await proxy!.waitForOutput(/Worker w[01] died: .*crash requested by x-crash-worker/);
      await proxy!.waitForOutput(/Worker w[01] is back \(restart 1\)/);
    })();
    const loop = await requestLoop(setup.port, crashed, { max: 3000 });
    await crashed;
    // Connections the dead worker had accepted, or had queued, fail; the rest are served.
    assert.ok(loop.sent > loop.failed, `${loop.failed} of ${loop.sent} failed`);
    assert.ok(loop.failed <= 50, `${loop.failed} of ${loop.sent} requests failed`);

    // The replacement serves too: both indices appear again after the restart.
    const marker = (await accessLines(setup.dir)).length;
    for (let i = 0; i < 400; i++) {
      assert.ok(await requestOnNewConnection(setup.port), `request ${i} after the restart failed`);
      if (i % 10 !== 9) continue;
      await new Promise((resolve) => setTimeout(resolve, 20));
      const seen = new Set((await accessLines(setup.dir)).slice(marker).map(([, w]) => w));
      if (seen.size === 2) break;
    }
    const seen = new Set((await accessLines(setup.dir)).slice(marker).map(([, w]) => w));
    assert.deepEqual([...seen].sort(), ["w0", "w1"]);
    const report = await (await fetch(`http://127.0.0.1:${setup.adminPort}/api/v1/workers`))
      .json();
    assert.equal(
      report.workers.reduce((n: number, w: { restarts: number }) => n + w.restarts, 0),
      1,
    );
  } finally {
    await tearDown(setup, proxy);
  }
});

Deno.test("SIGTERM drains every worker and exits 0", async () => {
  const setup = await setUp();
  let proxy: ProxyProcess | undefined;
  try {
    const file = await writeConfig(workersYaml(setup, "v1"), setup.dir);
    proxy = await startProxy(file, { flags: FLAGS });
    await untilBothWorkers(setup, "v1");
    // Slow requests on several connections, so both workers are likely to hold some.
    const slow = Array.from({ length: 6 }, () => requestOnNewConnection(setup.port, "/?wait=700"));
    await new Promise((resolve) => setTimeout(resolve, 200));
    proxy.kill("SIGTERM");
    const results = await Promise.all(slow);
    assert.deepEqual(results, results.map(() => true), "every in-flight request completes");
    const status = await proxy.status;
    assert.equal(status.code, 0, proxy.output());
    assert.match(proxy.output(), /Stopped/);
    assert.doesNotMatch(proxy.output(), /did not drain/);
  } finally {
    await tearDown(setup, proxy);
  }
});
