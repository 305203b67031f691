/**
 * TLS on listeners served by `Deno.serve` directly, the fast path.
 *
 * What Deno 2.9.6 offers there: `cert` and `key`, ALPN fixed to `h2` and `http/1.1`
 * (`Deno.serve` throws when given `alpnProtocols`), TLS 1.2 and 1.3 only, and no client
 * certificate verification (unknown options such as `caCerts` or `requestCert` are
 * silently ignored). A listener that needs client certificates, or certificates that
 * change without rebinding, is served by `serveTlsBridge` in `bridge.ts`.
 *
 * @module
 */

import { ConfigError } from "../config/errors.ts";
import type { TlsContextConfig } from "../config/types.ts";
import type { TlsMaterial } from "../filter/api.ts";
import { checkTlsVersions } from "./versions.ts";

/** The protocols `Deno.serve` offers by ALPN, always. */
export const DENO_SERVE_ALPN: readonly string[] = ["h2", "http/1.1"];

/**
 * Checks that `Deno.serve` can serve a listener's `tls_context` as written.
 *
 * @param tls The listener's `tls_context`.
 * @throws {ConfigError} when it asks for client certificates (`require_client_cert`),
 * ALPN protocols other than `h2` and `http/1.1`, or TLS versions Deno cannot limit to.
 */
export function checkServerTlsSupported(tls: TlsContextConfig): void {
  checkTlsVersions(tls);
  if (tls.requireClientCert) {
    throw new ConfigError(
      { ...tls.position, path: `${tls.position.path}.require_client_cert` },
      "Deno.serve cannot verify client certificates on a server socket (Deno 2.9.6 has no " +
        "option for it and ignores unknown ones): serve this listener through serveTlsBridge",
    );
  }
  checkAlpn(tls, DENO_SERVE_ALPN, "Deno.serve always offers h2 and http/1.1 by ALPN");
}

/**
 * The TLS options of `Deno.serve` for a listener: spread them into its options.
 *
 * @param material The certificate and key, in PEM.
 * @param tls The listener's `tls_context`, checked with {@linkcode checkServerTlsSupported}.
 * @returns `{ cert, key }`; ALPN is not among them because `Deno.serve` sets it itself.
 * @throws {ConfigError} as {@linkcode checkServerTlsSupported} does.
 * @example
 * ```ts
 * Deno.serve({ hostname: "0.0.0.0", port: 443, ...serveTlsOptions(material, tls) }, handler);
 * ```
 */
export function serveTlsOptions(
  material: TlsMaterial,
  tls: TlsContextConfig,
): { cert: string; key: string } {
  checkServerTlsSupported(tls);
  return { cert: material.cert, key: material.key };
}

/**
 * Rejects an `alpn` list that names protocols outside `offered`, or leaves some out when
 * the server cannot choose (`exact`).
 *
 * @param tls The `tls_context`.
 * @param offered What the server can offer.
 * @param reason Said in the error.
 * @param exact True when the server always offers all of `offered`.
 * @throws {ConfigError} naming `alpn`.
 */
export function checkAlpn(
  tls: TlsContextConfig,
  offered: readonly string[],
  reason: string,
  exact = true,
): void {
  if (tls.alpn.length === 0) return;
  const unknown = tls.alpn.filter((p) => !offered.includes(p));
  const missing = exact ? offered.filter((p) => !tls.alpn.includes(p)) : [];
  if (unknown.length > 0 || missing.length > 0) {
    throw new ConfigError(
      { ...tls.position, path: `${tls.position.path}.alpn` },
      `${reason}; got ${JSON.stringify(tls.alpn)}`,
    );
  }
}
