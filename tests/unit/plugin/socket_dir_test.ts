// A unix-socket plugin's socket folder is removed when the plugin is disabled through
// the admin endpoint (or stopped), whether or not the plugin removes it on its way
// out; enabling it again makes a new one.
import assert from "node:assert/strict";
import { dirname } from "node:path";
import { pluginAdminHandler } from "../../../src/admin/plugin.ts";
import { PluginManager } from "../../../src/plugin/manager.ts";
import { denoCommand, isAlive, nodeCommand, pluginConfig } from "./helpers.ts";

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
}

/** Asks the admin endpoint, as `curl <admin>/api/v1/plugin?<query>` would. */
async function admin(m: PluginManager, query: string): Promise<[number, string]> {
  const url = new URL(`http://127.0.0.1:34901/api/v1/plugin?${query}`);
  const response = await pluginAdminHandler(m)(new Request(url), url);
  return [response.status, await response.text()];
}

const PLUGINS = [
  ["a Node.js SDK plugin", () => nodeCommand("echo_plugin.ts")],
  ["a Deno SDK plugin", () => Promise.resolve(denoCommand("echo_plugin.ts"))],
  ["a plugin that only SIGKILL stops", () => Promise.resolve(denoCommand("stubborn_plugin.ts"))],
] as const;

for (const [what, command] of PLUGINS) {
  Deno.test(`disabling ${what} through the admin API removes its socket folder`, async () => {
    const m = new PluginManager(new Map([["echo", pluginConfig("echo", await command())]]), {
      stopGraceMs: 300,
    });
    try {
      await m.start();
      const pid = m.status("echo")!.pid!;
      const first = dirname(m.status("echo")!.address!);
      assert.match(first, /\/mosaic-plugin-[^/]+$/);
      assert.ok(await exists(first), `${first} exists while the plugin is up`);

      assert.deepEqual(await admin(m, "disable=echo"), [200, "disable echo success\n"]);
      assert.equal(isAlive(pid), false);
      assert.equal(await exists(first), false, `${first} is gone once the plugin is disabled`);

      assert.deepEqual(await admin(m, "enable=echo"), [200, "enable echo success\n"]);
      const second = dirname(m.status("echo")!.address!);
      assert.notEqual(second, first);
      assert.ok(await exists(second), `${second} exists once the plugin is enabled again`);

      await m.stop();
      assert.equal(await exists(second), false, `${second} is gone once the plugin is stopped`);
    } finally {
      await m.stop();
    }
  });
}

Deno.test("a plugin killed with SIGKILL leaves no socket folder once it is restarted", async () => {
  const m = new PluginManager(
    new Map([["echo", pluginConfig("echo", denoCommand("echo_plugin.ts"))]]),
  );
  try {
    await m.start();
    const pid = m.status("echo")!.pid!;
    const first = dirname(m.status("echo")!.address!);
    Deno.kill(pid, "SIGKILL");
    const deadline = Date.now() + 10_000;
    while (m.status("echo")!.pid === pid || m.status("echo")!.state !== "up") {
      assert.ok(Date.now() < deadline, "the plugin came back");
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.equal(await exists(first), false, `${first} is gone after the SIGKILL`);
  } finally {
    await m.stop();
  }
});
