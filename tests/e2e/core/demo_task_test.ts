/**
 * `npm start` (the demo: the example upstream and the proxy) stops both on SIGTERM to
 * its parent, and a proxy that dies takes the upstream with it.
 *
 * The demo's ports (2046, 8080, admin 34901) may be taken on a machine running tests,
 * so it runs as `npm start` with MOSAIC_DEMO_CONFIG (the example config with its ports
 * moved to free ones) and MOSAIC_DEMO_UPSTREAM_PORT: the same script, never skipped.
 */
import assert from "node:assert/strict";
import { freePort } from "../../helpers/proxy_process.ts";

const ROOT = new URL("../../../", import.meta.url).pathname;
const EXAMPLE = `${ROOT}examples/simple_streamfilter/config.yaml`;

async function answers(port: number): Promise<boolean> {
  try {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    conn.close();
    return true;
  } catch {
    return false;
  }
}

async function until(what: string, ok: () => Promise<boolean>, timeoutMs: number) {
  const deadline = Date.now() + timeoutMs;
  while (!(await ok())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Waits until the demo's proxy and upstream listen; fails at once if npm start exited. */
async function listening(
  run: { proxy: number; upstream: number; exited(): boolean; output(): string },
) {
  await until("the proxy and upstream listen", async () => {
    if (run.exited()) throw new Error(`npm start exited:\n${run.output()}`);
    return (await answers(run.proxy)) && (await answers(run.upstream));
  }, 20_000);
}

/** The example config with its three ports replaced; each must have been there. */
function movedConfig(text: string, replacements: Record<string, string>): string {
  for (const [from, to] of Object.entries(replacements)) {
    assert.ok(text.includes(from), `the example config has ${from}`);
    text = text.replaceAll(from, to);
  }
  return text;
}

/** The pid of the proxy the demo started: the process running main.ts on `config`. */
async function proxyPid(config: string): Promise<number> {
  for await (const entry of Deno.readDir("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    let args: string[];
    try {
      args = (await Deno.readTextFile(`/proc/${entry.name}/cmdline`)).split("\0");
    } catch {
      continue; // gone meanwhile
    }
    if (args.includes("main.ts") && args.includes(config)) return Number(entry.name);
  }
  throw new Error(`no process runs main.ts ${config}`);
}

async function demo(): Promise<
  {
    npm: Deno.ChildProcess;
    status: Promise<Deno.CommandStatus>;
    output(): string;
    exited(): boolean;
    config: string;
    proxy: number;
    upstream: number;
  } & AsyncDisposable
> {
  const [proxy, upstream, admin] = [freePort(), freePort(), freePort()];
  const dir = await Deno.makeTempDir({ prefix: "mosaic-demo-" });
  const config = `${dir}/config.yaml`;
  await Deno.writeTextFile(
    config,
    movedConfig(await Deno.readTextFile(EXAMPLE), {
      "127.0.0.1:2046": `127.0.0.1:${proxy}`,
      "127.0.0.1:8080": `127.0.0.1:${upstream}`,
      "port_value: 34901": `port_value: ${admin}`,
    }),
  );
  const npm = new Deno.Command("npm", {
    args: ["start", "--silent"],
    cwd: ROOT,
    env: { MOSAIC_DEMO_CONFIG: config, MOSAIC_DEMO_UPSTREAM_PORT: String(upstream) },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let output = "";
  let exited = false;
  const collect = async (stream: ReadableStream<Uint8Array>) => {
    for await (const chunk of stream.pipeThrough(new TextDecoderStream())) output += chunk;
  };
  const collected = Promise.all([collect(npm.stdout), collect(npm.stderr)]);
  const status = npm.status.then(async (s) => {
    await collected;
    exited = true;
    return s;
  });
  return {
    npm,
    status,
    output: () => output,
    exited: () => exited,
    config,
    proxy,
    upstream,
    [Symbol.asyncDispose]: async () => {
      try {
        npm.kill("SIGKILL");
      } catch { /* gone */ }
      await status;
      await Deno.remove(dir, { recursive: true });
    },
  };
}

Deno.test("npm start stops the proxy and the upstream on SIGTERM to npm", async () => {
  await using run = await demo();
  await listening(run);
  const denied = await fetch(`http://127.0.0.1:${run.proxy}/`);
  assert.equal(denied.status, 403);
  await denied.body?.cancel();
  const response = await fetch(`http://127.0.0.1:${run.proxy}/`, { headers: { User: "admin" } });
  assert.deepEqual(
    [response.status, await response.text()],
    [200, `Hello from the upstream on ${run.upstream}: GET / (User: admin)\n`],
  );
  run.npm.kill("SIGTERM");
  await until(
    "both are gone",
    async () => !(await answers(run.proxy)) && !(await answers(run.upstream)),
    15_000,
  );
});

Deno.test("npm start takes the upstream down when the proxy is killed", async () => {
  await using run = await demo();
  await listening(run);
  Deno.kill(await proxyPid(run.config), "SIGKILL");
  await until("the upstream is gone", async () => !(await answers(run.upstream)), 15_000);
  const status = await run.status;
  assert.notEqual(status.code, 0, "npm start reports the proxy's death");
});
