import assert from "node:assert/strict";
import {
  type ByteWindow,
  ChunkedDecoder,
  type ChunkSink,
  MalformedChunkedError,
  parseChunkSize,
} from "../../../src/http1/chunked.ts";
import { decodeLatin1 } from "../../../src/http1/latin1.ts";
import { toLatin1 } from "../../attack/client_socket.ts";

/** The server's way: data copied out, trailer lines collected. */
class CopySink implements ChunkSink {
  data = "";
  trailers: string[] = [];
  chunkData(buf: Uint8Array, start: number, end: number): void {
    this.data += decodeLatin1(buf.slice(start, end), 0, end - start);
  }
  trailerLine(buf: Uint8Array, start: number, end: number): void {
    this.trailers.push(decodeLatin1(buf, start, end));
  }
}

/** The upstream client's way: data moved together in place, one slice per decode. */
class CompactSink implements ChunkSink {
  out = 0;
  trailers: string[] = [];
  chunkData(buf: Uint8Array, start: number, end: number): void {
    if (this.out !== start) buf.copyWithin(this.out, start, end);
    this.out += end - start;
  }
  trailerLine(buf: Uint8Array, start: number, end: number): void {
    this.trailers.push(decodeLatin1(buf, start, end));
  }
}

interface Decoded {
  data: string;
  trailers: string[];
  finished: boolean;
}

/** Decodes `text` fed in pieces of `step` bytes, as a connection's buffer would grow. */
function decodeCopying(text: string, step: number): Decoded {
  const all = toLatin1(text);
  const decoder = new ChunkedDecoder();
  const window: ByteWindow = { buf: all, start: 0, end: 0 };
  const sink = new CopySink();
  for (let end = Math.min(step, all.length);; end = Math.min(end + step, all.length)) {
    window.end = end;
    decoder.decode(window, sink, Infinity);
    if (decoder.finished || end === all.length) break;
  }
  return { data: sink.data, trailers: sink.trailers, finished: decoder.finished };
}

/** The same, the data compacted in a buffer that bytes are appended to. */
function decodeCompacting(text: string, step: number): Decoded {
  const all = toLatin1(text);
  const decoder = new ChunkedDecoder();
  const window: ByteWindow = { buf: new Uint8Array(all.length), start: 0, end: 0 };
  const sink = new CompactSink();
  let data = "";
  for (let at = 0; at < all.length && !decoder.finished; at += step) {
    const piece = all.subarray(at, at + step);
    window.buf.set(piece, window.end);
    window.end += piece.length;
    const from = window.start;
    sink.out = from;
    const n = decoder.decode(window, sink, Infinity);
    assert.equal(sink.out - from, n);
    data += decodeLatin1(window.buf, from, from + n);
  }
  return { data, trailers: sink.trailers, finished: decoder.finished };
}

const BODY = "5;a=b\r\nhello\r\n9\r\n 01234567\r\n0\r\nX-T: 1\r\nx-sum: \xe9\r\n\r\n";

Deno.test("chunked bodies decode in any split, with extensions and trailers, either sink", () => {
  for (const decode of [decodeCopying, decodeCompacting]) {
    for (const step of [1, 2, 3, 7, 1000]) {
      assert.deepEqual(
        decode(BODY, step),
        { data: "hello 01234567", trailers: ["X-T: 1", "x-sum: \xe9"], finished: true },
        `${decode.name} step ${step}`,
      );
    }
  }
});

Deno.test("broken chunk framing is refused whatever the split, either sink", () => {
  for (
    const body of [
      "z\r\n",
      " 5\r\nhello\r\n",
      "5 \r\nhello\r\n",
      "-1\r\n",
      "+5\r\nhello\r\n",
      "0x5\r\nhello\r\n",
      "fffffffffffffff\r\n",
      "5\nhello\r\n",
      "5\r\nhello\n",
      "5\r\nhelloXY",
      "3\r\nabcdef\r\n",
      "0\r\n\n",
      "0\r\nbad trailer\r\n\r\n",
      "0\r\nx: \x01\r\n\r\n",
      "0\r\nx: 1\n\r\n",
      "5;\x01\r\nhello\r\n",
    ]
  ) {
    for (const decode of [decodeCopying, decodeCompacting]) {
      for (const step of [1, 100]) {
        assert.throws(
          () => decode(body, step),
          MalformedChunkedError,
          `${JSON.stringify(body)} ${decode.name} step ${step}`,
        );
      }
    }
  }
});

Deno.test("parseChunkSize reads hex sizes and skips extensions, strictly", () => {
  const size = (line: string) => {
    const bytes = toLatin1(`${line}\n`);
    return parseChunkSize(bytes, 0, bytes.length - 1);
  };
  assert.equal(size("1a\r"), 26);
  assert.equal(size("1A;name=value;x\r"), 26);
  assert.equal(size("ff \t;x\r"), 255);
  assert.equal(size("0\r"), 0);
  assert.equal(size("fffffffffffff\r"), 2 ** 52 - 1);
  for (const bad of ["\r", "", "zz\r", "1 2\r", "ff  \r", "-1\r", "+1\r", "fffffffffffffff\r"]) {
    assert.throws(() => size(bad), MalformedChunkedError, JSON.stringify(bad));
  }
});

Deno.test("a decode stops near its limit and resumes", () => {
  const all = toLatin1("3\r\nabc\r\n3\r\ndef\r\n0\r\n\r\n");
  const decoder = new ChunkedDecoder();
  const window: ByteWindow = { buf: all, start: 0, end: all.length };
  const sink = new CopySink();
  assert.equal(decoder.decode(window, sink, 1), 3);
  assert.equal(decoder.finished, false);
  assert.equal(decoder.decode(window, sink, 1), 3);
  assert.equal(decoder.decode(window, sink, 1), 0);
  assert.equal(decoder.finished, true);
  assert.equal(sink.data, "abcdef");
});

Deno.test("dataAhead and consumed account for data read past the buffer", () => {
  const decoder = new ChunkedDecoder();
  const head = toLatin1("a\r\n");
  const window: ByteWindow = { buf: head, start: 0, end: head.length };
  assert.equal(decoder.decode(window, new CopySink(), Infinity), 0);
  assert.equal(decoder.dataAhead, 10);
  decoder.consumed(4);
  assert.equal(decoder.dataAhead, 6);
  decoder.consumed(6);
  assert.equal(decoder.dataAhead, 0);
  const rest = toLatin1("\r\n0\r\n\r\n");
  decoder.decode({ buf: rest, start: 0, end: rest.length }, new CopySink(), Infinity);
  assert.equal(decoder.finished, true);
});

Deno.test("the trailer block is limited as a whole", () => {
  const line = `x-a: ${"v".repeat(90)}\r\n`;
  const body = `0\r\n${line.repeat(2)}\r\n`;
  const decoder = new ChunkedDecoder({ maxTrailerBytes: 150 });
  const all = toLatin1(body);
  assert.throws(
    () => decoder.decode({ buf: all, start: 0, end: all.length }, new CopySink(), Infinity),
    /trailers are too long/,
  );
  const roomy = new ChunkedDecoder({ maxTrailerBytes: 300 });
  roomy.decode({ buf: all, start: 0, end: all.length }, new CopySink(), Infinity);
  assert.equal(roomy.finished, true);
});
