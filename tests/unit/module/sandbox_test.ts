import assert from "node:assert/strict";
import type { StreamFilterConfig } from "../../../src/config/types.ts";
import { ModuleLoadError } from "../../../src/module/errors.ts";
import { loadFilterModule } from "../../../src/module/loader.ts";
import { createInProcessProxy, type InProcessProxy } from "../../../src/proxy/in_process.ts";
import { withLogCapture } from "../../helpers/log_capture.ts";
import {
  closedPort,
  factoryContext,
  moduleFilter,
  sandbox,
  tempDir,
  withModuleProxy,
  writeModule,
} from "./helpers.ts";

const FILTER = new URL("./fixtures/sandbox_filter.js", import.meta.url).href;

function withSandbox(
  options: {
    permissions?: Record<string, unknown>;
    timeoutMs?: number;
    failureMode?: "open" | "closed";
  },
  body: (proxy: InProcessProxy) => Promise<void>,
): Promise<void> {
  return withModuleProxy({
    name: "sandboxed",
    module: FILTER,
    failureMode: options.failureMode,
    sandbox: sandbox(options.permissions ?? {}, options.timeoutMs ?? 5000),
    upstreamPath: true,
  }, body);
}

Deno.test("a sandboxed filter runs with exactly its permissions", () =>
  withSandbox({}, async (proxy) => {
    const response = await proxy.request("/");
    await response.body?.cancel();
    assert.equal(response.status, 200);
    // Denied: "prompt" when Deno runs without a terminal to ask on, never "granted".
    assert.notEqual(response.headers.get("x-sandbox-net"), "granted");
  }));

Deno.test("a sandboxed filter rewrites the path and sets the response status", () =>
  withSandbox({}, async (proxy) => {
    const response = await proxy.request("/old", {
      headers: { "x-path": "/new", "x-status": "202" },
    });
    assert.equal(response.status, 202);
    assert.equal((await response.json()).path, "/new");
  }));

Deno.test("a sandboxed filter denies with respond(): status, headers and body", () =>
  withSandbox({}, async (proxy) => {
    const response = await proxy.request("/", { headers: { "x-deny": "1" } });
    assert.equal(response.status, 403);
    assert.equal(response.headers.get("x-denied-by"), "sandbox");
    assert.equal(await response.text(), "denied in a Worker");
  }));

Deno.test("a sandboxed filter reads the body on demand, within a limit", () =>
  withSandbox({}, async (proxy) => {
    const ok = await proxy.request("/", {
      method: "POST",
      headers: { "x-body-limit": "100" },
      body: "twelve bytes",
    });
    assert.equal((await ok.json()).body, "12 bytes");
    const big = await proxy.request("/", {
      method: "POST",
      headers: { "x-body-limit": "4" },
      body: "twelve bytes",
    });
    assert.equal(big.status, 413);
    assert.equal(await big.text(), "BodyTooLargeError");
  }));

Deno.test("a sandboxed filter's log lines and plugin calls go through the host", () =>
  withLogCapture(async (lines) => {
    await withSandbox({}, async (proxy) => {
      const response = await proxy.request("/", {
        headers: { "x-log": "hello from the Worker", "x-plugin": "checker" },
      });
      assert.equal((await response.json()).headers["x-plugin-status"], "7");
    });
    assert.ok(
      lines.some((line) => line === "info mosaic.filter.sandboxed: hello from the Worker"),
      lines.join("\n"),
    );
  }));

Deno.test("a fetch the sandbox denies is NotCapable and answers 500 under failure_mode closed", () =>
  withLogCapture(async (lines) => {
    await withSandbox({}, async (proxy) => {
      const url = `http://127.0.0.1:${closedPort()}/`;
      const response = await proxy.request("/", { headers: { "x-fetch": url } });
      await response.body?.cancel();
      assert.equal(response.status, 500);
    });
    assert.ok(
      lines.some((line) =>
        line.includes('Filter "sandboxed" failed (NotCapable: Requires net access to "127.0.0.1:')
      ),
      lines.join("\n"),
    );
  }));

