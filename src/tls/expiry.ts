/**
 * The expiry of the certificates a TLS listener serves, for the stats: `notAfter` of
 * every certificate of its PEM chain, read once with `node:crypto`'s `X509Certificate`
 * when the listener starts or gets new material. The gauges (seconds until `notAfter`)
 * are computed when the stats are read, so nothing runs per connection.
 *
 * @module
 */

import { X509Certificate } from "node:crypto";
import { threadStats } from "../stats/scopes.ts";

/** One certificate of a chain. */
export interface CertificateExpiry {
  /** The label: the subject's CN (or the whole subject), unique within the chain. */
  name: string;
  /** `notAfter` in milliseconds since the epoch. */
  notAfterMs: number;
  /** The subject, one `key=value` a line as node prints it. */
  subject: string;
  /** The serial number in hex. */
  serial: string;
}

const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g;

/**
 * Reads `notAfter` of every certificate in a PEM text (a chain: the leaf first).
 * Certificates that do not parse are left out.
 *
 * @param pem The listener's `cert_chain`, in PEM.
 * @returns One entry per certificate, in the chain's order.
 * @example
 * ```ts ignore
 * certificateExpiries(material.cert); // [{ name: "localhost", notAfterMs: 1798…, … }]
 * ```
 */
export function certificateExpiries(pem: string): CertificateExpiry[] {
  const out: CertificateExpiry[] = [];
  const seen = new Set<string>();
  for (const block of pem.match(PEM_CERTIFICATE) ?? []) {
    let x509: X509Certificate;
    try {
      x509 = new X509Certificate(block);
    } catch {
      continue;
    }
    const notAfterMs = Date.parse(x509.validTo);
    if (Number.isNaN(notAfterMs)) continue;
    const subject = x509.subject;
    const cn = /^CN=(.*)$/m.exec(subject)?.[1];
    let name = cn ?? subject.replaceAll("\n", ",");
    if (seen.has(name)) name = `${name}#${x509.serialNumber}`;
    seen.add(name);
    out.push({ name, notAfterMs, subject, serial: x509.serialNumber });
  }
  return out;
}

/**
 * Records the certificates listener `listener` serves from now on in this thread's stats
 * (`certificate.<listener>.<name>.seconds_until_expiry`, and the listener's
 * `ssl_seconds_until_first_cert_expiring`).
 *
 * @param listener The listener's name.
 * @param pem Its certificate chain, in PEM.
 */
export function recordListenerCertificates(listener: string, pem: string): void {
  threadStats.certificates(listener, certificateExpiries(pem));
}
