/**
 * `npm start` (the demo: the example upstream and the proxy) stops both on SIGTERM to
 * its parent, and a proxy that dies takes the upstream with it.
 */
import assert from "node:assert/strict";

const ROOT = new URL("../../../", import.meta.url).pathname;

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

Deno.test({
  name: "npm start stops the proxy and the upstream on SIGTERM to npm",
  ignore: (await answers(2046)) || (await answers(8080)),
  async fn() {
    const npm = new Deno.Command("npm", {
      args: ["start", "--silent"],
      cwd: ROOT,
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).spawn();
    try {
      await until(
        "the proxy and upstream listen",
        async () => (await answers(2046)) && (await answers(8080)),
        20_000,
      );
      const response = await fetch("http://127.0.0.1:2046/", { headers: { User: "admin" } });
      assert.equal(response.status, 200);
      await response.body?.cancel();
      npm.kill("SIGTERM");
      await until(
        "both are gone",
        async () => !(await answers(2046)) && !(await answers(8080)),
        15_000,
      );
    } finally {
      try {
        npm.kill("SIGKILL");
      } catch { /* gone */ }
      await npm.status;
    }
  },
});
