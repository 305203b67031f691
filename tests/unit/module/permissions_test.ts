import assert from "node:assert/strict";
import { digestModule } from "../../../src/module/integrity.ts";
import { answering, runChild } from "./child.ts";
import { sandbox, serveModules, taggingModule, tempDir, writeModule } from "./helpers.ts";

Deno.test("a file module outside --allow-read fails with the flag to add", async () => {
  await using modules = await tempDir();
  await using other = await tempDir();
  const url = await writeModule(modules.path, "auth.ts", taggingModule("x"));
  const result = await runChild([`--allow-read=${other.path}`], { module: url });
  assert.ok(result.error, JSON.stringify(result));
  assert.ok(result.error.includes(`cannot load filter module ${url}`), result.error);
  assert.ok(
    result.error.endsWith(`run Mosaic with --allow-read=${modules.path}/auth.ts`),
    result.error,
  );
});

Deno.test("an http module without --allow-import fails with the flag to add", async () => {
  await using server = serveModules({ "/auth.ts": [200, taggingModule("x")] });
  const host = new URL(server.base).host;
  const result = await runChild([], { module: `${server.base}/auth.ts` });
  assert.ok(result.error, JSON.stringify(result));
  assert.ok(
    result.error.endsWith(`run Mosaic with --allow-import=${host}`),
    result.error,
  );
  assert.deepEqual(server.requests, [], "nothing was fetched");
});

Deno.test("a pinned http module needs --allow-net for the loader's fetch, and says so", async () => {
  const source = answering('"pinned"');
  await using server = serveModules({ "/auth.js": [200, source] });
  const host = new URL(server.base).host;
  const { integrity } = await digestModule(new TextEncoder().encode(source));
  const spec = { module: `${server.base}/auth.js`, integrity };
  const denied = await runChild([`--allow-import=${host}`], spec);
  assert.ok(denied.error?.endsWith(`run Mosaic with --allow-net=${host}`), JSON.stringify(denied));
  const allowed = await runChild([`--allow-import=${host}`, `--allow-net=${host}`], spec);
  assert.deepEqual([allowed.status, allowed.body], [200, "pinned"], allowed.stderr);
});

Deno.test("under narrow flags a sandboxed module cannot read a file outside its grant", async () => {
  await using grant = await tempDir();
  await using secret = await tempDir();
  await Deno.writeTextFile(`${secret.path}/secret.json`, '{ "password": "hunter2" }');
  await Deno.writeTextFile(`${grant.path}/public.txt`, "public");
  // At run time: the Worker's own read grant decides.
  const reader = await writeModule(
    grant.path,
    "reader.js",
    answering("await Deno.readTextFile(s.headers.get('x-file'))"),
  );
  const flags = [`--allow-read=${grant.path}`];
  const box = sandbox({ read: [grant.path] });
  const inside = await runChild(flags, {
    module: reader,
    sandbox: box,
    headers: { "x-file": `${grant.path}/public.txt` },
  });
  assert.deepEqual([inside.status, inside.body], [200, "public"], inside.stderr);
  const outside = await runChild(flags, {
    module: reader,
    sandbox: box,
    headers: { "x-file": `${secret.path}/secret.json` },
  });
  assert.equal(outside.status, 500, outside.stderr);
  assert.match(outside.stderr, /NotCapable: Requires read access to ".*secret\.json"/);

  // At load time: a static import is loaded under the process's flags, which stop it.
  const importer = await writeModule(
    grant.path,
    "importer.js",
    answering(
      "JSON.stringify(secretFile)",
      `import secretFile from ${
        JSON.stringify(`${secret.path}/secret.json`)
      } with { type: "json" };`,
    ),
  );
  const blocked = await runChild(flags, { module: importer, sandbox: sandbox() });
  assert.ok(
    blocked.error?.includes(`run Mosaic with --allow-read=${secret.path}/secret.json`),
    JSON.stringify(blocked),
  );
});

Deno.test("under broad flags a sandboxed module's static imports read what the process can", async () => {
  // Why the README insists on narrow flags: a Worker's static imports are loaded under
  // the process's permissions, not the sandbox's.
  await using grant = await tempDir();
  await using secret = await tempDir();
  await Deno.writeTextFile(`${secret.path}/secret.json`, '{ "password": "hunter2" }');
  const importer = await writeModule(
    grant.path,
    "importer.js",
    answering(
      "secretFile.password",
      `import secretFile from ${
        JSON.stringify(`${secret.path}/secret.json`)
      } with { type: "json" };`,
    ),
  );
  const leaked = await runChild(["--allow-read"], { module: importer, sandbox: sandbox() });
  assert.deepEqual([leaked.status, leaked.body], [200, "hunter2"], leaked.stderr);
});

Deno.test("a sandbox that asks for more than the process has names the flags", async () => {
  await using dir = await tempDir();
  const url = await writeModule(dir.path, "net.js", answering('"never"'));
  const result = await runChild([`--allow-read=${dir.path}`], {
    module: url,
    sandbox: sandbox({ net: ["example.com:443"] }),
  });
  assert.ok(result.error, JSON.stringify(result));
  assert.ok(
    result.error.includes("Deno refused to start the sandbox Worker"),
    result.error,
  );
  assert.ok(result.error.endsWith("run Mosaic with --allow-net=example.com:443"), result.error);
});

// npm:yaml reads the environment variables LOG_TOKENS and LOG_STREAM when it parses: the
// process needs --allow-env for them (Mosaic's own flags have it, for its config), and a
// sandbox must grant them too. Loading the package needs no flag: it comes from Deno's
// npm cache.
for (const sandboxed of [false, true]) {
  Deno.test(`a module with its own npm dependency runs ${sandboxed ? "in a sandbox" : "in process"} with --allow-read of its folder only`, async () => {
    await using dir = await tempDir();
    const url = await writeModule(
      dir.path,
      "yaml_filter.js",
      answering('JSON.stringify(parse("a: [1, 2]"))', 'import { parse } from "npm:yaml@2.9.1";'),
    );
    const env = ["LOG_TOKENS", "LOG_STREAM"];
    const result = await runChild([`--allow-read=${dir.path}`, `--allow-env=${env.join(",")}`], {
      module: url,
      sandbox: sandboxed ? sandbox({ env }) : undefined,
    });
    assert.deepEqual([result.status, result.body], [200, '{"a":[1,2]}'], JSON.stringify(result));
  });
}
