// The e2e helpers leave nothing in the temp directory: a test file whose tests write
// configs with writeConfig (into `mosaic-e2e-*` folders) and start the proxy, run by
// `deno test` with TMPDIR pointing at an empty folder, leaves that folder empty.
import assert from "node:assert/strict";

const ROOT = new URL("../../../", import.meta.url).pathname;
const USER = "tests/e2e/module/content_type_test.ts";

Deno.test(`${USER} leaves no mosaic-e2e-* folder in the temp directory`, async () => {
  const tmp = await Deno.makeTempDir({ prefix: "mosaic-tmpdir-" });
  try {
    const run = await new Deno.Command(Deno.execPath(), {
      args: ["test", "--allow-all", USER],
      cwd: ROOT,
      env: { TMPDIR: tmp, NO_COLOR: "1" },
      stdin: "null",
      signal: AbortSignal.timeout(120_000),
    }).output();
    const out = new TextDecoder().decode(run.stdout) + new TextDecoder().decode(run.stderr);
    assert.equal(run.code, 0, out);
    assert.match(out, /ok \| 2 passed \| 0 failed/, out);
    const left = await Array.fromAsync(Deno.readDir(tmp), (entry) => entry.name);
    assert.deepEqual(left, [], `left in ${tmp}`);
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});
