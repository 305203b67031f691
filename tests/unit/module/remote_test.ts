// Remote modules that load are imported in a child process run with --no-lock (see
// child.ts); failures, which Deno does not record, are tested in loader_test.ts.
import assert from "node:assert/strict";
import { digestModule } from "../../../src/module/integrity.ts";
import { answering, runChild } from "./child.ts";
import { sandbox, serveModules, taggingModule } from "./helpers.ts";

Deno.test("an http module from a local server loads and filters", async () => {
  await using server = serveModules({ "/tag.js": [200, answering('"from http"')] });
  const host = new URL(server.base).host;
  const result = await runChild([`--allow-import=${host}`], { module: `${server.base}/tag.js` });
  assert.deepEqual([result.status, result.body], [200, "from http"], result.stderr);
  assert.deepEqual(server.requests, ["/tag.js"], "imported once, by its own URL");
});

Deno.test("a TypeScript http module that imports only types from Mosaic loads", async () => {
  await using server = serveModules({ "/tag.ts": [200, taggingModule("typed")] });
  const host = new URL(server.base).host;
  const result = await runChild([`--allow-import=${host}`], { module: `${server.base}/tag.ts` });
  assert.deepEqual([result.status, result.body], [200, "upstream"], result.stderr);
});

Deno.test("a pinned http module is fetched, checked and imported by a versioned URL", async () => {
  const source = answering('"pinned"');
  await using server = serveModules({ "/pinned.js": [200, source] });
  const host = new URL(server.base).host;
  const { integrity, hex } = await digestModule(new TextEncoder().encode(source));
  const flags = [`--allow-import=${host}`, `--allow-net=${host}`];
  const result = await runChild(flags, { module: `${server.base}/pinned.js`, integrity });
  assert.deepEqual([result.status, result.body], [200, "pinned"], result.stderr);
  assert.deepEqual(server.requests, ["/pinned.js", `/pinned.js?v=${hex.slice(0, 16)}`]);
  const wrong = `sha256-${btoa("y".repeat(32))}`;
  const mismatch = await runChild(flags, { module: `${server.base}/pinned.js`, integrity: wrong });
  assert.ok(
    mismatch.error?.endsWith(
      `integrity mismatch: expected ${wrong}, got ${integrity} (the module's bytes changed, or the pin is wrong)`,
    ),
    JSON.stringify(mismatch),
  );
});

Deno.test("a sandboxed http module loads under the process's --allow-import only", async () => {
  await using server = serveModules({ "/boxed.js": [200, answering('"boxed"')] });
  const host = new URL(server.base).host;
  const result = await runChild([`--allow-import=${host}`], {
    module: `${server.base}/boxed.js`,
    sandbox: sandbox(),
  });
  assert.deepEqual([result.status, result.body], [200, "boxed"], result.stderr);
});
