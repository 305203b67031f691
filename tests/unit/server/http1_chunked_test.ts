import assert from "node:assert/strict";
import { ChunkedDecoder } from "../../../src/server/http1/chunked.ts";
import { BadRequestError } from "../../../src/server/http1/request_head.ts";
import { toLatin1 } from "../../attack/client_socket.ts";

/** Decodes `text` fed in pieces of `step` bytes, as a connection's buffer would grow. */
function decode(text: string, step: number): { data: string; finished: boolean } {
  const all = toLatin1(text);
  const decoder = new ChunkedDecoder();
  const window = { buf: all, start: 0, end: 0 };
  let data = "";
  const sink = { enqueue: (chunk: Uint8Array) => data += String.fromCharCode(...chunk) };
  for (let end = Math.min(step, all.length);; end = Math.min(end + step, all.length)) {
    window.end = end;
    decoder.decode(window, sink, Infinity);
    if (decoder.finished || end === all.length) break;
  }
  return { data, finished: decoder.finished };
}

Deno.test("chunked bodies decode in any split, with extensions and trailers", () => {
  const body = "5;a=b\r\nhello\r\n9\r\n 01234567\r\n0\r\nX-T: 1\r\n\r\n";
  for (const step of [1, 2, 3, 7, 1000]) {
    assert.deepEqual(
      decode(body, step),
      { data: "hello 01234567", finished: true },
      `step ${step}`,
    );
  }
});

Deno.test("broken chunk framing is a 400, whatever the split", () => {
  for (
    const body of [
      "z\r\n",
      " 5\r\nhello\r\n",
      "5 \r\nhello\r\n",
      "-1\r\n",
      "+5\r\nhello\r\n",
      "fffffffffffffff\r\n",
      "5\nhello\r\n",
      "5\r\nhello\n",
      "5\r\nhelloXY",
      "0\r\n\n",
      "0\r\nbad trailer\r\n\r\n",
      "5;\x01\r\nhello\r\n",
    ]
  ) {
    for (const step of [1, 100]) {
      assert.throws(
        () => decode(body, step),
        (error) => error instanceof BadRequestError && error.status === 400,
        `${JSON.stringify(body)} step ${step}`,
      );
    }
  }
});
