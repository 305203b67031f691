import assert from "node:assert/strict";
import { configure, type LogRecord, reset } from "@logtape/logtape";
import type { PluginConfig } from "../../../src/config/types.ts";
import {
  PluginCallError,
  PluginStartError,
  PluginUnavailableError,
} from "../../../src/plugin/errors.ts";
import { PluginManager } from "../../../src/plugin/manager.ts";
import {
  denoCommand,
  FIXTURES,
  isAlive,
  nodeCommand,
  pluginConfig,
  recordText,
  waitFor,
} from "./helpers.ts";

const text = (b: Uint8Array) => new TextDecoder().decode(b);

function manager(configs: PluginConfig[], options = {}): PluginManager {
  return new PluginManager(new Map(configs.map((c) => [c.name, c])), options);
}

Deno.test("SDK plugins start on unix and tcp, with the 5- and the 6-field handshake", async () => {
  const cmd = denoCommand("echo_plugin.ts");
  const six = { ECHO_HANDSHAKE_FORM: "goplugin" };
  const m = manager([
    pluginConfig("unix5", cmd, { network: "unix" }),
    pluginConfig("tcp5", cmd, { network: "tcp" }),
    pluginConfig("unix6", cmd, { network: "unix", env: six }),
    pluginConfig("tcp6", cmd, { network: "tcp", env: six }),
  ]);
  try {
    await m.start();
    for (const name of ["unix5", "tcp5", "unix6", "tcp6"]) {
      const status = m.status(name)!;
      assert.equal(status.on, true);
      assert.equal(status.network, name.startsWith("unix") ? "unix" : "tcp");
      if (status.network === "tcp") {
        const port = Number(status.address!.split(":")[1]);
        assert.ok(port >= 10000 && port <= 25000, `port ${port} is in PLUGIN_MIN/MAX_PORT`);
      }
      const r = await m.call(name, {
        header: { who: name },
        body: new TextEncoder().encode("hi"),
      });
      assert.equal(r.header.who, name);
      assert.equal(r.header["x-echo-language"], "typescript");
      assert.equal(text(r.body), "hi");
      assert.equal(r.header["x-pid"], String(status.pid));
    }
  } finally {
    await m.stop();
  }
});

async function startFails(config: PluginConfig, ...fragments: string[]): Promise<void> {
  const m = manager([config]);
  try {
    await assert.rejects(m.start(), (e: unknown) => {
      assert.ok(e instanceof PluginStartError, String(e));
      assert.equal(e.plugin, config.name);
      assert.ok(e.message.startsWith(`Plugin "${config.name}"`), e.message);
      for (const f of fragments) assert.ok(e.message.includes(f), `"${f}" in: ${e.message}`);
      return true;
    });
    assert.equal(m.status(config.name)?.on, false);
  } finally {
    await m.stop();
  }
}

Deno.test("each bad handshake fails start, naming the plugin and quoting what it printed", async () => {
  await startFails(
    pluginConfig("garbage", ["sh", FIXTURES + "garbage.sh"]),
    "bad handshake",
    '"hello, I am not a plugin"',
  );
  await startFails(
    pluginConfig("old", ["sh", FIXTURES + "wrong_version.sh"]),
    "app protocol version must be 1",
    '"1|2|tcp|127.0.0.1:1234|grpc"',
  );
  await startFails(
    pluginConfig("gorpc", ["sh", FIXTURES + "netrpc.sh"]),
    'protocol "netrpc"',
    '"1|1|tcp|127.0.0.1:1234|netrpc|"',
  );
  await startFails(
    pluginConfig("silent", ["sh", FIXTURES + "silent.sh"], { startTimeoutMs: 500 }),
    "printed no handshake within 500 ms",
    "loading a very large model",
  );
  await startFails(
    pluginConfig("early", ["sh", FIXTURES + "exit_early.sh"]),
    "exited with code 3 before printing its handshake",
    "cannot open /etc/checker.json",
  );
  await startFails(
    pluginConfig("noserver", ["sh", FIXTURES + "no_server.sh"], { startTimeoutMs: 1000 }),
    "printed its handshake (unix:///nonexistent/mosaic-test.sock) but did not answer gRPC",
  );
  await startFails(
    pluginConfig("missing", ["/nonexistent/plugin-binary"]),
    "could not be started",
    "/nonexistent/plugin-binary",
  );
});

Deno.test("a plugin gets MOSN's env, the magic cookie, the network hint, its env and args", async () => {
  await startFails(
    pluginConfig("env", ["sh", FIXTURES + "env_dump.sh"], {
      args: ["a", "b"],
      env: { EXTRA: "yes" },
      network: "tcp",
      maxProcs: 2,
    }),
    "exited with code 7",
    "MOSN_PLUGIN=ON PLUGIN_PROTOCOL_VERSIONS=1 PLUGIN_MIN_PORT=10000 PLUGIN_MAX_PORT=25000 " +
      "MOSN_PROCS=2 MOSN_LOGBASE=",
    "MOSAIC_PLUGIN_NETWORK=tcp EXTRA=yes ARGS=a b",
  );
});

