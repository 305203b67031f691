/**
 * Path normalization, on by default as Envoy's `normalize_path`: routes used as access
 * control (`prefix: /admin` answering 403) must see the path the upstream will act on.
 *
 * On the path part of an origin-form target (the query is kept as is):
 * - a character outside RFC 3986's `pchar`/`/` set (controls, space, `#`, non-ASCII) → reject;
 * - `%XX` of an unreserved character is decoded (`%61` → `a`, `%2e` → `.`); an invalid
 *   `%` escape → reject; other escapes are kept as sent;
 * - `%2F`/`%5C` (any case): `reject` (default), `unescape_and_forward` (decoded, then
 *   normalized as `/`) or `keep` (left encoded, never a separator);
 * - `\` is read as `/` (as browsers and Envoy's URL canonicalizer do);
 * - a dot segment with a path parameter (`..;x`, `.;`), which Tomcat and other servlet
 *   containers read as `..`/`.`, → reject;
 * - `//` is merged to `/` (`merge_slashes`);
 * - dot segments are removed (RFC 3986 §5.2.4).
 *
 * A path with no `%`, `\`, `;`, `//` and no dot segment is returned as is after one scan.
 *
 * @module
 */

/** What to do with `%2F` and `%5C` in a path. */
export type EscapedSlashesAction = "reject" | "unescape_and_forward" | "keep";

/** The path options of a listener's proxy (connection manager). */
export interface PathOptions {
  /** Decode unreserved escapes, read `\` as `/`, remove dot segments; default true. */
  readonly normalize: boolean;
  /** Merge `//` into `/`; default true. */
  readonly mergeSlashes: boolean;
  /** `%2F`/`%5C`; default `reject`. */
  readonly escapedSlashes: EscapedSlashesAction;
}

/** Mosaic's defaults, which are Envoy's recommended edge settings. */
export const DEFAULT_PATH_OPTIONS: PathOptions = Object.freeze({
  normalize: true,
  mergeSlashes: true,
  escapedSlashes: "reject",
});

/** 1: allowed as is, 2: needs the slow path (`%`, `\`, `;`), 0: refused. */
const CLASS = new Uint8Array(128);
for (
  const c of "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~!$&'()*+,=:@/"
) {
  CLASS[c.charCodeAt(0)] = 1;
}
CLASS[0x25] = 2; // %
CLASS[0x5c] = 2; // \
CLASS[0x3b] = 2; // ;
// Kept for compatibility with what clients send and upstreams accept, though not pchar.
for (const c of '"<>[]^`{|}') CLASS[c.charCodeAt(0)] = 1;

const UNRESERVED = new Uint8Array(128);
for (const c of "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~") {
  UNRESERVED[c.charCodeAt(0)] = 1;
}

function hexValue(code: number): number {
  if (code >= 0x30 && code <= 0x39) return code - 0x30;
  const lower = code | 0x20;
  if (lower >= 0x61 && lower <= 0x66) return lower - 0x61 + 10;
  return -1;
}

/**
 * Normalizes the path of an origin-form request target and keeps its query.
 *
 * @param target `/path?query`; must start with `/`.
 * @param options The listener's path options.
 * @returns The normalized target (`target` itself when nothing changes), or undefined
 * when the request must be refused with 400.
 *
 * @example
 * ```ts
 * import { DEFAULT_PATH_OPTIONS, normalizeTarget } from "./path.ts";
 * normalizeTarget("/public/../admin?x=1", DEFAULT_PATH_OPTIONS); // "/admin?x=1"
 * normalizeTarget("/public%2f..%2fadmin", DEFAULT_PATH_OPTIONS); // undefined (400)
 * ```
 */
export function normalizeTarget(target: string, options: PathOptions): string | undefined {
  if (target.charCodeAt(0) !== 0x2f) return undefined;
  const length = target.length;
  let end = length;
  let slow = false;
  let previous = 0x2f;
  for (let i = 1; i < length; i++) {
    const c = target.charCodeAt(i);
    if (c === 0x3f /* ? */) {
      end = i;
      break;
    }
    if (c >= 128) return undefined;
    const kind = CLASS[c];
    if (kind === 0) return undefined;
    if (kind === 2) slow = true;
    else if (previous === 0x2f) {
      // A segment starts here: `//`, `/./`, `/../`, or a trailing `/.`, `/..`.
      if (c === 0x2f) slow = true;
      else if (c === 0x2e) {
        const next = i + 1 < length ? target.charCodeAt(i + 1) : 0x2f;
        if (next === 0x2f || next === 0x3f) slow = true;
        else if (next === 0x2e) {
          const after = i + 2 < length ? target.charCodeAt(i + 2) : 0x2f;
          if (after === 0x2f || after === 0x3f) slow = true;
        }
      }
    }
    previous = c;
  }
  if (!slow) return target;
  const path = normalizePath(target.slice(0, end), options);
  if (path === undefined) return undefined;
  return end === length ? path : path + target.slice(end);
}

/** The slow path: decode, split into segments, resolve, join. */
function normalizePath(path: string, options: PathOptions): string | undefined {
  // 1. Escapes and backslashes, into one string whose `/` are all separators.
  let decoded = "";
  let copied = 0;
  for (let i = 0; i < path.length; i++) {
    const c = path.charCodeAt(i);
    if (c === 0x5c /* \ */) {
      if (!options.normalize) continue;
      decoded += path.slice(copied, i) + "/";
      copied = i + 1;
      continue;
    }
    if (c !== 0x25 /* % */) continue;
    const high = i + 2 < path.length ? hexValue(path.charCodeAt(i + 1)) : -1;
    const low = high < 0 ? -1 : hexValue(path.charCodeAt(i + 2));
    if (low < 0) return undefined;
    const byte = high * 16 + low;
    let replacement: string | undefined;
    if (byte === 0x2f || byte === 0x5c) {
      if (options.escapedSlashes === "reject") return undefined;
      if (options.escapedSlashes === "unescape_and_forward") {
        replacement = options.normalize || byte === 0x2f ? "/" : "\\";
      }
    } else if (options.normalize && byte < 128 && UNRESERVED[byte] === 1) {
      replacement = String.fromCharCode(byte);
    }
    if (replacement !== undefined) {
      decoded += path.slice(copied, i) + replacement;
      copied = i + 3;
    }
    i += 2;
  }
  if (copied > 0) decoded += path.slice(copied);
  else decoded = path;

  // 2. Segments: `..;x` and `.;` are refused, `.` and `..` resolved, empty ones merged.
  const segments = decoded.split("/");
  const out: string[] = [];
  const last = segments.length - 1;
  let trailingSlash = false;
  for (let i = 1; i <= last; i++) {
    const segment = segments[i];
    trailingSlash = false;
    if (segment.charCodeAt(0) === 0x2e /* . */) {
      const semicolon = segment.indexOf(";");
      const name = semicolon < 0 ? segment : segment.slice(0, semicolon);
      if (semicolon >= 0 && (name === "." || name === "..")) return undefined;
      if (options.normalize && name === ".") {
        trailingSlash = true;
        continue;
      }
      if (options.normalize && name === "..") {
        out.pop();
        trailingSlash = true;
        continue;
      }
    }
    if (segment === "" && options.mergeSlashes) {
      trailingSlash = true;
      continue;
    }
    out.push(segment);
  }
  const joined = "/" + out.join("/");
  return trailingSlash && out.length > 0 ? joined + "/" : joined;
}
