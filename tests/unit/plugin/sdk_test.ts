import assert from "node:assert/strict";
import { PluginClient } from "../../../src/plugin/client.ts";
import { parseHandshake } from "../../../src/plugin/handshake.ts";
import { LineReader } from "../../../src/plugin/lines.ts";
import { denoCommand, FIXTURES, isAlive, nodeCommand, waitFor } from "./helpers.ts";

Deno.test("an SDK plugin run by hand exits with a message saying it is a plugin", async () => {
  const [program, ...args] = denoCommand("echo_plugin.ts");
  const env = { ...Deno.env.toObject() };
  delete env.MOSN_PLUGIN;
  const out = await new Deno.Command(program, { args, env, clearEnv: true, stdin: "null" })
    .output();
  assert.equal(out.code, 1);
  assert.match(new TextDecoder().decode(out.stderr), /is a Mosaic\/MOSN plugin.*not by hand/);
  assert.equal(out.stdout.length, 0);
});

for (const runtime of ["node", "deno"] as const) {
  Deno.test(`an SDK plugin under ${runtime} exits within 2 s when its host is SIGKILLed`, async () => {
    const plugin = runtime === "node"
      ? await nodeCommand("echo_plugin.ts")
      : denoCommand("echo_plugin.ts");
    const host = new Deno.Command(Deno.execPath(), {
      args: ["run", "--allow-all", "--no-lock", FIXTURES + "host.ts", JSON.stringify(plugin)],
      stdin: "null",
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    const lines = new LineReader(host.stdout);
    try {
      const pid = Number(await lines.next());
      assert.ok(pid > 0 && isAlive(pid), `the plugin runs (pid ${pid})`);
      host.kill("SIGKILL");
      const killedAt = Date.now();
      await host.status;
      await waitFor(() => !isAlive(pid), 5000, "the plugin to exit");
      const gone = Date.now() - killedAt;
      assert.ok(gone < 2000, `the plugin exited ${gone} ms after its host`);
    } finally {
      try {
        host.kill("SIGKILL");
      } catch {
        // Already dead.
      }
      await host.status;
      await lines.cancel();
    }
  });
}

/** Starts a plugin by hand (as a host would) and returns it with its handshake. */
async function spawnPlugin(command: string[]) {
  const [program, ...args] = command;
  const child = new Deno.Command(program, {
    args,
    env: { MOSN_PLUGIN: "ON", MOSAIC_PLUGIN_NETWORK: "unix" },
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const stdout = new LineReader(child.stdout);
  const stderr = new LineReader(child.stderr);
  const stderrLines: string[] = [];
  const stderrDone = stderr.forward((l) => stderrLines.push(l));
  const handshake = parseHandshake("echo", (await stdout.next()) ?? "");
  return {
    child,
    handshake,
    stderrLines,
    async close(): Promise<Deno.CommandStatus> {
      try {
        await child.stdin.close();
      } catch {
        // The child is gone.
      }
      const status = await child.status;
      await stderrDone;
      await stdout.cancel();
      return status;
    },
  };
}

async function calls(client: PluginClient, n: number, concurrency: number): Promise<void> {
  let next = 0;
  async function worker(): Promise<void> {
    while (next < n) {
      const i = String(next++);
      const r = await client.call({ header: { i } }, 5000);
      assert.equal(r.header.i, i);
    }
  }
  await Promise.all(Array.from({ length: concurrency }, worker));
}

Deno.test("an SDK plugin under node serves 10,000 calls, then a host reconnecting twice", async () => {
  const plugin = await spawnPlugin(await nodeCommand("echo_plugin.ts"));
  try {
    const first = new PluginClient("echo", plugin.handshake.target);
    await calls(first, 10_000, 16);
    first.close();
    // The pattern that aborts Deno's HTTP/2 server: many sequential calls, then close.
    const second = new PluginClient("echo", plugin.handshake.target);
    await calls(second, 1000, 1);
    second.close();
    await new Promise((r) => setTimeout(r, 300));
    assert.ok(isAlive(plugin.child.pid), "the plugin survived both closes");
    const third = new PluginClient("echo", plugin.handshake.target);
    await calls(third, 100, 4);
    third.close();
  } finally {
    const status = await plugin.close();
    assert.equal(status.code, 0, `exit on stdin EOF; stderr: ${plugin.stderrLines.join("\n")}`);
  }
});
