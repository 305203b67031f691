/**
 * The SDK's gRPC server (plugin.ts, on node:http2) called by grpc-go, the client MOSN
 * itself uses: fixtures/go_host is built in GOPATH mode against Debian's grpc and the
 * proto package examples/module_with_plugin/build.sh generates; skipped when either is
 * missing.
 */
import assert from "node:assert/strict";
import { LineReader } from "../../../src/plugin/lines.ts";
import { parseHandshake } from "../../../src/plugin/handshake.ts";
import { FIXTURES, nodeCommand, ROOT } from "./helpers.ts";

const GO = ["/usr/local/go/bin/go", "/usr/bin/go"].find((p) => {
  try {
    return Deno.statSync(p).isFile;
  } catch {
    return false;
  }
});
const GOPATH_GEN = `${ROOT}examples/module_with_plugin/build/gopath`;
const haveGo = GO !== undefined && (() => {
  try {
    return Deno.statSync(`${GOPATH_GEN}/src/mosaic/example/proto/plugin.pb.go`).isFile;
  } catch {
    return false;
  }
})();

Deno.test({
  name:
    "an SDK plugin under Node.js answers grpc-go (MOSN's client): call, error, deadline, health",
  ignore: !haveGo,
  async fn() {
    const out = `${ROOT}.tmp/go_host/go_host`;
    // GOPATH mode wants the package under src/: link the fixture in.
    const gopath = `${ROOT}.tmp/go_host/gopath`;
    await Deno.mkdir(`${gopath}/src`, { recursive: true });
    await Deno.remove(`${gopath}/src/go_host`).catch(() => {});
    await Deno.symlink(`${FIXTURES}go_host`, `${gopath}/src/go_host`);
    const build = await new Deno.Command(GO!, {
      args: ["build", "-o", out, "go_host"],
      env: {
        GO111MODULE: "off",
        GOPATH: `${gopath}:${GOPATH_GEN}:/usr/share/gocode`,
        GOFLAGS: "",
        GOTOOLCHAIN: "local",
      },
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.ok(build.success, new TextDecoder().decode(build.stderr));

    const [program, ...args] = await nodeCommand("echo_plugin.ts");
    const plugin = new Deno.Command(program, {
      args,
      env: { MOSN_PLUGIN: "ON", MOSAIC_PLUGIN_NETWORK: "unix" },
      stdin: "piped",
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    const lines = new LineReader(plugin.stdout);
    try {
      const handshake = parseHandshake("echo", (await lines.next()) ?? "");
      const host = await new Deno.Command(out, {
        args: [handshake.address],
        stdout: "piped",
        stderr: "inherit",
      }).output();
      const text = new TextDecoder().decode(host.stdout);
      assert.ok(host.success, text);
      assert.match(text, /^call: user=admin body=hi$/m);
      assert.match(text, /^fail: rpc error: code = Unknown desc = boom 100% ✓$/m);
      assert.match(text, /^deadline: rpc error: code = DeadlineExceeded/m);
      assert.match(text, /^health: SERVING <nil>$/m);
      assert.match(text, /^unknown: rpc error: code = Unimplemented/m);
    } finally {
      await plugin.stdin.close();
      await plugin.status;
      await lines.cancel();
    }
  },
});
