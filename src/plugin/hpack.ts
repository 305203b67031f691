/**
 * HPACK (RFC 7541), as much as an HTTP/2 client of one gRPC server needs: a decoder with the
 * dynamic table and Huffman strings, and an encoder of literals (no dynamic table, no
 * Huffman), which every decoder accepts.
 *
 * @module
 */

/** The static table (RFC 7541 Appendix A); index 1 is the first entry. */
const STATIC_TABLE: readonly (readonly [string, string])[] = [
  [":authority", ""],
  [":method", "GET"],
  [":method", "POST"],
  [":path", "/"],
  [":path", "/index.html"],
  [":scheme", "http"],
  [":scheme", "https"],
  [":status", "200"],
  [":status", "204"],
  [":status", "206"],
  [":status", "304"],
  [":status", "400"],
  [":status", "404"],
  [":status", "500"],
  ["accept-charset", ""],
  ["accept-encoding", "gzip, deflate"],
  ["accept-language", ""],
  ["accept-ranges", ""],
  ["accept", ""],
  ["access-control-allow-origin", ""],
  ["age", ""],
  ["allow", ""],
  ["authorization", ""],
  ["cache-control", ""],
  ["content-disposition", ""],
  ["content-encoding", ""],
  ["content-language", ""],
  ["content-length", ""],
  ["content-location", ""],
  ["content-range", ""],
  ["content-type", ""],
  ["cookie", ""],
  ["date", ""],
  ["etag", ""],
  ["expect", ""],
  ["expires", ""],
  ["from", ""],
  ["host", ""],
  ["if-match", ""],
  ["if-modified-since", ""],
  ["if-none-match", ""],
  ["if-range", ""],
  ["if-unmodified-since", ""],
  ["last-modified", ""],
  ["link", ""],
  ["location", ""],
  ["max-forwards", ""],
  ["proxy-authenticate", ""],
  ["proxy-authorization", ""],
  ["range", ""],
  ["referer", ""],
  ["refresh", ""],
  ["retry-after", ""],
  ["server", ""],
  ["set-cookie", ""],
  ["strict-transport-security", ""],
  ["transfer-encoding", ""],
  ["user-agent", ""],
  ["vary", ""],
  ["via", ""],
  ["www-authenticate", ""],
];

