import assert from "node:assert/strict";
import type { SandboxConfig } from "../../../src/config/types.ts";
import { ModuleLoadError } from "../../../src/module/errors.ts";
import { loadFilterModule } from "../../../src/module/loader.ts";
import type { InProcessProxy } from "../../../src/proxy/in_process.ts";
import { withLogCapture } from "../../helpers/log_capture.ts";
import { isAlive, waitFor } from "../plugin/helpers.ts";
import { factoryContext, moduleFilter, tempDir, withModuleProxy, writeModule } from "./helpers.ts";

const FILTER = new URL("./fixtures/process_filter.js", import.meta.url).href;

function processSandbox(
  permissions: Record<string, unknown> = {},
  timeoutMs = 5000,
): SandboxConfig {
  return { isolation: "process", permissions, timeoutMs };
}

function withSandbox(
  options: {
    permissions?: Record<string, unknown>;
    timeoutMs?: number;
    failureMode?: "open" | "closed";
    module?: string;
  },
  body: (proxy: InProcessProxy) => Promise<void>,
): Promise<void> {
  return withModuleProxy({
    name: "boxed",
    module: options.module ?? FILTER,
    failureMode: options.failureMode,
    sandbox: processSandbox(options.permissions, options.timeoutMs),
  }, body);
}

/** Sends a request and returns its status, the sandbox's pid header and the body text. */
async function send(
  proxy: InProcessProxy,
  headers: Record<string, string> = {},
  init: RequestInit = {},
): Promise<{ status: number; pid: number; text: string; headers: Headers }> {
  const response = await proxy.request("/", { ...init, headers });
  const text = await response.text();
  return {
    status: response.status,
    pid: Number(response.headers.get("x-sandbox-pid")),
    text,
    headers: response.headers,
  };
}

Deno.test("a process-sandboxed filter runs in its own process with exactly its permissions", () =>
  withSandbox({}, async (proxy) => {
    const response = await send(proxy);
    assert.equal(response.status, 200);
    assert.ok(response.pid > 0 && response.pid !== Deno.pid, `pid ${response.pid}`);
    assert.ok(isAlive(response.pid));
    // Not granted: "prompt" (the child runs with --no-prompt, so it is never asked).
    assert.equal(response.headers.get("x-sandbox-net"), "prompt");
    // The read grant on its own folder, needed to import it, was dropped after loading.
    assert.equal(response.headers.get("x-sandbox-read-self"), "prompt");
    const again = await send(proxy);
    assert.equal(again.pid, response.pid, "one process serves every stream");
  }));

Deno.test("a process sandbox reads inside its grant and gets NotCapable outside it", async () => {
  await using granted = await tempDir();
  await using outside = await tempDir();
  await Deno.writeTextFile(`${granted.path}/ok.txt`, "inside");
  await Deno.writeTextFile(`${outside.path}/secret.txt`, "secret");
  await withLogCapture(async (lines) => {
    await withSandbox({ permissions: { read: [granted.path] } }, async (proxy) => {
      const inside = await send(proxy, { "x-read": `${granted.path}/ok.txt` });
      assert.deepEqual([inside.status, inside.text], [200, "inside"]);
      const denied = await send(proxy, { "x-read": `${outside.path}/secret.txt` });
      assert.deepEqual([denied.status, denied.text], [500, "filter failed\n"]);
    });
    assert.ok(
      lines.some((line) =>
        line.includes(`NotCapable: Requires read access to "${outside.path}/secret.txt"`)
      ),
      lines.join("\n"),
    );
  });
});

Deno.test("a process sandbox granted no read cannot read outside it; failure_mode open goes on", async () => {
  await using outside = await tempDir();
  await Deno.writeTextFile(`${outside.path}/secret.txt`, "secret");
  await withSandbox({ failureMode: "open" }, async (proxy) => {
    const response = await send(proxy, { "x-read": `${outside.path}/secret.txt` });
    // The upstream answered (it echoes the request as JSON), not the filter.
    assert.equal(response.status, 200);
    assert.equal(JSON.parse(response.text).headers["x-read"], `${outside.path}/secret.txt`);
  });
});

