// A `.ts` module served with a content type Deno does not read as TypeScript (Python's
// http.server on Debian): the load error names the content type sent and the ones that
// work. Run in a child with --no-lock (see child.ts), against a real python3 server.
import assert from "node:assert/strict";
import { TYPESCRIPT_MEDIA_TYPES } from "../../../src/module/source.ts";
import { runChild } from "./child.ts";
import { servedContentType, servePython, TYPED_FILTER } from "./python_server.ts";
import { sandbox, serveModules } from "./helpers.ts";

const WORKING = "the content types Deno reads as TypeScript are application/typescript, " +
  "text/typescript, application/x-typescript, video/mp2t, video/vnd.dlna.mpeg-tts; with " +
  "text/plain, application/octet-stream or none it goes by the .ts extension";

Deno.test("a .ts module from python3 -m http.server names the content type it was sent with", async () => {
  await using server = await servePython({ "filter.ts": TYPED_FILTER });
  const sent = await servedContentType(server.base, "/filter.ts");
  assert.ok(sent !== null && !TYPESCRIPT_MEDIA_TYPES.includes(sent), `python sent ${sent}`);
  const module = `${server.base}/filter.ts`;
  const result = await runChild([`--allow-import=${server.host}`, `--allow-net=${server.host}`], {
    module,
  });
  assert.equal(
    result.error,
    `<in-process>:0: stream_filters[0]: cannot load filter module ${module} ` +
      `(export "createStreamFilterFactory"): the server sent this .ts module with ` +
      `Content-Type: ${sent}, which Deno does not read as TypeScript, so it failed ` +
      `(Expected ',', got ':' at ${module}:3:26); serve it as ` +
      `application/typescript (${WORKING})`,
    result.stderr,
  );
});

Deno.test("a sandboxed .ts module from python3 -m http.server names its content type too", async () => {
  await using server = await servePython({ "filter.ts": TYPED_FILTER });
  const module = `${server.base}/filter.ts`;
  const result = await runChild([`--allow-import=${server.host}`, `--allow-net=${server.host}`], {
    module,
    sandbox: sandbox(),
  });
  assert.match(
    result.error ?? "",
    /: the server sent this \.ts module with Content-Type: text\/vnd\.trolltech\.linguist, which Deno does not read as TypeScript, so it failed \(Expected a JavaScript or TypeScript module, but identified a Unknown module\. /,
    JSON.stringify(result),
  );
  assert.ok(result.error?.endsWith(`serve it as application/typescript (${WORKING})`));
});

Deno.test("without --allow-net for the host, the syntax error says what to look at", async () => {
  await using server = await servePython({ "filter.ts": TYPED_FILTER });
  const module = `${server.base}/filter.ts`;
  const result = await runChild([`--allow-import=${server.host}`], { module });
  assert.ok(
    result.error?.endsWith(
      `  |                          ~\n    at ${module}:3:26\n` +
        `If the server sends this .ts module with another content type, Deno does not read ` +
        `it as TypeScript (${WORKING}); Mosaic could not look at the content type: run it with ` +
        `--allow-net=${server.host} to let it`,
    ),
    JSON.stringify(result),
  );
});

Deno.test("a real syntax error in a module served as TypeScript stays a syntax error", async () => {
  await using server = serveModules({ "/broken.ts": [200, "export const = 1;\n"] });
  const host = new URL(server.base).host;
  const module = `${server.base}/broken.ts`;
  const result = await runChild([`--allow-import=${host}`, `--allow-net=${host}`], { module });
  assert.match(result.error ?? "", /\): syntax error: /, JSON.stringify(result));
  assert.doesNotMatch(result.error ?? "", /Content-Type/);
});