/** The Huffman code of each symbol 0–256 (256 is EOS; RFC 7541 Appendix B). */
const HUFFMAN_CODES: readonly number[] = [
  0x1ff8,
  0x7fffd8,
  0xfffffe2,
  0xfffffe3,
  0xfffffe4,
  0xfffffe5,
  0xfffffe6,
  0xfffffe7,
  0xfffffe8,
  0xffffea,
  0x3ffffffc,
  0xfffffe9,
  0xfffffea,
  0x3ffffffd,
  0xfffffeb,
  0xfffffec,
  0xfffffed,
  0xfffffee,
  0xfffffef,
  0xffffff0,
  0xffffff1,
  0xffffff2,
  0x3ffffffe,
  0xffffff3,
  0xffffff4,
  0xffffff5,
  0xffffff6,
  0xffffff7,
  0xffffff8,
  0xffffff9,
  0xffffffa,
  0xffffffb,
  0x14,
  0x3f8,
  0x3f9,
  0xffa,
  0x1ff9,
  0x15,
  0xf8,
  0x7fa,
  0x3fa,
  0x3fb,
  0xf9,
  0x7fb,
  0xfa,
  0x16,
  0x17,
  0x18,
  0x0,
  0x1,
  0x2,
  0x19,
  0x1a,
  0x1b,
  0x1c,
  0x1d,
  0x1e,
  0x1f,
  0x5c,
  0xfb,
  0x7ffc,
  0x20,
  0xffb,
  0x3fc,
  0x1ffa,
  0x21,
  0x5d,
  0x5e,
  0x5f,
  0x60,
  0x61,
  0x62,
  0x63,
  0x64,
  0x65,
  0x66,
  0x67,
  0x68,
  0x69,
  0x6a,
  0x6b,
  0x6c,
  0x6d,
  0x6e,
  0x6f,
  0x70,
  0x71,
  0x72,
  0xfc,
  0x73,
  0xfd,
  0x1ffb,
  0x7fff0,
  0x1ffc,
  0x3ffc,
  0x22,
  0x7ffd,
  0x3,
  0x23,
  0x4,
  0x24,
  0x5,
  0x25,
  0x26,
  0x27,
  0x6,
  0x74,
  0x75,
  0x28,
  0x29,
  0x2a,
  0x7,
  0x2b,
  0x76,
  0x2c,
  0x8,
  0x9,
  0x2d,
  0x77,
  0x78,
  0x79,
  0x7a,
  0x7b,
  0x7ffe,
  0x7fc,
  0x3ffd,
  0x1ffd,
  0xffffffc,
  0xfffe6,
  0x3fffd2,
  0xfffe7,
  0xfffe8,
  0x3fffd3,
  0x3fffd4,
  0x3fffd5,
  0x7fffd9,
  0x3fffd6,
  0x7fffda,
  0x7fffdb,
  0x7fffdc,
  0x7fffdd,
  0x7fffde,
  0xffffeb,
  0x7fffdf,
  0xffffec,
  0xffffed,
  0x3fffd7,
  0x7fffe0,
  0xffffee,
  0x7fffe1,
  0x7fffe2,
  0x7fffe3,
  0x7fffe4,
  0x1fffdc,
  0x3fffd8,
  0x7fffe5,
  0x3fffd9,
  0x7fffe6,
  0x7fffe7,
  0xffffef,
  0x3fffda,
  0x1fffdd,
  0xfffe9,
  0x3fffdb,
  0x3fffdc,
  0x7fffe8,
  0x7fffe9,
  0x1fffde,
  0x7fffea,
  0x3fffdd,
  0x3fffde,
  0xfffff0,
  0x1fffdf,
  0x3fffdf,
  0x7fffeb,
  0x7fffec,
  0x1fffe0,
  0x1fffe1,
  0x3fffe0,
  0x1fffe2,
  0x7fffed,
  0x3fffe1,
  0x7fffee,
  0x7fffef,
  0xfffea,
  0x3fffe2,
  0x3fffe3,
  0x3fffe4,
  0x7ffff0,
  0x3fffe5,
  0x3fffe6,
  0x7ffff1,
  0x3ffffe0,
  0x3ffffe1,
  0xfffeb,
  0x7fff1,
  0x3fffe7,
  0x7ffff2,
  0x3fffe8,
  0x1ffffec,
  0x3ffffe2,
  0x3ffffe3,
  0x3ffffe4,
  0x7ffffde,
  0x7ffffdf,
  0x3ffffe5,
  0xfffff1,
  0x1ffffed,
  0x7fff2,
  0x1fffe3,
  0x3ffffe6,
  0x7ffffe0,
  0x7ffffe1,
  0x3ffffe7,
  0x7ffffe2,
  0xfffff2,
  0x1fffe4,
  0x1fffe5,
  0x3ffffe8,
  0x3ffffe9,
  0xffffffd,
  0x7ffffe3,
  0x7ffffe4,
  0x7ffffe5,
  0xfffec,
  0xfffff3,
  0xfffed,
  0x1fffe6,
  0x3fffe9,
  0x1fffe7,
  0x1fffe8,
  0x7ffff3,
  0x3fffea,
  0x3fffeb,
  0x1ffffee,
  0x1ffffef,
  0xfffff4,
  0xfffff5,
  0x3ffffea,
  0x7ffff4,
  0x3ffffeb,
  0x7ffffe6,
  0x3ffffec,
  0x3ffffed,
  0x7ffffe7,
  0x7ffffe8,
  0x7ffffe9,
  0x7ffffea,
  0x7ffffeb,
  0xffffffe,
  0x7ffffec,
  0x7ffffed,
  0x7ffffee,
  0x7ffffef,
  0x7fffff0,
  0x3ffffee,
  0x3fffffff,
];

