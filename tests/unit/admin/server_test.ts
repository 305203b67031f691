import assert from "node:assert/strict";
import { pluginAdminHandler, pluginUsage } from "../../../src/admin/plugin.ts";
import { AdminServer, AdminServerError, text } from "../../../src/admin/server.ts";
import { PluginManager } from "../../../src/plugin/manager.ts";
import { isAlive, nodeCommand, pluginConfig } from "../plugin/helpers.ts";

async function get(port: number, path: string): Promise<[number, string]> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`);
  return [res.status, await res.text()];
}

Deno.test("the admin server routes exact paths, answers 404 elsewhere, and binds loopback", async () => {
  const admin = new AdminServer({ port: 0 });
  admin.route("/api/v1/ping", () => text(200, "pong\n"));
  const { hostname, port } = await admin.start();
  try {
    assert.equal(hostname, "127.0.0.1");
    assert.deepEqual(admin.addr, { hostname, port });
    assert.deepEqual(await get(port, "/api/v1/ping"), [200, "pong\n"]);
    // Routes can be added after start.
    admin.route("/late", () => text(200, "late\n"));
    assert.deepEqual(await get(port, "/late"), [200, "late\n"]);
    const [status, body] = await get(port, "/nope");
    assert.equal(status, 404);
    assert.match(body, /No admin endpoint at \/nope; try: \/api\/v1\/ping, \/late/);
    assert.throws(() => admin.route("/late", () => text(200, "")), AdminServerError);
    assert.throws(() => admin.route("late", () => text(200, "")), /must start with "\/"/);
  } finally {
    await admin.stop();
  }
});

Deno.test("a taken admin port is a clear error", async () => {
  const first = new AdminServer({ port: 0 });
  const { port } = await first.start();
  try {
    const second = new AdminServer({ port });
    await assert.rejects(second.start(), /Admin API cannot listen on 127\.0\.0\.1:\d+/);
  } finally {
    await first.stop();
  }
});

Deno.test("the plugin endpoint shows status and enables and disables plugins over HTTP", async () => {
  const cmd = await nodeCommand("echo_plugin.ts");
  const plugins = new PluginManager(
    new Map([["echo", pluginConfig("echo", cmd)], ["second", pluginConfig("second", cmd)]]),
  );
  const admin = new AdminServer({ port: 0 });
  admin.route("/api/v1/plugin", pluginAdminHandler(plugins));
  try {
    await plugins.start();
    const { port } = await admin.start();
    assert.deepEqual(await get(port, "/api/v1/plugin?status=all"), [
      200,
      "name:echo,enable:true,on:true\nname:second,enable:true,on:true\n\n",
    ]);
    assert.deepEqual(await get(port, "/api/v1/plugin?status=echo"), [
      200,
      "name:echo,enable:true,on:true\n",
    ]);

    const pid = plugins.status("echo")!.pid!;
    assert.deepEqual(await get(port, "/api/v1/plugin?disable=echo"), [
      200,
      "disable echo success\n",
    ]);
    assert.equal(isAlive(pid), false);
    assert.deepEqual(await get(port, "/api/v1/plugin?status=echo"), [
      200,
      "name:echo,enable:false,on:false\n",
    ]);
    await assert.rejects(plugins.call("echo", {}), /is disabled/);

    assert.deepEqual(await get(port, "/api/v1/plugin?enable=echo"), [
      200,
      "enable echo success\n",
    ]);
    assert.deepEqual(await get(port, "/api/v1/plugin?status=echo"), [
      200,
      "name:echo,enable:true,on:true\n",
    ]);
    assert.equal((await plugins.call("echo", { header: { a: "1" } })).header.a, "1");

    assert.deepEqual(await get(port, "/api/v1/plugin?status=nope"), [
      400,
      'No plugin named "nope" is configured\n',
    ]);
    const [code, body] = await get(port, "/api/v1/plugin?enable=nope");
    assert.equal(code, 400);
    assert.match(body, /^No plugin named "nope" is configured \(plugins: echo, second\)\n$/);
    assert.deepEqual(await get(port, "/api/v1/plugin"), [400, pluginUsage()]);
    assert.deepEqual(await get(port, "/api/v1/plugin?foo=bar"), [400, pluginUsage()]);
    assert.match(pluginUsage(), /^Usage:\n\/api\/v1\/plugin\?status=all\n/);
  } finally {
    await admin.stop();
    await plugins.stop();
  }
});