Deno.test("a fetch the sandbox denies lets the request through under failure_mode open", () =>
  withSandbox({ failureMode: "open" }, async (proxy) => {
    const url = `http://127.0.0.1:${closedPort()}/`;
    const response = await proxy.request("/", { headers: { "x-fetch": url } });
    assert.equal(response.status, 200);
    assert.equal((await response.json()).path, "/");
  }));

Deno.test("a sandbox reads inside its read grant and gets NotCapable outside it", async () => {
  await using granted = await tempDir();
  await using outside = await tempDir();
  await Deno.writeTextFile(`${granted.path}/ok.txt`, "inside");
  await Deno.writeTextFile(`${outside.path}/secret.txt`, "secret");
  await withLogCapture(async (lines) => {
    await withSandbox({ permissions: { read: [granted.path] } }, async (proxy) => {
      const inside = await proxy.request("/", { headers: { "x-read": `${granted.path}/ok.txt` } });
      await inside.body?.cancel();
      assert.equal(inside.headers.get("x-read"), "inside");
      const denied = await proxy.request("/", {
        headers: { "x-read": `${outside.path}/secret.txt` },
      });
      assert.equal(denied.status, 500);
      assert.equal(await denied.text(), "filter failed\n");
    });
    assert.ok(
      lines.some((line) => line.includes(`NotCapable: Requires read access to "${outside.path}`)),
      lines.join("\n"),
    );
  });
});

Deno.test("a call past its timeout fails under failure_mode; a live Worker is kept", () =>
  withLogCapture(async (lines) => {
    await withSandbox({ timeoutMs: 300, failureMode: "closed" }, async (proxy) => {
      const started = performance.now();
      const hung = await proxy.request("/", { headers: { "x-hang": "1" } });
      await hung.body?.cancel();
      assert.equal(hung.status, 500);
      assert.ok(performance.now() - started >= 290);
      const next = await proxy.request("/");
      await next.body?.cancel();
      assert.equal(next.status, 200);
    });
    assert.ok(lines.some((line) => line.includes("SandboxTimeoutError")), lines.join("\n"));
    assert.ok(!lines.some((line) => line.includes("replaces it")), lines.join("\n"));
  }));

Deno.test("a call past its timeout lets the request through under failure_mode open", () =>
  withSandbox({ timeoutMs: 300, failureMode: "open" }, async (proxy) => {
    const response = await proxy.request("/", { headers: { "x-hang": "1" } });
    await response.body?.cancel();
    assert.equal(response.status, 200);
  }));

