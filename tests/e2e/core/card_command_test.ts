/**
 * The command on the design card runs: `deno run --allow-net --allow-read main.ts
 * config.yaml`, with no --allow-env, for every example config without plugins; without
 * read access Mosaic says which flag to add; the flags `flags` prints cover `watch: true`;
 * the commands `check` prints run as pasted after `npm ci`.
 */
import assert from "node:assert/strict";
import { startProxy, writeConfig } from "../../helpers/proxy_process.ts";

const ROOT = new URL("../../../", import.meta.url).pathname;
const MAIN = `${ROOT}main.ts`;

async function mosaic(args: string[], flags: string[]) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", ...flags, MAIN, ...args],
    env: { NO_COLOR: "1" },
    stdin: "null",
    cwd: ROOT,
  }).output();
  const decoder = new TextDecoder();
  return { code: out.code, stdout: decoder.decode(out.stdout), stderr: decoder.decode(out.stderr) };
}

// Every example config that declares no plugins (and needs no module server).
const EXAMPLES = [
  "examples/simple_streamfilter/config.yaml",
  "examples/so_filter/config.yaml",
  "examples/sandboxed_filter/config.yaml",
];

for (const example of EXAMPLES) {
  Deno.test(`the card's command runs ${example} with --allow-net --allow-read only`, async () => {
    const proxy = await startProxy(`${ROOT}${example}`, {
      flags: ["--allow-net", "--allow-read"],
      timeoutMs: 20_000,
    });
    try {
      assert.doesNotMatch(proxy.output(), /NotCapable|Requires env access/);
    } finally {
      await proxy.stop();
    }
  });
}

Deno.test("check runs with --allow-read only and prints a command that runs as pasted", async () => {
  const example = "examples/simple_streamfilter/config.yaml";
  const result = await mosaic(["check", example], ["--allow-read"]);
  assert.equal(result.code, 0, result.stderr);
  const command = result.stdout.split("\n").find((line) => line.includes(" run "));
  assert.ok(command?.startsWith("./node_modules/.bin/deno run "), result.stdout);
  assert.doesNotMatch(command!, /--allow-env/);
  const args = command!.split(" ").slice(1);
  const flags = args.filter((a) => a.startsWith("--"));
  // The printed command, pasted from the repository root, starts the proxy.
  const proxy = await startProxy(`${ROOT}${example}`, { flags });
  await proxy.stop();
});

Deno.test("with --allow-net alone, a non-interactive run names --allow-read=<config>", async () => {
  const example = "examples/simple_streamfilter/config.yaml";
  const result = await mosaic([example], ["--allow-net"]);
  assert.equal(result.code, 1);
  const lines = result.stderr.trim().split("\n");
  assert.equal(lines.length, 1, result.stderr);
  assert.equal(
    lines[0],
    `mosaic: ${example}: no read access to the config file; run deno with ` +
      `--allow-read=${ROOT}${example}`,
  );
});

Deno.test("the flags printed for a watch: true config let the watcher run", async () => {
  const yaml = (body: string) =>
    `watch: true
servers:
  - routers:
      - router_config_name: r
        virtual_hosts: [{ name: v, domains: ["*"], routers: [{ match: { prefix: / }, direct_response: { status: 200, body: "${body}" } }] }]
    listeners:
      - name: l
        address: 127.0.0.1:0
        filter_chains: [{ filters: [{ type: proxy, config: { router_config_name: r } }] }]
`;
  const file = await writeConfig(yaml("first"));
  try {
    const printed = await mosaic(["flags", file], ["--allow-read"]);
    assert.equal(printed.code, 0, printed.stderr);
    const flags = printed.stdout.trim().split(" ");
    const proxy = await startProxy(file, { flags });
    try {
      const address = proxy.listeners.get("l")!;
      assert.equal(await (await fetch(`http://${address}/`)).text(), "first");
      await Deno.writeTextFile(file, yaml("second"));
      let answer = "";
      for (let i = 0; i < 50 && answer !== "second"; i++) {
        await new Promise((r) => setTimeout(r, 100));
        answer = await (await fetch(`http://${address}/`)).text();
      }
      assert.equal(answer, "second");
      assert.doesNotMatch(proxy.output(), /NotCapable/);
    } finally {
      await proxy.stop();
    }
  } finally {
    await Deno.remove(file.slice(0, file.lastIndexOf("/")), { recursive: true });
  }
});