Deno.test("a process sandbox's import() is checked against its own permissions, not Mosaic's", async () => {
  // The test process runs with --allow-all: a Worker's import() would load this file.
  await using outside = await tempDir();
  const secret = await writeModule(outside.path, "secret.js", 'export const value = "secret";\n');
  await withLogCapture(async (lines) => {
    await withSandbox({}, async (proxy) => {
      const denied = await send(proxy, { "x-import": secret });
      assert.deepEqual([denied.status, denied.text], [500, "filter failed\n"]);
    });
    assert.ok(
      lines.some((line) =>
        line.includes(`Requires read access to "${outside.path}/secret.js"`) &&
        line.includes('Filter "boxed" failed')
      ),
      lines.join("\n"),
    );
    // Granted, the same import works: the denial came from the sandbox's permissions.
    await withSandbox({ permissions: { read: [outside.path] } }, async (proxy) => {
      const allowed = await send(proxy, { "x-import": secret });
      assert.deepEqual([allowed.status, allowed.text], [200, "secret"]);
    });
  });
  await withSandbox({ failureMode: "open" }, async (proxy) => {
    const open = await send(proxy, { "x-import": secret });
    assert.equal(open.status, 200);
    assert.notEqual(open.text, "secret");
  });
});

Deno.test("a module spinning in a loop is killed on its timeout and the next request works", () =>
  withLogCapture(async (lines) => {
    await withSandbox({ timeoutMs: 300 }, async (proxy) => {
      const before = await send(proxy);
      assert.equal(before.status, 200);
      const started = performance.now();
      const stuck = await send(proxy, { "x-spin": "1" });
      assert.equal(stuck.status, 500);
      assert.ok(performance.now() - started >= 290);
      await waitFor(() => !isAlive(before.pid), 10_000, "the spinning process to be killed");
      await waitFor(
        () => lines.some((line) => line.includes("a new process (pid")),
        20_000,
        "the replacement process",
      );
      const next = await send(proxy);
      assert.equal(next.status, 200, "a fresh process answers");
      assert.notEqual(next.pid, before.pid);
    });
    const report = lines.find((line) => line.includes("did not answer a call nor a ping"));
    assert.ok(report !== undefined, lines.join("\n"));
    assert.ok(report.includes(`(module ${FILTER})`), report);
    assert.ok(report.includes("killed (SIGKILL)"), report);
    assert.ok(lines.some((line) => line.includes("SandboxTimeoutError")), lines.join("\n"));
  }));

Deno.test("a call that is only slow times out under failure_mode; its process is kept", () =>
  withLogCapture(async (lines) => {
    await withSandbox({ timeoutMs: 300, failureMode: "open" }, async (proxy) => {
      const first = await send(proxy);
      const hung = await send(proxy, { "x-hang": "1" });
      assert.equal(hung.status, 200, "failure_mode open lets it through");
      // Give the ping time to be answered, then check nothing was replaced.
      await new Promise((resolve) => setTimeout(resolve, 500));
      const next = await send(proxy);
      assert.equal(next.pid, first.pid);
    });
    assert.ok(!lines.some((line) => line.includes("replaces it")), lines.join("\n"));
  }));

Deno.test("a process that exits is restarted with a growing backoff", () =>
  withLogCapture(async (lines) => {
    await withSandbox({}, async (proxy) => {
      const pids = new Set<number>();
      for (let crash = 0; crash < 3; crash++) {
        const before = await send(proxy);
        assert.equal(before.status, 200);
        pids.add(before.pid);
        const crashed = await send(proxy, { "x-exit": "3" });
        assert.equal(crashed.status, 500);
        const restarted = crash + 1;
        await waitFor(
          () => lines.filter((line) => line.includes("a new process (pid")).length >= restarted,
          20_000,
          `restart ${restarted}`,
        );
      }
      const last = await send(proxy);
      assert.equal(last.status, 200);
      pids.add(last.pid);
      assert.equal(pids.size, 4, "every crash got a new process");
    });
    const delays = lines.filter((line) => line.includes("replaces it")).map((line) =>
      Number(/started in (\d+) ms/.exec(line)?.[1])
    );
    assert.deepEqual(delays, [0, 100, 200], lines.join("\n"));
  }));

Deno.test("a process-sandboxed filter logs, reads the body on demand and calls plugins through the host", () =>
  withLogCapture(async (lines) => {
    await withSandbox({}, async (proxy) => {
      const logged = await send(proxy, {
        "x-log": "hello from the child",
        "x-stdout": "written to stdout",
        "x-plugin": "checker",
      });
      assert.equal(JSON.parse(logged.text).headers["x-plugin-status"], "7");
      const ok = await send(proxy, { "x-body-limit": "100" }, {
        method: "POST",
        body: "twelve bytes",
      });
      assert.equal(JSON.parse(ok.text).body, "12 bytes");
      const big = await send(proxy, { "x-body-limit": "4" }, {
        method: "POST",
        body: "twelve bytes",
      });
      assert.deepEqual([big.status, big.text], [413, "BodyTooLargeError"]);
      await waitFor(
        () => lines.some((line) => line.endsWith("written to stdout")),
        5000,
        "the stdout line in the log",
      );
    });
    assert.ok(
      lines.includes("info mosaic.filter.boxed: hello from the child"),
      lines.join("\n"),
    );
    assert.ok(
      lines.includes("info mosaic.filter.boxed: written to stdout"),
      lines.join("\n"),
    );
  }));

