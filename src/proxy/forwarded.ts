/**
 * Which forwarded headers a client may set: Envoy's `use_remote_address` and
 * `xff_num_trusted_hops`, plus `trusted_proxies` (CIDRs).
 *
 * - A peer whose address is in `trusted_proxies` is a proxy in front of Mosaic: its
 *   `X-Forwarded-Proto`, `X-Forwarded-Host` and `x-request-id` are kept (each set when
 *   absent).
 * - Any other peer is a client at the edge: `X-Forwarded-Proto` is set to the listener's
 *   scheme and `X-Forwarded-Host` to the validated authority (both overwriting the
 *   client's), and `x-request-id` is generated anew.
 * - `use_remote_address: true` (default) appends the peer's address to `X-Forwarded-For`;
 *   `false` forwards it unchanged (Mosaic behind a proxy that appends).
 * - `xff_num_trusted_hops: N` (default 0): the client's address is taken from
 *   `X-Forwarded-For`, N entries from the right (after the append, if any) — only when the
 *   peer is trusted — and sent as `x-envoy-external-address`, as Envoy does.
 *
 * @module
 */

/** The compiled trust settings of a listener's proxy. */
export interface ForwardedPolicy {
  /** Append the peer to X-Forwarded-For. */
  readonly useRemoteAddress: boolean;
  /** Proxy hops in X-Forwarded-For to skip when finding the client (trusted peers only). */
  readonly xffNumTrustedHops: number;
  /** Tells whether a peer address is a trusted proxy. */
  readonly trusts: (address: string) => boolean;
}

/** The default: an edge proxy that trusts no one. */
export const EDGE_POLICY: ForwardedPolicy = Object.freeze({
  useRemoteAddress: true,
  xffNumTrustedHops: 0,
  trusts: () => false,
});

/** Builds a policy from the config's values. */
export function forwardedPolicy(
  useRemoteAddress: boolean,
  xffNumTrustedHops: number,
  trustedProxies: readonly string[],
): ForwardedPolicy {
  if (useRemoteAddress && xffNumTrustedHops === 0 && trustedProxies.length === 0) {
    return EDGE_POLICY;
  }
  const ranges = trustedProxies.map((cidr) => {
    const range = parseCidr(cidr);
    if (range === undefined) throw new TypeError(`"${cidr}" is not an IPv4 or IPv6 CIDR`);
    return range;
  });
  return Object.freeze({
    useRemoteAddress,
    xffNumTrustedHops,
    trusts: ranges.length === 0 ? () => false : (address: string) => {
      const bytes = parseIp(address);
      if (bytes === undefined) return false;
      for (const range of ranges) if (inRange(bytes, range)) return true;
      return false;
    },
  });
}

/**
 * Sets the forwarded headers of a request about to go upstream.
 *
 * @param authority The validated authority; "" when there was none (HTTP/1.0).
 */
export function applyForwarded(
  headers: Headers,
  peer: string,
  scheme: string,
  authority: string,
  policy: ForwardedPolicy,
): void {
  const trusted = policy.trusts(peer);
  let forwardedFor = headers.get("x-forwarded-for");
  if (policy.useRemoteAddress) {
    forwardedFor = forwardedFor === null ? peer : `${forwardedFor}, ${peer}`;
    headers.set("x-forwarded-for", forwardedFor);
  }
  if (trusted) {
    if (!headers.has("x-forwarded-proto")) headers.set("x-forwarded-proto", scheme);
    if (!headers.has("x-forwarded-host") && authority !== "") {
      headers.set("x-forwarded-host", authority);
    }
    if (!headers.has("x-request-id")) headers.set("x-request-id", crypto.randomUUID());
    if (policy.xffNumTrustedHops > 0 && forwardedFor !== null) {
      const entries = forwardedFor.split(",");
      const client = entries[entries.length - 1 - policy.xffNumTrustedHops]?.trim();
      if (client !== undefined && client !== "") {
        headers.set("x-envoy-external-address", client);
      }
    }
    return;
  }
  headers.set("x-forwarded-proto", scheme);
  if (authority !== "") headers.set("x-forwarded-host", authority);
  else headers.delete("x-forwarded-host");
  headers.set("x-request-id", crypto.randomUUID());
  headers.delete("x-envoy-external-address");
}

interface Range {
  readonly bytes: Uint8Array;
  readonly bits: number;
}

/** Parses `10.0.0.0/8`, `::1/128`, or a bare address (a /32 or /128). */
export function parseCidr(cidr: string): Range | undefined {
  const slash = cidr.indexOf("/");
  const bytes = parseIp(slash < 0 ? cidr : cidr.slice(0, slash));
  if (bytes === undefined) return undefined;
  const max = bytes.length * 8;
  if (slash < 0) return { bytes, bits: max };
  const text = cidr.slice(slash + 1);
  if (!/^\d{1,3}$/.test(text)) return undefined;
  const bits = Number(text);
  if (bits > max) return undefined;
  return { bytes, bits };
}

function inRange(address: Uint8Array, range: Range): boolean {
  if (address.length !== range.bytes.length) return false;
  let bits = range.bits;
  for (let i = 0; bits > 0; i++, bits -= 8) {
    const mask = bits >= 8 ? 0xff : (0xff << (8 - bits)) & 0xff;
    if ((address[i] & mask) !== (range.bytes[i] & mask)) return false;
  }
  return true;
}

/** Parses an IPv4 (4 bytes) or IPv6 (16 bytes) address; `::ffff:a.b.c.d` is IPv4. */
export function parseIp(text: string): Uint8Array | undefined {
  if (text.startsWith("[") && text.endsWith("]")) text = text.slice(1, -1);
  if (text.includes(":")) {
    const lower = text.toLowerCase();
    if (lower.startsWith("::ffff:") && lower.includes(".")) return parseIpv4(lower.slice(7));
    return parseIpv6(lower);
  }
  return parseIpv4(text);
}

function parseIpv4(text: string): Uint8Array | undefined {
  const parts = text.split(".");
  if (parts.length !== 4) return undefined;
  const bytes = new Uint8Array(4);
  for (let i = 0; i < 4; i++) {
    if (!/^\d{1,3}$/.test(parts[i])) return undefined;
    const value = Number(parts[i]);
    if (value > 255) return undefined;
    bytes[i] = value;
  }
  return bytes;
}

function parseIpv6(text: string): Uint8Array | undefined {
  const zone = text.indexOf("%");
  if (zone >= 0) text = text.slice(0, zone);
  const halves = text.split("::");
  if (halves.length > 2) return undefined;
  const head = halves[0] === "" ? [] : halves[0].split(":");
  const tail = halves.length === 2 && halves[1] !== "" ? halves[1].split(":") : [];
  const groups = head.length + tail.length;
  if (halves.length === 1 ? groups !== 8 : groups > 7) return undefined;
  const bytes = new Uint8Array(16);
  const write = (list: string[], offset: number): boolean => {
    for (let i = 0; i < list.length; i++) {
      if (!/^[0-9a-f]{1,4}$/.test(list[i])) return false;
      const value = parseInt(list[i], 16);
      bytes[offset + i * 2] = value >> 8;
      bytes[offset + i * 2 + 1] = value & 0xff;
    }
    return true;
  };
  if (!write(head, 0) || !write(tail, 16 - tail.length * 2)) return undefined;
  return bytes;
}
