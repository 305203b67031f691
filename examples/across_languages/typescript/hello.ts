/**
 * `hello` → `hello typescript`, with Mosaic's plugin SDK. Any other body goes on
 * unchanged (status 0).
 *
 * @module
 */

import { serve } from "../../../plugin.ts";

const decoder = new TextDecoder();

await serve({
  call(request) {
    if (decoder.decode(request.body) !== "hello") return { status: 0 };
    return { status: 200, header: { "content-type": "text/plain" }, body: "hello typescript" };
  },
});