Deno.test("a module that writes raw bytes to file descriptor 1 is killed and replaced", () =>
  withLogCapture(async (lines) => {
    await withSandbox({}, async (proxy) => {
      const before = await send(proxy);
      const broken = await send(proxy, { "x-raw-stdout": "1" });
      assert.equal(broken.status, 500);
      await waitFor(
        () => lines.some((line) => line.includes("a new process (pid")),
        20_000,
        "the replacement process",
      );
      const next = await send(proxy);
      assert.equal(next.status, 200);
      assert.notEqual(next.pid, before.pid);
    });
    assert.ok(
      lines.some((line) => line.includes("broke its stdout channel")),
      lines.join("\n"),
    );
  }));

async function loadError(module: string, permissions: Record<string, unknown> = {}) {
  const error = await loadFilterModule(
    moduleFilter(module, { sandbox: processSandbox(permissions) }),
  )
    .then(() => undefined, (error) => error);
  assert.ok(error instanceof ModuleLoadError, `expected a ModuleLoadError, got ${error}`);
  assert.ok(error.message.includes(`cannot load filter module ${module} (export "`), error.message);
  return error;
}

Deno.test("a process-sandboxed module's load failures name the module and the cause", async () => {
  await using dir = await tempDir();
  await using other = await tempDir();
  const syntax = await writeModule(dir.path, "bad.js", "export const x = ;\n");
  assert.match((await loadError(syntax)).reason, /^syntax error: /);
  const noExport = await writeModule(dir.path, "other.js", "export const a = 1;\n");
  assert.equal(
    (await loadError(noExport)).reason,
    'the module has no export "createStreamFilterFactory" (it exports: a)',
  );
  // A static import outside the module's folder is checked against the sandbox too.
  await writeModule(other.path, "shared.js", "export const shared = 1;\n");
  const importer = await writeModule(
    dir.path,
    "importer.js",
    `import { shared } from ${
      JSON.stringify(`${other.path}/shared.js`)
    };\nexport function createStreamFilterFactory() { return shared; }\n`,
  );
  assert.equal(
    (await loadError(importer)).reason,
    `the sandbox process was denied read access to "${other.path}/shared.js" while loading it; grant it in sandbox.permissions (read: ["${other.path}/shared.js"])`,
  );
  const eager = await writeModule(
    dir.path,
    "eager.js",
    'export const home = Deno.env.get("HOME");\nexport function createStreamFilterFactory() {}\n',
  );
  assert.match((await loadError(eager)).reason, /denied env access to "HOME"/);
});

Deno.test("a process-sandboxed module's factory that throws is reported with the module URL", async () => {
  await using dir = await tempDir();
  const url = await writeModule(
    dir.path,
    "strict.js",
    'export function createStreamFilterFactory() { throw new TypeError("User must be set"); }\n',
  );
  const create = await loadFilterModule(moduleFilter(url, { sandbox: processSandbox() }));
  await assert.rejects(() => Promise.resolve(create({}, factoryContext())), {
    message:
      `the factory createStreamFilterFactory of module ${url} in its sandbox process failed: TypeError: User must be set`,
  });
});

Deno.test("a process sandbox exits within 2 s when Mosaic is SIGKILLed", async () => {
  const host = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-all",
      "--no-lock",
      new URL("./fixtures/process_host.ts", import.meta.url).pathname,
      FILTER,
    ],
    stdin: "null",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = host.stdout.pipeThrough(new TextDecoderStream()).getReader();
  try {
    let text = "";
    while (!text.includes("\n")) {
      const { value, done } = await reader.read();
      if (done) break;
      text += value;
    }
    const pid = Number(text.trim());
    assert.ok(pid > 0 && isAlive(pid), `the sandbox process runs (${JSON.stringify(text)})`);
    host.kill("SIGKILL");
    const killedAt = Date.now();
    await host.status;
    await waitFor(() => !isAlive(pid), 5000, "the sandbox process to exit");
    const gone = Date.now() - killedAt;
    assert.ok(gone < 2000, `the sandbox process exited ${gone} ms after its host`);
  } finally {
    try {
      host.kill("SIGKILL");
    } catch {
      // Already dead.
    }
    await host.status;
    await reader.cancel();
  }
});