/** The length in bits of each symbol's code. */
const HUFFMAN_LENGTHS: readonly number[] = [
  13,
  23,
  28,
  28,
  28,
  28,
  28,
  28,
  28,
  24,
  30,
  28,
  28,
  30,
  28,
  28,
  28,
  28,
  28,
  28,
  28,
  28,
  30,
  28,
  28,
  28,
  28,
  28,
  28,
  28,
  28,
  28,
  6,
  10,
  10,
  12,
  13,
  6,
  8,
  11,
  10,
  10,
  8,
  11,
  8,
  6,
  6,
  6,
  5,
  5,
  5,
  6,
  6,
  6,
  6,
  6,
  6,
  6,
  7,
  8,
  15,
  6,
  12,
  10,
  13,
  6,
  7,
  7,
  7,
  7,
  7,
  7,
  7,
  7,
  7,
  7,
  7,
  7,
  7,
  7,
  7,
  7,
  7,
  7,
  7,
  7,
  7,
  7,
  8,
  7,
  8,
  13,
  19,
  13,
  14,
  6,
  15,
  5,
  6,
  5,
  6,
  5,
  6,
  6,
  6,
  5,
  7,
  7,
  6,
  6,
  6,
  5,
  6,
  7,
  6,
  5,
  5,
  6,
  7,
  7,
  7,
  7,
  7,
  15,
  11,
  14,
  13,
  28,
  20,
  22,
  20,
  20,
  22,
  22,
  22,
  23,
  22,
  23,
  23,
  23,
  23,
  23,
  24,
  23,
  24,
  24,
  22,
  23,
  24,
  23,
  23,
  23,
  23,
  21,
  22,
  23,
  22,
  23,
  23,
  24,
  22,
  21,
  20,
  22,
  22,
  23,
  23,
  21,
  23,
  22,
  22,
  24,
  21,
  22,
  23,
  23,
  21,
  21,
  22,
  21,
  23,
  22,
  23,
  23,
  20,
  22,
  22,
  22,
  23,
  22,
  22,
  23,
  26,
  26,
  20,
  19,
  22,
  23,
  22,
  25,
  26,
  26,
  26,
  27,
  27,
  26,
  24,
  25,
  19,
  21,
  26,
  27,
  27,
  26,
  27,
  24,
  21,
  21,
  26,
  26,
  28,
  27,
  27,
  27,
  20,
  24,
  20,
  21,
  22,
  21,
  21,
  23,
  22,
  22,
  25,
  25,
  24,
  24,
  26,
  23,
  26,
  27,
  26,
  26,
  27,
  27,
  27,
  27,
  27,
  28,
  27,
  27,
  27,
  27,
  27,
  26,
  30,
];
/** Raised when a header block is not valid HPACK: a connection error (COMPRESSION_ERROR). */
export class HpackError extends Error {
  /** Creates the error. */
  constructor(message: string) {
    super(message);
    this.name = "HpackError";
  }
}

/**
 * The Huffman decoding tree: node `n` has children `tree[2n]` (bit 0) and `tree[2n + 1]`
 * (bit 1); a child below 0 is the leaf of symbol `-child - 1`, 0 is no child.
 */
const TREE = buildTree();

function buildTree(): Int32Array {
  const tree = new Int32Array(2 * 512);
  let nodes = 1; // node 0 is the root
  for (let sym = 0; sym < HUFFMAN_CODES.length; sym++) {
    const code = HUFFMAN_CODES[sym];
    const len = HUFFMAN_LENGTHS[sym];
    let node = 0;
    for (let i = len - 1; i >= 0; i--) {
      const slot = 2 * node + ((code >>> i) & 1);
      if (i === 0) {
        tree[slot] = -sym - 1;
      } else {
        if (tree[slot] === 0) tree[slot] = nodes++;
        node = tree[slot];
      }
    }
  }
  return tree;
}

/** Decodes a Huffman-coded string (RFC 7541 5.2) as Latin-1. */
export function huffmanDecode(buf: Uint8Array, start: number, end: number): string {
  let out = "";
  let node = 0;
  let depth = 0; // bits since the last symbol, to check the padding
  let ones = true; // whether those bits were all ones
  for (let i = start; i < end; i++) {
    const byte = buf[i];
    for (let bit = 7; bit >= 0; bit--) {
      const b = (byte >>> bit) & 1;
      const next = TREE[2 * node + b];
      if (next < 0) {
        const sym = -next - 1;
        if (sym === 256) throw new HpackError("Huffman string contains EOS");
        out += String.fromCharCode(sym);
        node = 0;
        depth = 0;
        ones = true;
      } else if (next === 0) {
        throw new HpackError("invalid Huffman code");
      } else {
        node = next;
        depth++;
        if (b === 0) ones = false;
      }
    }
  }
  if (depth > 7 || !ones) throw new HpackError("invalid Huffman padding");
  return out;
}

/** One decoded header field. */
export type HeaderField = [name: string, value: string];

/** The HPACK decoder of one connection: it keeps the dynamic table between blocks. */
export class HpackDecoder {
  #table: HeaderField[] = []; // newest first
  #size = 0;
  #max: number;
  readonly #limit: number;

  /**
   * @param maxTableSize Our `SETTINGS_HEADER_TABLE_SIZE` (the most the peer may use).
   */
  constructor(maxTableSize = 4096) {
    this.#max = maxTableSize;
    this.#limit = maxTableSize;
  }

