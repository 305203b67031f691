/**
 * Latin-1 for header bytes: one char per byte in, one byte per char out, so obs-text
 * bytes (0x80-0xFF) in a header value reach the other side unchanged. WHATWG's
 * `TextDecoder("latin1")` is windows-1252 (it remaps 0x80-0x9F), hence these.
 *
 * @module
 */

const ascii = new TextDecoder();
const encoder = new TextEncoder();

/**
 * Decodes bytes as Latin-1.
 *
 * @param buf The bytes.
 * @param start First byte.
 * @param end One past the last byte.
 * @param isAscii The caller knows every byte is below 0x80 (the native decoder is then used).
 * @returns The string.
 */
export function decodeLatin1(
  buf: Uint8Array,
  start: number,
  end: number,
  isAscii: boolean,
): string {
  if (isAscii) return ascii.decode(buf.subarray(start, end));
  let text = "";
  for (let i = start; i < end; i += 4096) {
    const piece = buf.subarray(i, Math.min(end, i + 4096));
    text += String.fromCharCode.apply(null, piece as unknown as number[]);
  }
  return text;
}

/**
 * Encodes `text` (chars up to 0xFF, as `Headers` holds them) as Latin-1 into `out`.
 * ASCII, the common case, goes through the native encoder; a text with other chars is
 * then written again byte by byte.
 *
 * @param text The text.
 * @param out Where to write; must hold `text.length` bytes.
 * @param offset Where in `out` to start.
 * @returns The number of bytes written (`text.length`).
 */
export function encodeLatin1Into(text: string, out: Uint8Array, offset: number): number {
  const { read, written } = encoder.encodeInto(text, out.subarray(offset));
  if (read === written && read === text.length) return written;
  for (let i = 0; i < text.length; i++) out[offset + i] = text.charCodeAt(i);
  return text.length;
}
