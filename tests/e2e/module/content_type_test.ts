// End to end: `main.ts check` and `main.ts run` on a config whose filter module is a
// `.ts` file served by `python3 -m http.server` (which sends `.ts` as a content type Deno
// does not read as TypeScript): both fail naming the content type sent and the ones
// that work.
import assert from "node:assert/strict";
import { startProxy, writeConfig } from "../../helpers/proxy_process.ts";
import { servedContentType, servePython, TYPED_FILTER } from "../../unit/module/python_server.ts";
import { filterListenersYaml } from "../fixtures/mosaic_yaml.ts";

function config(module: string): string {
  return filterListenersYaml(
    [{ name: "typed", filters: `- type: module\n  module: ${module}` }],
    "127.0.0.1:9",
  );
}

for (const command of ["check", "run"]) {
  Deno.test(`main.ts ${command} names the content type python3 -m http.server sent a .ts module with`, async () => {
    await using server = await servePython({ "filter.ts": TYPED_FILTER });
    const sent = await servedContentType(server.base, "/filter.ts");
    const module = `${server.base}/filter.ts`;
    const file = await writeConfig(config(module));
    // --no-lock: deno.lock must not collect the test server's random port.
    const proxy = await startProxy(file, {
      flags: ["--no-lock", "--allow-net", "--allow-read", `--allow-import=${server.host}`],
      args: command === "check" ? ["check"] : ["run"],
    });
    const status = await proxy.status;
    assert.notEqual(status.code, 0, proxy.output());
    assert.ok(
      proxy.output().includes(
        `${file}:20: servers[0].listeners[0].stream_filters[0]: cannot load filter module ` +
          `${module} (export "createStreamFilterFactory"): the server sent this .ts module ` +
          `with Content-Type: ${sent}, which Deno does not read as TypeScript, so it failed ` +
          `(Expected ',', got ':' at ${module}:3:26); serve it as application/typescript ` +
          `(the content types Deno reads as TypeScript are application/typescript, ` +
          `text/typescript, application/x-typescript, video/mp2t, video/vnd.dlna.mpeg-tts; ` +
          `with text/plain, application/octet-stream or none it goes by the .ts extension)`,
      ),
      proxy.output(),
    );
  });
}