  /**
   * Decodes one complete header block.
   *
   * @throws {HpackError} when the block is not valid.
   */
  decode(buf: Uint8Array): HeaderField[] {
    const fields: HeaderField[] = [];
    let pos = 0;
    const end = buf.length;
    const int = (prefixBits: number): number => {
      const mask = (1 << prefixBits) - 1;
      let value = buf[pos++] & mask;
      if (value < mask) return value;
      let shift = 0;
      for (;;) {
        if (pos >= end) throw new HpackError("truncated integer");
        const b = buf[pos++];
        value += (b & 0x7f) * 2 ** shift;
        shift += 7;
        if (b < 0x80) break;
        if (shift > 28) throw new HpackError("integer too large");
      }
      return value;
    };
    const str = (): string => {
      if (pos >= end) throw new HpackError("truncated string");
      const huffman = (buf[pos] & 0x80) !== 0;
      const len = int(7);
      if (pos + len > end) throw new HpackError("string runs past the block");
      const s = huffman ? huffmanDecode(buf, pos, pos + len) : latin1(buf, pos, pos + len);
      pos += len;
      return s;
    };
    let sizeUpdateAllowed = true;
    while (pos < end) {
      const b = buf[pos];
      if (b & 0x80) {
        // Indexed field.
        fields.push(this.#field(int(7)));
        sizeUpdateAllowed = false;
      } else if (b & 0x40) {
        // Literal with incremental indexing.
        const index = int(6);
        const name = index === 0 ? str() : this.#field(index)[0];
        const field: HeaderField = [name, str()];
        fields.push(field);
        this.#add(field);
        sizeUpdateAllowed = false;
      } else if (b & 0x20) {
        // Dynamic table size update.
        if (!sizeUpdateAllowed) throw new HpackError("table size update after a field");
        const size = int(5);
        if (size > this.#limit) throw new HpackError(`table size ${size} over ${this.#limit}`);
        this.#max = size;
        this.#evict();
      } else {
        // Literal without indexing (0000) or never indexed (0001).
        const index = int(4);
        const name = index === 0 ? str() : this.#field(index)[0];
        fields.push([name, str()]);
        sizeUpdateAllowed = false;
      }
    }
    return fields;
  }

  #field(index: number): HeaderField {
    if (index === 0) throw new HpackError("index 0");
    if (index <= STATIC_TABLE.length) {
      const [name, value] = STATIC_TABLE[index - 1];
      return [name, value];
    }
    const entry = this.#table[index - STATIC_TABLE.length - 1];
    if (entry === undefined) throw new HpackError(`index ${index} is not in the table`);
    return [entry[0], entry[1]];
  }

  #add(field: HeaderField): void {
    const size = field[0].length + field[1].length + 32;
    if (size > this.#max) {
      this.#table = [];
      this.#size = 0;
      return;
    }
    this.#table.unshift(field);
    this.#size += size;
    this.#evict();
  }

  #evict(): void {
    while (this.#size > this.#max) {
      const old = this.#table.pop()!;
      this.#size -= old[0].length + old[1].length + 32;
    }
  }
}

function latin1(buf: Uint8Array, start: number, end: number): string {
  let s = "";
  for (let i = start; i < end; i++) s += String.fromCharCode(buf[i]);
  return s;
}

/** Index of a static-table name, for literals with an indexed name. */
const STATIC_NAMES = new Map<string, number>();
for (let i = STATIC_TABLE.length - 1; i >= 0; i--) STATIC_NAMES.set(STATIC_TABLE[i][0], i + 1);

/**
 * Encodes header fields as HPACK literals without indexing (RFC 7541 6.2.2), a static
 * name index where there is one, a fully indexed field where the static table has the
 * pair; strings are sent plain. Names must be lower case, values Latin-1.
 */
export function encodeHeaders(fields: readonly HeaderField[]): Uint8Array {
  const out: number[] = [];
  const int = (value: number, prefixBits: number, first: number) => {
    const mask = (1 << prefixBits) - 1;
    if (value < mask) {
      out.push(first | value);
      return;
    }
    out.push(first | mask);
    value -= mask;
    while (value >= 0x80) {
      out.push((value & 0x7f) | 0x80);
      value = Math.floor(value / 128);
    }
    out.push(value);
  };
  const str = (s: string) => {
    int(s.length, 7, 0);
    for (let i = 0; i < s.length; i++) out.push(s.charCodeAt(i) & 0xff);
  };
  for (const [name, value] of fields) {
    const pair = STATIC_TABLE.findIndex(([n, v]) => n === name && v === value && v !== "");
    if (pair !== -1) {
      int(pair + 1, 7, 0x80);
      continue;
    }
    const index = STATIC_NAMES.get(name);
    if (index !== undefined) int(index, 4, 0);
    else {
      out.push(0);
      str(name);
    }
    str(value);
  }
  return Uint8Array.from(out);
}
