/**
 * The plugin host's own gRPC client (src/plugin/client.ts over src/plugin/h2.ts) against
 * real plugin processes: the SDK's echo plugin under Node.js and the Go go-plugin checker
 * of examples/module_with_plugin (skipped when it is not built).
 */
import assert from "node:assert/strict";
import { getLogger } from "@logtape/logtape";
import { GrpcStatus, PluginClient } from "../../../src/plugin/client.ts";
import { PluginCallError, PluginUnavailableError } from "../../../src/plugin/errors.ts";
import { PluginManager } from "../../../src/plugin/manager.ts";
import { PluginProcess } from "../../../src/plugin/process.ts";
import { isAlive, nodeCommand, pluginConfig, ROOT, waitFor } from "./helpers.ts";

const GO_CHECKER = `${ROOT}examples/module_with_plugin/build/checker`;
const goBuilt = (() => {
  try {
    return Deno.statSync(GO_CHECKER).isFile;
  } catch {
    return false;
  }
})();

const text = (b: Uint8Array) => new TextDecoder().decode(b);

async function startEcho(network: "unix" | "tcp" = "unix"): Promise<PluginProcess> {
  return await PluginProcess.start(
    pluginConfig("echo", await nodeCommand("echo_plugin.ts"), { network }),
    { logger: getLogger(["test", "plugin"]), logBase: Deno.cwd() },
  );
}

async function startGo(dir: string): Promise<PluginProcess> {
  await Deno.writeTextFile(`${dir}/keys.json`, JSON.stringify({ k1: "alice" }));
  return await PluginProcess.start(
    pluginConfig("go", [GO_CHECKER, "-keys", `${dir}/keys.json`, "-header", "x-api-key"]),
    { logger: getLogger(["test", "plugin"]), logBase: dir },
  );
}

function callError(code: number, fragment: RegExp) {
  return (e: unknown) => {
    assert.ok(e instanceof PluginCallError, String(e));
    assert.equal(e.code, code, e.message);
    assert.equal(e.timedOut, code === GrpcStatus.DEADLINE_EXCEEDED);
    assert.match(e.message, fragment);
    assert.ok(e.message.startsWith('Plugin "echo"') || e.message.startsWith('Plugin "go"'));
    return true;
  };
}

for (const network of ["unix", "tcp"] as const) {
  Deno.test(`client (${network}): headers, trailers, bodies of 1 byte to 20 MiB round-trip`, async () => {
    const proc = await startEcho(network);
    const client = new PluginClient("echo", proc.handshake.target);
    try {
      await client.ready(5000);
      const r = await client.call({
        header: { a: "1", "x-ü": "ö" },
        trailer: { t: "2" },
        body: new TextEncoder().encode("x"),
        type: "before_route",
      }, 5000);
      assert.equal(r.header.a, "1");
      assert.equal(r.header["x-ü"], "ö");
      assert.equal(r.trailer.t, "2");
      assert.equal(text(r.body), "x");
      // Larger than every flow-control window on the way, both ways.
      for (const size of [70_000, 1 << 20, 20 << 20]) {
        const body = new Uint8Array(size);
        for (let i = 0; i < size; i += 4093) body[i] = i & 0xff;
        const big = await client.call({ body }, 20_000);
        assert.equal(big.body.length, size);
        assert.deepEqual(big.body, body);
      }
      assert.equal(await client.health(1000), "SERVING");
    } finally {
      client.close();
      await proc.stop(2000);
    }
  });
}

Deno.test("client: a call past its deadline is DEADLINE_EXCEEDED, and calls beside it are not held up", async () => {
  const proc = await startEcho();
  const client = new PluginClient("echo", proc.handshake.target, { maxConnections: 1 });
  try {
    await client.ready(5000);
    const t0 = Date.now();
    const slow = client.call({ type: "sleep:2000" }, 150);
    // Fast calls on the same (only) connection finish while the slow one waits.
    for (let i = 0; i < 20; i++) {
      const r = await client.call({ header: { i: String(i) } }, 1000);
      assert.equal(r.header.i, String(i));
    }
    const fastDone = Date.now() - t0;
    assert.ok(fastDone < 1500, `20 fast calls took ${fastDone} ms beside a slow one`);
    await assert.rejects(slow, callError(GrpcStatus.DEADLINE_EXCEEDED, /timed out after 150 ms/));
    const late = Date.now() - t0;
    assert.ok(late >= 140 && late < 1500, `the deadline fired after ${late} ms`);
    // The connection goes on serving after the cancelled call.
    assert.equal((await client.call({ header: { after: "yes" } }, 1000)).header.after, "yes");
    assert.equal(client.connections, 1);
  } finally {
    client.close();
    await proc.stop(2000);
  }
});

Deno.test("client: an error status carries the plugin's message, percent-decoded", async () => {
  const proc = await startEcho();
  const client = new PluginClient("echo", proc.handshake.target);
  try {
    await assert.rejects(
      client.call({ type: "fail:100% broken: ✓ é" }, 1000),
      callError(GrpcStatus.UNKNOWN, /failed with UNKNOWN: 100% broken: ✓ é$/),
    );
  } finally {
    client.close();
    await proc.stop(2000);
  }
});

