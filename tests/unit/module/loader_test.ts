import assert from "node:assert/strict";
import { FilterLoadError } from "../../../src/filter/build.ts";
import { ModuleLoadError } from "../../../src/module/errors.ts";
import { digestModule } from "../../../src/module/integrity.ts";
import { loadFilterModule } from "../../../src/module/loader.ts";
import { createInProcessProxy } from "../../../src/proxy/in_process.ts";
// Remote modules that load are tested in remote_test.ts, in a child run with --no-lock.
import {
  closedPort,
  factoryContext,
  moduleFilter,
  serveModules,
  taggingModule,
  tempDir,
  writeModule,
} from "./helpers.ts";

async function loadError(
  module: string,
  extra: Parameters<typeof moduleFilter>[1] = {},
): Promise<ModuleLoadError> {
  const error = await loadFilterModule(moduleFilter(module, extra)).then(
    () => undefined,
    (error) => error,
  );
  assert.ok(error instanceof ModuleLoadError, `expected a ModuleLoadError, got ${error}`);
  assert.ok(error instanceof FilterLoadError);
  const exportName = extra.export ?? "createStreamFilterFactory";
  assert.ok(
    error.message.startsWith(
      `/etc/mosaic/config.yaml:12: servers[0].listeners[0]: cannot load filter module ${module} (export "${exportName}"): `,
    ),
    error.message,
  );
  return error;
}

async function tagOf(module: string, integrity?: string): Promise<string | null> {
  const proxy = await createInProcessProxy({
    streamFilters: [{ type: "module", name: "mod", module }],
    resolveModule: (filter) => loadFilterModule({ ...filter, integrity }),
    upstream: (request) => new Response(request.headers.get("x-from") ?? "none"),
  });
  try {
    const response = await proxy.request("/");
    return await response.text();
  } finally {
    await proxy.close();
  }
}

Deno.test("a file module that imports only types from Mosaic loads and filters", async () => {
  await using dir = await tempDir();
  const url = await writeModule(dir.path, "tag.ts", taggingModule("file"));
  assert.equal(await tagOf(url), "file");
});

Deno.test("a missing file names the module, the export and the path", async () => {
  await using dir = await tempDir();
  const error = await loadError(`file://${dir.path}/absent.ts`);
  assert.equal(error.reason, `no such file ${dir.path}/absent.ts`);
});

Deno.test("a syntax error is reported with its place in the module", async () => {
  await using dir = await tempDir();
  const url = await writeModule(dir.path, "bad.ts", "export const x = ;\n");
  const error = await loadError(url);
  assert.match(error.reason, /^syntax error: Expression expected/);
  assert.match(error.reason, /bad\.ts\?v=[0-9a-f]{16}:1:18/);
});

Deno.test("a module that throws while evaluated names the error", async () => {
  await using dir = await tempDir();
  const url = await writeModule(
    dir.path,
    "throws.ts",
    "const config: { a?: { b: number } } = {};\nexport const b = config.a!.b;\n",
  );
  const error = await loadError(url);
  assert.match(error.reason, /^the module threw while it was evaluated: TypeError: /);
});

Deno.test("a missing export lists what the module exports", async () => {
  await using dir = await tempDir();
  const url = await writeModule(
    dir.path,
    "other.ts",
    "export const a = 1;\nexport function b() {}\n",
  );
  const error = await loadError(url);
  assert.equal(
    error.reason,
    'the module has no export "createStreamFilterFactory" (it exports: a, b)',
  );
});

Deno.test("an export that is not a function says what it is", async () => {
  await using dir = await tempDir();
  const url = await writeModule(
    dir.path,
    "obj.ts",
    "export const make = { createFilterChain() {} };\n",
  );
  const error = await loadError(url, { export: "make" });
  assert.equal(
    error.reason,
    'the export "make" is an object, expected a function (config, context) => StreamFilterFactory',
  );
});

Deno.test("a configured export name is the one looked up", async () => {
  await using dir = await tempDir();
  const url = await writeModule(
    dir.path,
    "named.ts",
    taggingModule("named").replace("createStreamFilterFactory:", "makeAuth:"),
  );
  const create = await loadFilterModule(moduleFilter(url, { export: "makeAuth" }));
  const factory = await create({}, factoryContext());
  assert.equal(typeof factory.createFilterChain, "function");
});

