// End to end: the real proxy (`deno run main.ts config.yaml`) with narrow flags, real
// upstreams, module filters from a file, from a local http server and in a sandbox.
import assert from "node:assert/strict";
import {
  type ProxyProcess,
  startProxy,
  startUpstream,
  type Upstream,
  writeConfig,
} from "../../helpers/proxy_process.ts";
import { type FilterListener, filterListenersYaml } from "../fixtures/mosaic_yaml.ts";

const SO_FILTER = new URL("../../../examples/so_filter/auth_filter.ts", import.meta.url).pathname;
const SO_DIR = new URL("../../../examples/so_filter/", import.meta.url).pathname;
const REPUTATION = new URL(
  "../../../examples/sandboxed_filter/reputation_filter.ts",
  import.meta.url,
).pathname;
const REPUTATION_DIR = new URL("../../../examples/sandboxed_filter/", import.meta.url).pathname;
const ENV = "--allow-env=LOG_TOKENS,LOG_STREAM";

/** A config with one listener per entry on 127.0.0.1:0, all routing to `upstream`. */
function config(listeners: FilterListener[], upstream: Upstream, extra = ""): string {
  return filterListenersYaml(listeners, upstream.address, extra);
}

function helloUpstream(): Upstream {
  return startUpstream((request) =>
    new Response(`hello ${request.headers.get("user") ?? "-"} ${request.headers.get("x-v") ?? ""}`)
  );
}

async function get(
  proxy: ProxyProcess,
  listener: string,
  headers: Record<string, string> = {},
): Promise<[number, string]> {
  const response = await fetch(`http://${proxy.listeners.get(listener)}/`, { headers });
  return [response.status, await response.text()];
}