Deno.test("start names every plugin that failed and stops the ones that started", async () => {
  const m = manager([
    pluginConfig("good", await nodeCommand("echo_plugin.ts")),
    pluginConfig("garbage", ["sh", FIXTURES + "garbage.sh"]),
    pluginConfig("early", ["sh", FIXTURES + "exit_early.sh"]),
  ]);
  try {
    await assert.rejects(m.start(), (e: unknown) => {
      assert.ok(e instanceof PluginStartError);
      assert.match(e.message, /^2 plugins did not start:\n- Plugin "garbage".*\n- Plugin "early"/);
      return true;
    });
    assert.deepEqual(m.status().map((s) => s.state), ["stopped", "stopped", "stopped"]);
    await assert.rejects(m.call("good", {}), PluginUnavailableError);
  } finally {
    await m.stop();
  }
});

Deno.test("1000 calls on one connection all reach the same child", async () => {
  const m = manager([pluginConfig("echo", await nodeCommand("echo_plugin.ts"))]);
  try {
    await m.start();
    const pid = String(m.status("echo")!.pid);
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < 1000) {
        const i = next++;
        const r = await m.call("echo", { header: { i: String(i) } }, { timeoutMs: 5000 });
        assert.equal(r.header.i, String(i));
        assert.equal(r.header["x-pid"], pid);
      }
    };
    await Promise.all(Array.from({ length: 8 }, worker));
    assert.equal(next, 1000);
  } finally {
    await m.stop();
  }
});

Deno.test("a call past its timeout fails as timed out and the plugin goes on serving", async () => {
  const m = manager([pluginConfig("echo", await nodeCommand("echo_plugin.ts"))]);
  try {
    await m.start();
    const t0 = Date.now();
    await assert.rejects(m.call("echo", { type: "sleep:5000" }, { timeoutMs: 200 }), (e) => {
      assert.ok(e instanceof PluginCallError);
      assert.equal(e.timedOut, true);
      assert.equal(e.message, 'Plugin "echo" call timed out after 200 ms');
      return true;
    });
    assert.ok(Date.now() - t0 < 3000, "the call did not wait for the plugin's answer");
    await assert.rejects(m.call("echo", { type: "fail:no such user" }), /UNKNOWN: no such user/);
    assert.equal((await m.call("echo", { header: { a: "1" } })).header.a, "1");
  } finally {
    await m.stop();
  }
});

Deno.test("a plugin killed with SIGKILL is back within 1 s and calls in the gap fail fast", async () => {
  const m = manager([pluginConfig("echo", await nodeCommand("echo_plugin.ts"))]);
  try {
    const t0 = Date.now();
    await m.start();
    // What one start costs on this machine right now (other tests may load it).
    const startCost = Date.now() - t0;
    const pid = m.status("echo")!.pid!;
    Deno.kill(pid, "SIGKILL");
    const killedAt = Date.now();
    let failures = 0;
    let slowest = 0;
    let back = 0;
    for (let i = 0; i < 500 && Date.now() - killedAt < 5000; i++) {
      const t0 = Date.now();
      try {
        const r = await m.call("echo", {}, { timeoutMs: 2000 });
        if (r.header["x-pid"] !== String(pid)) {
          back = Date.now() - killedAt;
          break;
        }
      } catch (e) {
        assert.ok(e instanceof PluginUnavailableError || e instanceof PluginCallError, String(e));
        failures++;
        slowest = Math.max(slowest, Date.now() - t0);
      }
      await new Promise((r) => setTimeout(r, 10));
    }
    assert.ok(back > 0, "the plugin came back");
    // Within 1 s on an idle machine: the 100 ms backoff plus one start (which other
    // tests running beside this one can make slower).
    const bound = Math.max(1000, 3 * startCost);
    assert.ok(back < bound, `restarted in ${back} ms (one start took ${startCost} ms)`);
    assert.ok(failures > 0, "calls in the gap failed");
    assert.ok(slowest < 200, `failed calls took at most ${slowest} ms`);
    const status = m.status("echo")!;
    assert.equal(status.restarts, 1);
    assert.match(status.pid === pid ? "same" : "new", /new/);
    assert.equal(isAlive(pid), false);
  } finally {
    await m.stop();
  }
});

