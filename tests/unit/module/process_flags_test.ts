import assert from "node:assert/strict";
import { childPermissionFlags, SandboxPermissionError } from "../../../src/module/process/flags.ts";

const MODULE = "file:///srv/filters/auth.ts";

Deno.test("a sandbox's permissions become exactly its flags, plus read of the module's folder", () => {
  const grants = childPermissionFlags({
    net: ["api.example.com:443", "10.0.0.1"],
    env: true,
    read: false,
    write: "none",
    sys: [],
  }, MODULE);
  assert.deepEqual(grants.flags, [
    "--allow-env",
    "--allow-net=api.example.com:443,10.0.0.1",
    "--allow-read=/srv/filters",
  ]);
  assert.deepEqual(grants.revoke, [{ name: "read", path: "/srv/filters" }]);
});

Deno.test("a read grant that covers the module's folder is kept and nothing is revoked", () => {
  for (const read of [true, ["/srv"], ["/srv/filters/"], ["/data", "/srv/filters"]]) {
    const grants = childPermissionFlags({ read }, MODULE);
    assert.deepEqual(grants.revoke, [], JSON.stringify(read));
    assert.equal(grants.flags.filter((f) => f.startsWith("--allow-read")).length, 1);
  }
  const sibling = childPermissionFlags({ read: ["/srv/filters-data"] }, MODULE);
  assert.deepEqual(sibling.flags, ["--allow-read=/srv/filters-data,/srv/filters"]);
});

Deno.test("an http module's host is added to --allow-import", () => {
  assert.deepEqual(
    childPermissionFlags({}, "https://filters.example.com/auth.ts").flags,
    ["--allow-import=filters.example.com:443"],
  );
  assert.deepEqual(
    childPermissionFlags(
      { import: ["filters.example.com:8080"] },
      "http://filters.example.com:8080/a.ts",
    )
      .flags,
    ["--allow-import=filters.example.com:8080"],
  );
});

Deno.test("inherit passes a permission Mosaic holds whole, and refuses a partial one", async () => {
  // This test runs with --allow-all.
  assert.ok(childPermissionFlags({ sys: "inherit" }, MODULE).flags.includes("--allow-sys"));
  const source = `import { childPermissionFlags } from ${
    JSON.stringify(new URL("../../../src/module/process/flags.ts", import.meta.url).href)
  };
try { childPermissionFlags({ env: "inherit" }, "file:///m.ts"); } catch (e) { console.log(e.name, e.message); }`;
  const { code, stdout } = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--no-lock",
      "--no-prompt",
      "--allow-env=HOME",
      `data:application/javascript,${encodeURIComponent(source)}`,
    ],
    stdout: "piped",
    stderr: "inherit",
  }).output();
  assert.equal(code, 0);
  assert.match(
    new TextDecoder().decode(stdout),
    /^SandboxPermissionError sandbox\.permissions\.env: "inherit" .* holds only part of it/,
  );
});

Deno.test("a list entry with a comma is refused: a flag cannot carry it", () => {
  assert.throws(() => childPermissionFlags({ read: ["/a,b"] }, MODULE), SandboxPermissionError);
});