Deno.test("client: nothing listening is UNAVAILABLE at once, and ready() gives up in time", async () => {
  const dir = await Deno.makeTempDir();
  try {
    for (const target of [`unix://${dir}/nothing.sock`, "127.0.0.1:1"]) {
      const client = new PluginClient("echo", target);
      const t0 = Date.now();
      await assert.rejects(client.call({}, 1000), callError(GrpcStatus.UNAVAILABLE, /connect/));
      assert.ok(Date.now() - t0 < 500, "failed without waiting for the deadline");
      await assert.rejects(client.ready(200), /no connection within 200 ms/);
      assert.ok(Date.now() - t0 < 1500);
      client.close();
      await assert.rejects(client.call({}, 1000), callError(GrpcStatus.UNAVAILABLE, /closed/));
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("client: calls in flight when the plugin is SIGKILLed fail UNAVAILABLE at once", async () => {
  const proc = await startEcho();
  const client = new PluginClient("echo", proc.handshake.target, {
    maxConnections: 3,
    streamsPerConnection: 4,
  });
  try {
    await client.ready(5000);
    const inFlight = Array.from(
      { length: 12 },
      () => client.call({ type: "sleep:5000" }, 10_000).then(() => "answered", (e) => e),
    );
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(client.connections, 3, "12 calls at 4 per connection opened 3 connections");
    const killedAt = Date.now();
    proc.kill("SIGKILL");
    for (const outcome of await Promise.all(inFlight)) {
      callError(GrpcStatus.UNAVAILABLE, /lost during the call/)(outcome);
    }
    const took = Date.now() - killedAt;
    assert.ok(took < 1000, `in-flight calls failed ${took} ms after the kill`);
    await waitFor(() => client.connections === 0, 2000, "the connections to go");
    await assert.rejects(client.call({}, 1000), callError(GrpcStatus.UNAVAILABLE, /connect/));
  } finally {
    client.close();
    await proc.stop(2000);
  }
});

Deno.test("manager: a plugin dying mid-call under load fails those calls fast and is restarted", async () => {
  const m = new PluginManager(
    new Map([["echo", pluginConfig("echo", await nodeCommand("echo_plugin.ts"))]]),
  );
  try {
    await m.start();
    const pid = m.status("echo")!.pid!;
    let stop = false;
    const outcomes = { ok: 0, unavailable: 0, slowest: 0 };
    const loops = Array.from({ length: 20 }, async () => {
      while (!stop) {
        const t0 = Date.now();
        try {
          await m.call("echo", { header: { a: "b" } }, { timeoutMs: 3000 });
          outcomes.ok++;
        } catch (e) {
          assert.ok(
            e instanceof PluginUnavailableError ||
              (e instanceof PluginCallError && e.code === GrpcStatus.UNAVAILABLE),
            String(e),
          );
          outcomes.unavailable++;
          outcomes.slowest = Math.max(outcomes.slowest, Date.now() - t0);
          await new Promise((r) => setTimeout(r, 5));
        }
      }
    });
    await new Promise((r) => setTimeout(r, 300));
    Deno.kill(pid, "SIGKILL");
    await waitFor(
      () => m.status("echo")!.on && m.status("echo")!.pid !== pid,
      10_000,
      "the plugin to be restarted",
    );
    const okBefore = outcomes.ok;
    await new Promise((r) => setTimeout(r, 300));
    stop = true;
    await Promise.all(loops);
    assert.ok(outcomes.unavailable > 0, "calls failed while it was down");
    assert.ok(outcomes.slowest < 1000, `failed calls took at most ${outcomes.slowest} ms`);
    assert.ok(outcomes.ok > okBefore, "calls succeed again after the restart");
    assert.equal(isAlive(pid), false);
  } finally {
    await m.stop();
  }
});

Deno.test({
  name: "client against the Go go-plugin checker: calls, health, many streams, a kill mid-load",
  ignore: !goBuilt,
  async fn() {
    const dir = await Deno.makeTempDir();
    const proc = await startGo(dir);
    const client = new PluginClient("go", proc.handshake.target, { streamsPerConnection: 8 });
    try {
      await client.ready(5000);
      assert.equal(await client.health(1000), "SERVING");
      const ok = await client.call({ header: { "x-api-key": "k1" } }, 1000);
      assert.equal(ok.status, 0);
      assert.equal(ok.header["x-user"], "alice");
      const denied = await client.call({ header: {} }, 1000);
      assert.equal(denied.status, 401);
      assert.equal(text(denied.body), "missing x-api-key\n");
      // 64 at once: spread over 4 connections, all answered.
      const many = await Promise.all(
        Array.from({ length: 64 }, () => client.call({ header: { "x-api-key": "k1" } }, 5000)),
      );
      assert.ok(many.every((r) => r.header["x-user"] === "alice"));
      assert.equal(client.connections, 4);
      // Killed under a loop of calls: every call settles, none waits for its deadline.
      let stop = false;
      let unavailable = 0;
      const loops = Array.from({ length: 16 }, async () => {
        while (!stop) {
          try {
            await client.call({ header: { "x-api-key": "k1" } }, 5000);
          } catch (e) {
            assert.ok(e instanceof PluginCallError && e.code === GrpcStatus.UNAVAILABLE, String(e));
            unavailable++;
            await new Promise((r) => setTimeout(r, 5));
          }
        }
      });
      await new Promise((r) => setTimeout(r, 200));
      proc.kill("SIGKILL");
      await new Promise((r) => setTimeout(r, 300));
      stop = true;
      const t0 = Date.now();
      await Promise.all(loops);
      assert.ok(Date.now() - t0 < 1000, "the loops ended without waiting for deadlines");
      assert.ok(unavailable > 0);
    } finally {
      client.close();
      await proc.stop(2000);
      await Deno.remove(dir, { recursive: true });
    }
  },
});