Deno.test("while a plugin is down its calls say so and when it restarts", async () => {
  const m = manager([pluginConfig("echo", await nodeCommand("echo_plugin.ts"))], {
    restartInitialMs: 3000,
  });
  try {
    await m.start();
    Deno.kill(m.status("echo")!.pid!, "SIGKILL");
    await waitFor(() => m.status("echo")!.state === "down", 3000, "the plugin to be down");
    await assert.rejects(m.call("echo", {}), (e: unknown) => {
      assert.ok(e instanceof PluginUnavailableError);
      assert.match(
        e.message,
        /^Plugin "echo" is down \(exited: was killed by SIGKILL.*restarting in \d+ ms$/,
      );
      return true;
    });
  } finally {
    await m.stop();
  }
});

Deno.test("a plugin that keeps dying is restarted with growing delays", async () => {
  const records: LogRecord[] = [];
  await configure({
    sinks: { memory: (r: LogRecord) => records.push(r) },
    loggers: [
      { category: ["mosaic"], sinks: ["memory"], lowestLevel: "info" },
      { category: ["logtape", "meta"], sinks: [], lowestLevel: "error" },
    ],
  });
  const m = manager([
    pluginConfig("dying", await nodeCommand("echo_plugin.ts"), {
      env: { ECHO_EXIT_AFTER_MS: "200" },
    }),
  ]);
  try {
    await m.start();
    await waitFor(() => m.status("dying")!.restarts >= 4, 30_000, "four restarts");
    // The delays double from 100 ms: the child never stays up long enough to reset them.
    const delays = records.flatMap((r) =>
      typeof r.properties.restartInMs === "number" ? [r.properties.restartInMs] : []
    );
    assert.deepEqual(delays.slice(0, 4), [100, 200, 400, 800]);
    assert.match(m.status("dying")!.lastError ?? "exited: exited with code 9", /code 9/);
  } finally {
    await m.stop();
    await reset();
  }
});

Deno.test("a plugin's stderr lines reach the log under its name", async () => {
  const records: LogRecord[] = [];
  await configure({
    sinks: { memory: (r: LogRecord) => records.push(r) },
    loggers: [
      { category: ["mosaic"], sinks: ["memory"], lowestLevel: "debug" },
      { category: ["logtape", "meta"], sinks: [], lowestLevel: "error" },
    ],
  });
  const m = manager([pluginConfig("echo", await nodeCommand("echo_plugin.ts"))]);
  try {
    await m.start();
    await m.call("echo", { type: "stderr:a line from {the} plugin" });
    await waitFor(
      () => records.some((r) => recordText(r) === "a line from {the} plugin"),
      3000,
      "the stderr line in the log",
    );
    const record = records.find((r) => recordText(r) === "a line from {the} plugin")!;
    assert.deepEqual(record.category, ["mosaic", "plugin", "echo"]);
    assert.equal(record.properties.stream, "stderr");
  } finally {
    await m.stop();
    await reset();
  }
});

Deno.test("a plugin whose health checks fail is restarted", async () => {
  const m = manager([pluginConfig("echo", await nodeCommand("echo_plugin.ts"))], {
    healthIntervalMs: 100,
    healthFailures: 2,
  });
  try {
    await m.start();
    const first = m.status("echo")!;
    assert.equal(first.health, true);
    await m.call("echo", { type: "unhealthy" });
    await waitFor(
      () => {
        const s = m.status("echo")!;
        return s.on && s.pid !== first.pid;
      },
      15_000,
      "a restart",
    );
    assert.equal(m.status("echo")!.restarts, 1);
  } finally {
    await m.stop();
  }
});

Deno.test("a disabled plugin refuses calls until it is enabled again", async () => {
  const m = manager([pluginConfig("echo", await nodeCommand("echo_plugin.ts"))]);
  try {
    await m.start();
    const pid = m.status("echo")!.pid!;
    await m.disable("echo");
    assert.equal(isAlive(pid), false);
    assert.deepEqual(
      [m.status("echo")!.enabled, m.status("echo")!.on, m.status("echo")!.state],
      [false, false, "disabled"],
    );
    await assert.rejects(m.call("echo", {}), /^PluginUnavailableError: Plugin "echo" is disabled$/);
    await m.enable("echo");
    assert.equal(m.status("echo")!.on, true);
    assert.equal((await m.call("echo", { header: { a: "b" } })).header.a, "b");
  } finally {
    await m.stop();
  }
});

Deno.test("calls to an unknown plugin fail and name the configured ones", async () => {
  const m = manager([pluginConfig("echo", ["sh", FIXTURES + "garbage.sh"])]);
  await assert.rejects(
    m.call("nope", {}),
    /^PluginUnavailableError: No plugin named "nope" is configured \(plugins: echo\)$/,
  );
  await assert.rejects(m.enable("nope"), PluginUnavailableError);
  await assert.rejects(m.disable("nope"), PluginUnavailableError);
  assert.equal(m.status("nope"), undefined);
  await m.stop();
});
