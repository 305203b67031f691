/** The config reference in README.md passes the real `main.ts check`. */
import assert from "node:assert/strict";

const ROOT = new URL("../../../", import.meta.url).pathname;

Deno.test("the README's config reference YAML block passes main.ts check", async () => {
  const readme = await Deno.readTextFile(`${ROOT}README.md`);
  const section = readme.slice(readme.indexOf("## Configuration"));
  const match = /```yaml\n([\s\S]*?)```/.exec(section);
  assert.ok(match, "README.md has a yaml block under ## Configuration");
  const dir = await Deno.makeTempDir({ prefix: "mosaic-e2e-readme-" });
  try {
    const file = `${dir}/config.yaml`;
    await Deno.writeTextFile(file, match[1]);
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--allow-read", `${ROOT}main.ts`, "check", file],
      env: { NO_COLOR: "1" },
      stdin: "null",
    }).output();
    const stderr = new TextDecoder().decode(out.stderr);
    assert.equal(out.code, 0, stderr);
    assert.match(new TextDecoder().decode(out.stdout), /: OK\n/);
    assert.doesNotMatch(stderr, /warning/, "the reference uses only keys Mosaic implements");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
