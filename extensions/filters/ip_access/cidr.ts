/**
 * IPv4 and IPv6 addresses as bigints, and CIDR matching on them.
 *
 * @module
 */

/** A parsed address: its family and value. */
export interface Ip {
  v6: boolean;
  value: bigint;
}

/** A parsed CIDR range. */
export interface Cidr {
  v6: boolean;
  network: bigint;
  mask: bigint;
}

/** Parses `a.b.c.d`, an IPv6 address, or an IPv4-mapped IPv6 address (as IPv4). */
export function parseIp(text: string): Ip | undefined {
  const address = text.startsWith("[") && text.endsWith("]") ? text.slice(1, -1) : text;
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return parseIp(mapped[1]);
  if (address.includes(".")) {
    const parts = address.split(".");
    if (parts.length !== 4) return undefined;
    let value = 0n;
    for (const part of parts) {
      if (!/^\d{1,3}$/.test(part) || Number(part) > 255) return undefined;
      value = (value << 8n) | BigInt(part);
    }
    return { v6: false, value };
  }
  if (!address.includes(":")) return undefined;
  const halves = address.split("::");
  if (halves.length > 2) return undefined;
  const head = halves[0] === "" ? [] : halves[0].split(":");
  const tail = halves.length === 2 && halves[1] !== "" ? halves[1].split(":") : [];
  const missing = 8 - head.length - tail.length;
  if (halves.length === 1 ? missing !== 0 : missing < 1) return undefined;
  const groups = [...head, ...Array(halves.length === 2 ? missing : 0).fill("0"), ...tail];
  let value = 0n;
  for (const group of groups) {
    if (!/^[0-9a-f]{1,4}$/i.test(group)) return undefined;
    value = (value << 16n) | BigInt(parseInt(group, 16));
  }
  return { v6: true, value };
}

/** Parses `address/prefix`; a bare address is a single-host range. */
export function parseCidr(text: string): Cidr | undefined {
  const [address, prefixText, extra] = text.split("/");
  if (extra !== undefined) return undefined;
  const ip = parseIp(address);
  if (ip === undefined) return undefined;
  const bits = ip.v6 ? 128 : 32;
  const prefix = prefixText === undefined ? bits : Number(prefixText);
  if (!Number.isInteger(prefix) || prefix < 0 || prefix > bits) return undefined;
  const all = (1n << BigInt(bits)) - 1n;
  const mask = (all >> BigInt(bits - prefix)) << BigInt(bits - prefix) & all;
  return { v6: ip.v6, network: ip.value & mask, mask };
}

/** True when `ip` lies in `range` (families must agree). */
export function matchesCidr(range: Cidr, ip: Ip): boolean {
  return range.v6 === ip.v6 && (ip.value & range.mask) === range.network;
}