Deno.test("a factory that throws is reported with the module URL and the export", async () => {
  await using dir = await tempDir();
  const url = await writeModule(
    dir.path,
    "strict.ts",
    'export function createStreamFilterFactory() { throw new RangeError("User must be set"); }\n',
  );
  const create = await loadFilterModule(moduleFilter(url));
  await assert.rejects(() => Promise.resolve(create({}, factoryContext())), {
    message:
      `the factory createStreamFilterFactory of module ${url} threw RangeError: User must be set`,
  });
});

Deno.test("a factory that returns no factory is reported with the module URL", async () => {
  await using dir = await tempDir();
  const url = await writeModule(
    dir.path,
    "number.ts",
    "export function createStreamFilterFactory() { return 42; }\n",
  );
  const create = await loadFilterModule(moduleFilter(url));
  await assert.rejects(() => Promise.resolve(create({}, factoryContext())), {
    name: "TypeError",
    message:
      `the factory createStreamFilterFactory of module ${url} returned number, expected an object with a createFilterChain(chain) method`,
  });
});

Deno.test("an http module answered 404 says so", async () => {
  await using server = serveModules({});
  const error = await loadError(`${server.base}/missing.ts`);
  assert.equal(error.reason, "the server answered 404 Not Found");
});

Deno.test("an http module answered 500 gives the status", async () => {
  await using server = serveModules({ "/broken.ts": [500, "oops"] });
  const error = await loadError(`${server.base}/broken.ts`);
  assert.equal(error.reason, "the server answered HTTP 500 Internal Server Error");
});

Deno.test("an unreachable module URL says it is unreachable", async () => {
  const error = await loadError(`http://127.0.0.1:${closedPort()}/filter.ts`);
  assert.match(error.reason, /^the URL is unreachable \(.*Connection refused/);
});

Deno.test("a pinned http module that is unreachable fails on the loader's fetch", async () => {
  const pin = `sha256-${btoa("x".repeat(32))}`;
  const error = await loadError(`http://127.0.0.1:${closedPort()}/filter.ts`, { integrity: pin });
  assert.match(error.reason, /^the URL is unreachable \(/);
});

Deno.test("a pinned http module answered 404 gives the status", async () => {
  await using server = serveModules({});
  const pin = `sha256-${btoa("x".repeat(32))}`;
  const error = await loadError(`${server.base}/gone.ts`, { integrity: pin });
  assert.equal(error.reason, "the server answered HTTP 404 Not Found");
});

Deno.test("a file module matching its integrity pin loads", async () => {
  await using dir = await tempDir();
  const source = taggingModule("pinned");
  const url = await writeModule(dir.path, "pinned.ts", source);
  const { integrity } = await digestModule(new TextEncoder().encode(source));
  assert.equal(await tagOf(url, integrity), "pinned");
});

Deno.test("an integrity mismatch gives the expected and the actual hash", async () => {
  await using dir = await tempDir();
  const url = await writeModule(dir.path, "changed.ts", taggingModule("changed"));
  const { integrity: actual } = await digestModule(
    new TextEncoder().encode(taggingModule("changed")),
  );
  const { integrity: expected } = await digestModule(new TextEncoder().encode("other bytes"));
  const error = await loadError(url, { integrity: expected });
  assert.equal(
    error.reason,
    `integrity mismatch: expected ${expected}, got ${actual} (the module's bytes changed, or the pin is wrong)`,
  );
});

Deno.test("a changed file is imported afresh and an unchanged one is reused", async () => {
  await using dir = await tempDir();
  const counted = (tag: string) =>
    `const g = globalThis as { evaluations?: number };\ng.evaluations = (g.evaluations ?? 0) + 1;\n${
      taggingModule(tag)
    }`;
  const url = await writeModule(dir.path, "live.ts", counted("v1"));
  const evaluations = () => (globalThis as { evaluations?: number }).evaluations ?? 0;
  const before = evaluations();
  assert.equal(await tagOf(url), "v1");
  assert.equal(await tagOf(url), "v1");
  assert.equal(evaluations() - before, 1, "unchanged bytes reuse the loaded module");
  await Deno.writeTextFile(`${dir.path}/live.ts`, counted("v2"));
  assert.equal(await tagOf(url), "v2");
  assert.equal(evaluations() - before, 2);
  await Deno.writeTextFile(`${dir.path}/live.ts`, counted("v1"));
  assert.equal(await tagOf(url), "v1");
  assert.equal(evaluations() - before, 2, "the first version's module is still loaded");
});
