/**
 * Latin-1 for header bytes: one char per byte in, one byte per char out, so obs-text
 * bytes (0x80-0xFF) in a header value reach the other side unchanged. WHATWG's
 * `TextDecoder("latin1")` is windows-1252 (it remaps 0x80-0x9F), hence these.
 *
 * ASCII, by far the common case, goes through the native decoder and encoder both ways.
 *
 * @module
 */

const utf8 = new TextDecoder("utf-8", { fatal: true });
const encoder = new TextEncoder();

/**
 * Decodes bytes as Latin-1 (each byte one UTF-16 code unit), the way header bytes
 * round-trip through `Headers`.
 *
 * @param buf The bytes.
 * @param start First byte.
 * @param end One past the last byte.
 * @param isAscii Whether every byte is below 0x80, when the caller knows (true: the
 *   native decoder is used; false: the bytes are copied one by one). When not given, the
 *   native decoder is tried first, and its text kept when it has one char per byte.
 * @returns The string.
 *
 * @example
 * ```ts
 * decodeLatin1(new Uint8Array([0x63, 0x61, 0x66, 0xe9]), 0, 4); // "caf\xe9"
 * ```
 */
export function decodeLatin1(
  buf: Uint8Array,
  start: number,
  end: number,
  isAscii?: boolean,
): string {
  if (isAscii !== false) {
    try {
      const text = utf8.decode(buf.subarray(start, end));
      // ASCII exactly when the decoded length equals the byte length.
      if (isAscii === true || text.length === end - start) return text;
    } catch {
      // invalid UTF-8: not ASCII
    }
  }
  let text = "";
  for (let i = start; i < end; i += 4096) {
    const piece = buf.subarray(i, Math.min(end, i + 4096));
    text += String.fromCharCode.apply(null, piece as unknown as number[]);
  }
  return text;
}

/**
 * Encodes `text` as Latin-1 into `out`. ASCII, the common case, goes through the native
 * encoder; a text with other chars is then written again byte by byte.
 *
 * @param text The text; chars up to 0xFF, as `Headers` holds them.
 * @param out Where to write; must hold `text.length` bytes from `offset`.
 * @param offset Where in `out` to start.
 * @returns The number of bytes written (`text.length`), or -1 when a char is above 0xFF
 *   (it has no Latin-1 byte; what `out` then holds is unspecified).
 *
 * @example
 * ```ts
 * const out = new Uint8Array(4);
 * encodeLatin1Into("caf\xe9", out, 0); // 4, out is 63 61 66 e9
 * ```
 */
export function encodeLatin1Into(text: string, out: Uint8Array, offset: number): number {
  const { read, written } = encoder.encodeInto(
    text,
    offset === 0 ? out : out.subarray(offset),
  );
  if (read === written && read === text.length) return written;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c > 0xff) return -1;
    out[offset + i] = c;
  }
  return text.length;
}
