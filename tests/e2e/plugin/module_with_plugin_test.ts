/**
 * End to end: examples/module_with_plugin, MOSN's `.so` filter combined with the
 * multi-process framework in Go. build.sh installs Debian's Go packages (apt-get, when
 * missing) and builds the go-plugin binary (only when a source changed); then the real proxy
 * runs the example's config, moved to port 0 and a real upstream on loopback, with the
 * narrow flags that `main.ts flags` prints for it.
 */

import assert from "node:assert/strict";
import { parse, stringify } from "yaml";
import {
  type ProxyProcess,
  startProxy,
  startUpstream,
  type Upstream,
  writeConfig,
} from "../../helpers/proxy_process.ts";
import { isAlive, waitFor } from "../../unit/plugin/helpers.ts";

const ROOT = new URL("../../../", import.meta.url).pathname;
const EXAMPLE = `${ROOT}examples/module_with_plugin`;
const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);

async function build(): Promise<void> {
  const out = await new Deno.Command("sh", {
    args: [`${EXAMPLE}/build.sh`],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.ok(out.success, `build.sh failed:\n${text(out.stdout)}${text(out.stderr)}`);
}

/** The example's config, with the listener on port 0 and the cluster on `upstream`. */
async function exampleConfig(upstream: Upstream, dir: string): Promise<string> {
  // deno-lint-ignore no-explicit-any
  const config: any = parse(await Deno.readTextFile(`${EXAMPLE}/config.yaml`));
  const listener = config.servers[0].listeners[0];
  listener.address = "127.0.0.1:0";
  listener.stream_filters[0].module = `${EXAMPLE}/key_filter.ts`;
  config.cluster_manager.clusters[0].hosts = [{ address: upstream.address }];
  config.plugins.checker.cwd = EXAMPLE; // build/checker and keys.json are relative to it
  return await writeConfig(stringify(config), dir);
}

/** What `main.ts flags` prints for `file`, as the README runs it. */
async function narrowFlags(file: string): Promise<string[]> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-read",
      "--allow-env=LOG_TOKENS,LOG_STREAM",
      `${ROOT}main.ts`,
      "flags",
      file,
    ],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.ok(out.success, `main.ts flags failed:\n${text(out.stderr)}`);
  const flags = text(out.stdout).trim().split(/\s+/);
  assert.ok(!flags.includes("-A") && !flags.includes("--allow-all"), flags.join(" "));
  assert.ok(flags.includes(`--allow-run=${EXAMPLE}/build/checker`), flags.join(" "));
  return flags;
}

async function get(
  proxy: ProxyProcess,
  headers: Record<string, string> = {},
): Promise<{ status: number; type: string | null; body: string }> {
  const response = await fetch(`http://${proxy.listeners.get("keyed")}/hello`, { headers });
  return {
    status: response.status,
    type: response.headers.get("content-type"),
    body: await response.text(),
  };
}

Deno.test("a module filter asks a Go go-plugin checker and copies its x-user upstream", async () => {
  await build();
  const dir = await Deno.makeTempDir({ prefix: "mosaic-e2e-module-plugin-" });
  const seen: (string | null)[] = [];
  const upstream = startUpstream((request) => {
    const user = request.headers.get("x-user");
    seen.push(user);
    return new Response(`upstream saw x-user ${user} on ${new URL(request.url).pathname}`);
  });
  let proxy: ProxyProcess | undefined;
  try {
    const file = await exampleConfig(upstream, dir);
    proxy = await startProxy(file, { flags: await narrowFlags(file) });
    const up = proxy.output().match(/Plugin "checker" is up: pid (\d+), unix (\S+)/);
    assert.ok(up, `no plugin start line in:\n${proxy.output()}`);
    const [pid, socket] = [Number(up[1]), up[2]];
    assert.match(socket, /\/mosaic-go-checker-[^/]+\/plugin\d+$/, "go-plugin's socket path");

    // Denied by the plugin: its status, content-type and body; the upstream is not reached.
    assert.deepEqual(await get(proxy), {
      status: 401,
      type: "text/plain",
      body: "missing x-api-key\n",
    });
    assert.deepEqual(await get(proxy, { "x-api-key": "guess" }), {
      status: 401,
      type: "text/plain",
      body: "unknown x-api-key\n",
    });
    assert.equal((await get(proxy, { "x-user": "alice" })).status, 401, "x-user alone is no key");
    assert.equal(upstream.requests, 0);

    // Allowed: the upstream sees the x-user the plugin answered, never the client's own.
    assert.deepEqual(await get(proxy, { "x-api-key": "alice-key-1234" }), {
      status: 200,
      type: "text/plain;charset=UTF-8",
      body: "upstream saw x-user alice on /hello",
    });
    const forged = await get(proxy, { "x-api-key": "bob-key-5678", "x-user": "root" });
    assert.equal(forged.body, "upstream saw x-user bob on /hello");
    assert.deepEqual(seen, ["alice", "bob"]);

    // Concurrent calls on the plugin's one connection keep their answers apart.
    const keys = ["alice-key-1234", "bob-key-5678", "nope"];
    const answers = await Promise.all(
      Array.from({ length: 60 }, (_, i) => get(proxy!, { "x-api-key": keys[i % 3] })),
    );
    assert.deepEqual(
      answers.map((a) => `${a.status} ${a.body}`),
      answers.map((_, i) =>
        [
          "200 upstream saw x-user alice on /hello",
          "200 upstream saw x-user bob on /hello",
          "401 unknown x-api-key\n",
        ][i % 3]
      ),
    );

    // Stopping the proxy stops the plugin, which removes its socket directory.
    assert.ok(isAlive(pid), "the plugin runs");
    const status = await proxy.stop();
    assert.equal(status.code, 0, proxy.output());
    await waitFor(() => !isAlive(pid), 5000, "the plugin to exit");
    const socketDir = socket.slice(0, socket.lastIndexOf("/"));
    await assert.rejects(Deno.stat(socketDir), Deno.errors.NotFound, `${socketDir} is left`);
  } finally {
    await proxy?.stop();
    await upstream.close();
    await Deno.remove(dir, { recursive: true });
  }
});
