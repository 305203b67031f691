/**
 * Finding where an HTTP/1.x head (request or response) ends, on bytes. Every line must
 * end in CRLF: a bare LF is refused rather than guessed at (RFC 9112 section 2.2 allows
 * either), so that no two readers of the same bytes can split them into different lines.
 *
 * @module
 */

const CR = 13;
const LF = 10;

/** {@linkcode findHeadEnd}'s answer when the head is not complete yet. */
export const HEAD_INCOMPLETE = -1;
/** {@linkcode findHeadEnd}'s answer when a line ends in a bare LF. */
export const HEAD_BARE_LF = -2;

/**
 * Finds the end of a head: the index just past its CRLF CRLF.
 *
 * @param buf The received bytes; the head's first byte is not CR or LF.
 * @param from Where to resume the search: the head's first byte, or how far a previous
 *   call had scanned (the bytes from the head's start to `from` are looked back at).
 * @param end One past the last received byte.
 * @returns The index after the blank line; {@linkcode HEAD_INCOMPLETE} (-1) when the head
 *   is not complete yet; {@linkcode HEAD_BARE_LF} (-2) when a line ends in a bare LF.
 *
 * @example
 * ```ts
 * const bytes = new TextEncoder().encode("HTTP/1.1 204 No Content\r\n\r\n");
 * findHeadEnd(bytes, 0, bytes.length); // bytes.length
 * ```
 */
export function findHeadEnd(buf: Uint8Array, from: number, end: number): number {
  let i = buf.indexOf(LF, from);
  while (i !== -1 && i < end) {
    if (buf[i - 1] !== CR) return HEAD_BARE_LF;
    // CR LF CR LF: the LF found is the last byte when the three before it match.
    if (i >= 3 && buf[i - 2] === LF && buf[i - 3] === CR) return i + 1;
    i = buf.indexOf(LF, i + 1);
  }
  return HEAD_INCOMPLETE;
}

/**
 * Finds the end of a response head as a client may read it (RFC 9112 section 2.2): a line
 * may end in a bare LF. Mosaic rebuilds every response head it forwards, so an upstream's
 * bare LF cannot reach a client as something another reader splits differently.
 *
 * @param buf The received bytes; the head's first byte is not CR or LF.
 * @param from Where to resume the search (as {@linkcode findHeadEnd}).
 * @param end One past the last received byte.
 * @returns The index after the blank line, or {@linkcode HEAD_INCOMPLETE}.
 */
export function findResponseHeadEnd(buf: Uint8Array, from: number, end: number): number {
  let i = buf.indexOf(LF, from);
  while (i !== -1 && i < end) {
    // A blank line: LF right after the previous LF, or after CR after it.
    if (i >= 1 && (buf[i - 1] === LF || (buf[i - 1] === CR && i >= 2 && buf[i - 2] === LF))) {
      return i + 1;
    }
    i = buf.indexOf(LF, i + 1);
  }
  return HEAD_INCOMPLETE;
}