Deno.test("a Worker stuck in a loop is replaced and reported with its module URL", () =>
  withLogCapture(async (lines) => {
    await withSandbox({ timeoutMs: 300 }, async (proxy) => {
      // Spins for 2 s: long enough to miss the call and the ping, short enough that the
      // cut-off thread ends soon after the test.
      const stuck = await proxy.request("/", { headers: { "x-spin": "2000" } });
      await stuck.body?.cancel();
      assert.equal(stuck.status, 500);
      const deadline = Date.now() + 10_000;
      while (!lines.some((line) => line.includes("replaces it")) && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      const next = await proxy.request("/", { headers: { "x-deny": "1" } });
      await next.body?.cancel();
      assert.equal(next.status, 403, "a fresh Worker answers");
    });
    const report = lines.find((line) => line.includes("replaces it"));
    assert.ok(report !== undefined, lines.join("\n"));
    assert.ok(report.includes(`(module ${FILTER})`), report);
    assert.ok(report.includes("Deno cannot stop a Worker that spins in a loop"), report);
  }));

async function loadSandboxError(module: string): Promise<ModuleLoadError> {
  const error = await loadFilterModule(moduleFilter(module, { sandbox: sandbox() })).then(
    () => undefined,
    (error) => error,
  );
  assert.ok(error instanceof ModuleLoadError, `expected a ModuleLoadError, got ${error}`);
  assert.ok(error.message.includes(`cannot load filter module ${module} (export "`), error.message);
  return error;
}

Deno.test("a sandboxed module's syntax error names the module", async () => {
  await using dir = await tempDir();
  const url = await writeModule(dir.path, "bad.js", "export const x = ;\n");
  const error = await loadSandboxError(url);
  assert.match(error.reason, /^syntax error: Expression expected/);
});

Deno.test("a sandboxed module without the export lists its exports", async () => {
  await using dir = await tempDir();
  const url = await writeModule(dir.path, "other.js", "export const a = 1;\n");
  const error = await loadSandboxError(url);
  assert.equal(
    error.reason,
    'the module has no export "createStreamFilterFactory" (it exports: a)',
  );
});

Deno.test("a sandboxed module's factory that throws is reported with the module URL", async () => {
  await using dir = await tempDir();
  const url = await writeModule(
    dir.path,
    "strict.js",
    'export function createStreamFilterFactory() { throw new TypeError("User must be set"); }\n',
  );
  const filter: StreamFilterConfig = moduleFilter(url, { sandbox: sandbox() });
  const create = await loadFilterModule(filter);
  await assert.rejects(() => Promise.resolve(create({}, factoryContext())), {
    message:
      `the factory createStreamFilterFactory of module ${url} in its sandbox failed: TypeError: User must be set`,
  });
});

Deno.test("a sandboxed module that evaluates a denied operation fails to load", async () => {
  await using dir = await tempDir();
  const url = await writeModule(
    dir.path,
    "eager.js",
    'export const host = Deno.env.get("HOME");\nexport function createStreamFilterFactory() {}\n',
  );
  const error = await loadSandboxError(url);
  assert.match(error.reason, /Requires env access to "HOME"/);
  assert.match(error.reason, /run Mosaic with --allow-env=HOME$/);
});

Deno.test("a sandboxed stream keeps its instances from the first call to its last", async () => {
  await using dir = await tempDir();
  // Per-stream state shared by a receiver and a sender, and no onDestroy: the Worker
  // forgets the stream only after its sender ran.
  const url = await writeModule(
    dir.path,
    "stateful.js",
    `export function createStreamFilterFactory() {
  return { createFilterChain(chain) {
    let seen = "";
    chain.addReceiver({ onReceive(s) { seen = s.headers.get("x-id"); return "continue"; } }, "before_route");
    chain.addReceiver({ onReceive(s) { s.headers.set("x-after-route", seen); return "continue"; } }, "after_route");
    chain.addSender({ append(s) { s.headers.set("x-seen", seen); return "continue"; } });
  } };
}
`,
  );
  const proxy = await createInProcessProxy({
    streamFilters: [{ type: "module", name: "stateful", module: url, sandbox: sandbox() }],
    resolveModule: loadFilterModule,
    upstream: (request) => new Response(request.headers.get("x-after-route")),
  });
  try {
    const responses = await Promise.all(
      Array.from({ length: 20 }, (_, i) => proxy.request("/", { headers: { "x-id": `${i}` } })),
    );
    for (const [i, response] of responses.entries()) {
      assert.equal(response.headers.get("x-seen"), `${i}`);
      assert.equal(await response.text(), `${i}`);
    }
  } finally {
    await proxy.close();
  }
});

Deno.test("concurrent calls of a sandboxed filter all answer, none waits behind one that waits", () =>
  withSandbox({}, async (proxy) => {
    // One call waits for a body the client holds back: the host keeps one batch in
    // flight to the Worker, and a call waiting on the host must not hold up the rest.
    const held = Promise.withResolvers<void>();
    const slow = proxy.request("/", {
      method: "POST",
      headers: { "x-body-limit": "100" },
      body: new ReadableStream<Uint8Array>({
        async pull(controller) {
          await held.promise;
          controller.enqueue(new TextEncoder().encode("late"));
          controller.close();
        },
      }),
    });
    const paths = Array.from({ length: 200 }, (_, i) => `/p${i}`);
    const answers = await Promise.all(paths.map(async (path, i) => {
      const response = await proxy.request("/", {
        headers: i % 2 === 0 ? { "x-path": path } : { "x-deny": "1" },
      });
      return i % 2 === 0 ? (await response.json()).path : `${response.status}`;
    }));
    assert.deepEqual(answers, paths.map((path, i) => i % 2 === 0 ? path : "403"));
    held.resolve();
    assert.equal((await (await slow).json()).body, "4 bytes");
  }));