async function withTempDir<T>(body: (dir: string) => Promise<T>): Promise<T> {
  const dir = await Deno.makeTempDir({ prefix: "mosaic-e2e-module-" });
  try {
    return await body(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("the so_filter example loads from a file under narrow flags", () =>
  withTempDir(async (dir) => {
    const upstream = helloUpstream();
    const file = await writeConfig(
      config([{
        name: "so",
        filters: `- type: module\n  module: ${SO_FILTER}\n  config: { User: admin }`,
      }], upstream),
      dir,
    );
    const proxy = await startProxy(file, {
      flags: ["--allow-net=127.0.0.1", `--allow-read=${dir},${SO_DIR}`, ENV],
    });
    try {
      assert.deepEqual(await get(proxy, "so"), [403, "Forbidden: header user must be admin\n"]);
      assert.deepEqual(await get(proxy, "so", { user: "guest" }), [
        403,
        "Forbidden: header user must be admin\n",
      ]);
      assert.deepEqual(await get(proxy, "so", { user: "admin" }), [200, "hello admin "]);
    } finally {
      await proxy.stop();
      await upstream.close();
    }
  }));

Deno.test("the so_filter example loads from a local http server, pinned", () =>
  withTempDir(async (dir) => {
    const upstream = helloUpstream();
    const source = await Deno.readFile(SO_FILTER);
    const server = Deno.serve(
      { hostname: "127.0.0.1", port: 0, onListen() {} },
      () => new Response(source, { headers: { "content-type": "application/typescript" } }),
    );
    const host = `127.0.0.1:${server.addr.port}`;
    const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", source));
    const integrity = `sha256-${btoa(String.fromCharCode(...digest))}`;
    const file = await writeConfig(
      config([{
        name: "so",
        filters: `- type: module\n  module: http://${host}/auth_filter.ts\n` +
          `  integrity: ${integrity}\n  config: { User: admin }`,
      }], upstream),
      dir,
    );
    // --no-lock: deno.lock must not collect the test server's random port.
    const proxy = await startProxy(file, {
      flags: [
        "--no-lock",
        "--allow-net=127.0.0.1",
        `--allow-read=${dir}`,
        `--allow-import=${host}`,
        ENV,
      ],
    });
    try {
      assert.deepEqual((await get(proxy, "so"))[0], 403);
      assert.deepEqual(await get(proxy, "so", { user: "admin" }), [200, "hello admin "]);
    } finally {
      await proxy.stop();
      await upstream.close();
      await server.shutdown();
    }
  }));

Deno.test("start-up stops with the flag to add when the module is outside --allow-read", () =>
  withTempDir(async (dir) => {
    const upstream = helloUpstream();
    const file = await writeConfig(
      config([{ name: "so", filters: `- type: module\n  module: ${SO_FILTER}` }], upstream),
      dir,
    );
    const proxy = await startProxy(file, {
      flags: ["--allow-net=127.0.0.1", `--allow-read=${dir}`, ENV],
      args: ["run"],
    });
    try {
      const status = await proxy.status;
      assert.equal(status.code, 1);
      assert.match(
        proxy.output(),
        new RegExp(
          `cannot load filter module file://${SO_FILTER} \\(export "createStreamFilterFactory"\\): ` +
            `Deno denied it \\(Requires read access to "${SO_FILTER}"\\); run Mosaic with --allow-read=${SO_FILTER}`,
        ),
      );
      assert.doesNotMatch(proxy.output(), /Listener so on/);
    } finally {
      await upstream.close();
    }
  }));

Deno.test("a sandboxed filter denied the network follows failure_mode; granted, it works", () =>
  withTempDir(async (dir) => {
    const upstream = helloUpstream();
    const service = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (request) => {
      const user = new URL(request.url).searchParams.get("user");
      return new Response(user === "mallory" ? "deny\n" : "allow\n");
    });
    const serviceHost = `127.0.0.1:${service.addr.port}`;
    const reputation = (failureMode: string, net: string) =>
      `- type: module\n  name: reputation\n  module: ${REPUTATION}\n  failure_mode: ${failureMode}\n` +
      `  sandbox: { permissions: { net: ${net} }, timeout: 2s }\n` +
      `  config: { service: "http://${serviceHost}/check" }`;
    const file = await writeConfig(
      config([
        { name: "closed", filters: reputation("closed", "false") },
        { name: "open", filters: reputation("open", "false") },
        { name: "granted", filters: reputation("closed", `["${serviceHost}"]`) },
      ], upstream),
      dir,
    );
    const proxy = await startProxy(file, {
      flags: ["--allow-net=127.0.0.1", `--allow-read=${dir},${REPUTATION_DIR}`, ENV],
    });
    try {
      assert.deepEqual(await get(proxy, "closed", { user: "alice" }), [500, "filter failed\n"]);
      assert.deepEqual(await get(proxy, "open", { user: "mallory" }), [200, "hello mallory "]);
      assert.deepEqual(await get(proxy, "granted", { user: "alice" }), [200, "hello alice "]);
      assert.deepEqual(await get(proxy, "granted", { user: "mallory" }), [
        403,
        "Forbidden by the reputation service\n",
      ]);
      await proxy.waitForOutput("failure_mode open lets the request continue");
      assert.match(
        proxy.output(),
        new RegExp(
          `Filter "reputation" failed \\(NotCapable: Requires net access to "${serviceHost}" \\(not granted by the filter's sandbox.permissions\\)\\); answering 500`,
        ),
      );
    } finally {
      await proxy.stop();
      await upstream.close();
      await service.shutdown();
    }
  }));

Deno.test("a sandboxed filter past its timeout follows failure_mode and its stuck Worker is replaced", () =>
  withTempDir(async (dir) => {
    const upstream = helloUpstream();
    const module = `${dir}/slow.js`;
    await Deno.writeTextFile(
      module,
      `export function createStreamFilterFactory() {
  return { createFilterChain(chain) { chain.addReceiver({ onReceive(s) {
    const spin = Number(s.headers.get("x-spin") ?? 0);
    const end = Date.now() + spin;
    while (Date.now() < end) { /* stuck */ }
    return "continue";
  } }, "before_route"); } };
}
`,
    );
    const file = await writeConfig(
      config([{
        name: "slow",
        filters:
          `- type: module\n  module: ${module}\n  sandbox: { permissions: {}, timeout: 300ms }`,
      }], upstream),
      dir,
    );
    const proxy = await startProxy(file, {
      flags: ["--allow-net=127.0.0.1", `--allow-read=${dir}`, ENV],
    });
    try {
      assert.deepEqual(await get(proxy, "slow", { "x-spin": "2000" }), [500, "filter failed\n"]);
      await proxy.waitForOutput("a new Worker replaces it");
      assert.match(
        proxy.output(),
        new RegExp(
          `\\(module file://${module}\\): its Worker did not answer a call nor a ping within 300 ms; ` +
            `it was terminated and a new Worker replaces it. Deno cannot stop a Worker that spins in a loop`,
        ),
      );
      assert.deepEqual(await get(proxy, "slow"), [200, "hello - "]);
    } finally {
      await proxy.stop();
      await upstream.close();
    }
  }));

/** Sends requests one after another until `stop` resolves; counts failures. */
async function requestLoop(
  proxy: ProxyProcess,
  listener: string,
  stop: Promise<void>,
  seen: (body: string) => void,
): Promise<{ ok: number; failed: string[] }> {
  let stopped = false;
  stop.then(() => stopped = true);
  const result = { ok: 0, failed: [] as string[] };
  const deadline = Date.now() + 120_000;
  while (!stopped && Date.now() < deadline) {
    try {
      const [status, body] = await get(proxy, listener);
      if (status === 200) {
        result.ok++;
        seen(body);
      } else result.failed.push(`${status} ${body}`);
    } catch (error) {
      result.failed.push(String(error));
    }
  }
  return result;
}

for (const sandboxed of [false, true]) {
  Deno.test(`SIGHUP swaps a changed ${sandboxed ? "sandboxed " : ""}module with no failed request over 20 reloads`, () =>
    withTempDir(async (dir) => {
      const upstream = helloUpstream();
      const module = `${dir}/versioned.js`;
      const writeVersion = (v: number) =>
        Deno.writeTextFile(
          module,
          `export function createStreamFilterFactory() {
  return { createFilterChain(chain) { chain.addReceiver({ onReceive(s) {
    s.headers.set("x-v", "v${v}");
    return "continue";
  } }, "before_route"); } };
}
`,
        );
      await writeVersion(0);
      const sandbox = sandboxed ? "\n  sandbox: { permissions: {} }" : "";
      const file = await writeConfig(
        config(
          [{ name: "live", filters: `- type: module\n  module: ./versioned.js${sandbox}` }],
          upstream,
          // Old generations are disposed 1 s after a reload (their Workers with them).
          "drain_timeout: 1s\n",
        ),
        dir,
      );
      const proxy = await startProxy(file, {
        flags: ["--allow-net=127.0.0.1", `--allow-read=${dir}`, ENV],
      });
      const stop = Promise.withResolvers<void>();
      let latest = "";
      const loops = [0, 1].map(() =>
        requestLoop(proxy, "live", stop.promise, (body) => latest = body)
      );
      try {
        for (let v = 1; v <= 20; v++) {
          await writeVersion(v);
          proxy.kill("SIGHUP");
          const reloads = () => proxy.output().match(/Reloaded /g)?.length ?? 0;
          const deadline = Date.now() + 20_000;
          while (reloads() < v && Date.now() < deadline) {
            await new Promise((resolve) => setTimeout(resolve, 20));
          }
          assert.equal(reloads(), v, proxy.output());
          // New requests see the new version once the reload is done.
          const deadlineSeen = Date.now() + 5_000;
          while (latest !== `hello - v${v}` && Date.now() < deadlineSeen) {
            await new Promise((resolve) => setTimeout(resolve, 10));
          }
          assert.equal(latest, `hello - v${v}`);
        }
      } finally {
        stop.resolve();
        const results = await Promise.all(loops);
        await proxy.stop();
        await upstream.close();
        const failed = results.flatMap((r) => r.failed);
        assert.deepEqual(failed, [], `failed requests:\n${failed.join("\n")}`);
        assert.ok(results.every((r) => r.ok > 20), JSON.stringify(results.map((r) => r.ok)));
      }
    }));
}
