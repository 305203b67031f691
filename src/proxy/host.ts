/**
 * Validation of a request's authority (the Host header, or `:authority` over HTTP/2) and
 * of an absolute-form request target. The router looks the authority up as is and the
 * upstream request carries it, so anything that is not an RFC 3986 host with an optional
 * port (`a/admin`, `a/x?q= y`, `a b`, `user@host`, an empty value) is refused with 400
 * before it can reach either.
 *
 * @module
 */

/**
 * Bytes allowed in a reg-name (RFC 3986 §3.2.2): unreserved, sub-delims and `%` (checked
 * for its two hex digits separately). IPv4 addresses are reg-names by these rules.
 */
const REG_NAME = new Uint8Array(128);
for (const c of "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~!$&'()*+,;=%") {
  REG_NAME[c.charCodeAt(0)] = 1;
}

function isHex(code: number): boolean {
  return (code >= 0x30 && code <= 0x39) || ((code | 0x20) >= 0x61 && (code | 0x20) <= 0x66);
}

/**
 * Tells whether `authority` is `host [ ":" port ]` with host a reg-name, an IPv4 address or
 * a bracketed IPv6 address (RFC 3986 §3.2.2), non-empty, and port 1 to 5 digits up to
 * 65535. One scan, no allocation.
 *
 * @example
 * ```ts
 * import { isValidAuthority } from "./host.ts";
 * isValidAuthority("example.com:8080"); // true
 * isValidAuthority("[::1]:80"); // true
 * isValidAuthority("a/admin"); // false
 * ```
 */
export function isValidAuthority(authority: string): boolean {
  const length = authority.length;
  if (length === 0) return false;
  let i = 0;
  if (authority.charCodeAt(0) === 0x5b /* [ */) {
    // IP-literal: hex digits, colons and dots (an embedded IPv4), at least one colon.
    let colons = 0;
    for (i = 1; i < length; i++) {
      const c = authority.charCodeAt(i);
      if (c === 0x5d /* ] */) break;
      if (c === 0x3a) colons++;
      else if (c !== 0x2e && !isHex(c)) return false;
    }
    if (i >= length || colons < 2 || i === 1) return false;
    i++;
  } else {
    for (; i < length; i++) {
      const c = authority.charCodeAt(i);
      if (c === 0x3a /* : */) break;
      if (c >= 128 || REG_NAME[c] === 0) return false;
      if (c === 0x25 /* % */) {
        if (i + 2 >= length || !isHex(authority.charCodeAt(i + 1))) return false;
        if (!isHex(authority.charCodeAt(i + 2))) return false;
        i += 2;
      }
    }
    if (i === 0) return false;
  }
  if (i === length) return true;
  if (authority.charCodeAt(i) !== 0x3a) return false;
  const digits = length - i - 1;
  if (digits < 1 || digits > 5) return false;
  let port = 0;
  for (i++; i < length; i++) {
    const c = authority.charCodeAt(i);
    if (c < 0x30 || c > 0x39) return false;
    port = port * 10 + c - 0x30;
  }
  return port <= 65535;
}

/** An absolute-form request target split into its parts. */
export interface AbsoluteTarget {
  /** The authority of the target (`b.example:8080`). */
  readonly authority: string;
  /** The target in origin-form: path and query, `/` when the target has no path. */
  readonly originForm: string;
}

/**
 * Splits an absolute-form request target (`http://b.example/x?y`, RFC 9112 §3.2.2) into
 * its authority and origin-form. Returns undefined when the target is not `http:` or
 * `https:` with a valid authority (userinfo is refused, as RFC 9110 §4.2.4 says).
 */
export function parseAbsoluteTarget(target: string): AbsoluteTarget | undefined {
  const schemeEnd = target.indexOf("://");
  if (schemeEnd !== 4 && schemeEnd !== 5) return undefined;
  const scheme = target.slice(0, schemeEnd).toLowerCase();
  if (scheme !== "http" && scheme !== "https") return undefined;
  const start = schemeEnd + 3;
  let end = start;
  while (end < target.length) {
    const c = target.charCodeAt(end);
    if (c === 0x2f /* / */ || c === 0x3f /* ? */) break;
    end++;
  }
  const authority = target.slice(start, end);
  if (!isValidAuthority(authority)) return undefined;
  let originForm = target.slice(end);
  if (originForm === "") originForm = "/";
  else if (originForm.charCodeAt(0) === 0x3f) originForm = "/" + originForm;
  return { authority, originForm };
}
