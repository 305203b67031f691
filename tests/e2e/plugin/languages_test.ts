/**
 * The example plugins in TypeScript (run by Node.js), Python (Debian's grpcio) and Java
 * (Debian's grpc-java) pass the same checks through the PluginManager, started from the
 * examples' own config.yaml. The examples' setup scripts install what is missing
 * (apt-get) and build; they are quick when everything is there.
 */

import assert from "node:assert/strict";
import { loadConfig } from "../../../src/config/load.ts";
import { LineReader } from "../../../src/plugin/lines.ts";
import { PluginManager } from "../../../src/plugin/manager.ts";
import { isAlive, waitFor } from "../../unit/plugin/helpers.ts";

const ROOT = new URL("../../../", import.meta.url).pathname;
const LANGUAGES = ["typescript", "python", "java"] as const;

async function setup(example: string): Promise<void> {
  const out = await new Deno.Command("sh", {
    args: [`${ROOT}examples/${example}/setup.sh`],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = (b: Uint8Array) => new TextDecoder().decode(b);
  assert.ok(out.success, `${example}/setup.sh failed:\n${text(out.stdout)}${text(out.stderr)}`);
}

async function managerFor(example: string): Promise<PluginManager> {
  const { config } = await loadConfig(`${ROOT}examples/${example}/config.yaml`);
  return new PluginManager(config.plugins, { healthIntervalMs: 0 });
}

Deno.test("the header checker denies a missing or wrong header in all three languages", async () => {
  await setup("plugin_filter");
  const plugins = await managerFor("plugin_filter");
  try {
    await plugins.start();
    for (const language of LANGUAGES) {
      const name = `checker_${language}`;
      const ok = { user: "admin", "x-team": "gateway", other: "x" };
      assert.equal((await plugins.call(name, { header: ok }, { timeoutMs: 5000 })).status, 0);
      const missing = { user: "admin" };
      assert.equal((await plugins.call(name, { header: missing })).status, -1, name);
      const wrong = { user: "root", "x-team": "gateway" };
      assert.equal((await plugins.call(name, { header: wrong })).status, -1, name);
      assert.equal((await plugins.call(name, {})).status, -1, name);
      // Many calls on one connection, as a proxy makes them.
      const answers = await Promise.all(
        Array.from(
          { length: 200 },
          (_, i) => plugins.call(name, { header: i % 2 ? ok : missing }, { timeoutMs: 5000 }),
        ),
      );
      assert.deepEqual(answers.map((a) => a.status), answers.map((_, i) => i % 2 ? 0 : -1));
    }
  } finally {
    await plugins.stop();
  }
});

Deno.test("hello is answered hello <language> in all three languages", async () => {
  await setup("across_languages");
  const plugins = await managerFor("across_languages");
  const body = (s: string) => new TextEncoder().encode(s);
  try {
    await plugins.start();
    for (const language of LANGUAGES) {
      const name = `hello_${language}`;
      const r = await plugins.call(name, { body: body("hello") }, { timeoutMs: 5000 });
      assert.equal(r.status, 200, name);
      assert.equal(new TextDecoder().decode(r.body), `hello ${language}`);
      assert.equal(r.header["content-type"], "text/plain");
      assert.equal((await plugins.call(name, { body: body("bye") })).status, 0, name);
    }
  } finally {
    await plugins.stop();
  }
});

Deno.test("the Python and Java plugins exit within 2 s when their host is SIGKILLed", async () => {
  await setup("across_languages");
  const commands = {
    python: ["/usr/bin/python3", `${ROOT}examples/across_languages/python/hello.py`],
    java: ["sh", `${ROOT}examples/across_languages/java/hello.sh`],
  };
  for (const [language, command] of Object.entries(commands)) {
    const host = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--allow-all",
        "--no-lock",
        `${ROOT}tests/unit/plugin/fixtures/host.ts`,
        JSON.stringify(command),
      ],
      stdin: "null",
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    const lines = new LineReader(host.stdout);
    try {
      const pid = Number(await lines.next());
      assert.ok(pid > 0 && isAlive(pid), `the ${language} plugin runs`);
      host.kill("SIGKILL");
      const killedAt = Date.now();
      await host.status;
      await waitFor(() => !isAlive(pid), 5000, `the ${language} plugin to exit`);
      const gone = Date.now() - killedAt;
      assert.ok(gone < 2000, `the ${language} plugin exited ${gone} ms after its host`);
    } finally {
      try {
        host.kill("SIGKILL");
      } catch {
        // Already dead.
      }
      await host.status;
      await lines.cancel();
    }
  }
});
