/**
 * How a TLS listener is served: by `Deno.serve` itself (`direct`) or by the `node:tls`
 * bridge (`bridge`), and why. The trade-off (numbers from `bench/tls_bench.sh` and the
 * rotation tests in `tests/e2e/tls/`):
 *
 * |                          | bridge                        | direct                        |
 * | ------------------------ | ----------------------------- | ----------------------------- |
 * | new certificate          | in place, no request fails    | rebind, a few requests fail   |
 * | client certificates      | yes (`require_client_cert`)   | no (Deno 2.9.6 cannot)        |
 * | plain text on the port   | one log line                  | TLS alert, nothing logged     |
 * | throughput               | lower: one more hop per byte  | Deno.serve's                  |
 *
 * The default serves every TLS listener through the bridge, because a certificate may
 * change at any SIGHUP (the `file` provider reads its files again) or refresh, and the
 * bridge is the only way that then fails no request. An operator whose certificates are
 * static, or who accepts the rare failed request of a rotation, asks for `direct` with
 * `MOSAIC_TLS_SERVE=direct` (and `--unstable-net`, without which a direct listener keeps its
 * certificate until restart).
 *
 * @module
 */

import type { TlsContextConfig } from "../config/types.ts";

/** How a TLS listener is served: `Deno.serve` itself, or the `node:tls` bridge. */
export type TlsServeMode = "direct" | "bridge";

/** Which way the operator asks TLS listeners to be served. */
export type TlsServePreference = "auto" | TlsServeMode;

/** Why a listener is served the way it is, for the start-up log line. */
export interface TlsServeChoice {
  /** The way chosen. */
  mode: TlsServeMode;
  /** Why, in a few words. */
  reason: string;
}

/** The environment variable that overrides `auto`: `direct` or `bridge`. */
export const ENV_PREFERENCE = "MOSAIC_TLS_SERVE";

/**
 * Chooses how to serve a TLS listener. `auto` and `bridge` give the bridge; `direct`
 * gives `Deno.serve` unless the listener needs client certificates, which only the bridge
 * verifies.
 *
 * @param tls The listener's `tls_context`.
 * @param options `preference`, default `auto`; `canRebind`, default {@linkcode canReusePort}.
 * @returns The way and the reason, for the start-up log line.
 * @example
 * ```ts
 * chooseTlsServeMode(listener.tls!, { preference: servePreferenceFromEnv() });
 * // { mode: "bridge", reason: "new certificates (SIGHUP, refresh) fail no request; …" }
 * ```
 */
export function chooseTlsServeMode(
  tls: TlsContextConfig,
  options: { preference?: TlsServePreference; canRebind?: boolean } = {},
): TlsServeChoice {
  const preference = options.preference ?? "auto";
  if (tls.requireClientCert) {
    return { mode: "bridge", reason: "require_client_cert: only node:tls verifies clients" };
  }
  if (preference === "direct") {
    const canRebind = options.canRebind ?? canReusePort();
    return {
      mode: "direct",
      reason: canRebind
        ? `${ENV_PREFERENCE}=direct; a new certificate rebinds the port with reusePort`
        : `${ENV_PREFERENCE}=direct; without --unstable-net the certificate stays until restart`,
    };
  }
  return {
    mode: "bridge",
    reason: preference === "bridge"
      ? `${ENV_PREFERENCE}=bridge`
      : `new certificates (SIGHUP, refresh) fail no request; ${ENV_PREFERENCE}=direct is faster`,
  };
}

/**
 * The operator's preference from {@linkcode ENV_PREFERENCE}; `auto` when it is unset,
 * not readable (no `--allow-env` for it) or not a known value.
 *
 * @returns The preference.
 */
export function servePreferenceFromEnv(): TlsServePreference {
  const granted = Deno.permissions.querySync({ name: "env", variable: ENV_PREFERENCE });
  if (granted.state !== "granted") return "auto";
  const value = Deno.env.get(ENV_PREFERENCE);
  return value === "direct" || value === "bridge" ? value : "auto";
}

/**
 * True when this process may bind with `reusePort` (it runs with `--unstable-net`).
 *
 * @returns Whether a second socket can be bound to a listener's port.
 */
export function canReusePort(): boolean {
  // Deno 2.9.6 exits the process (code 70) on `reusePort` without the flag, rather than
  // throwing; `Deno.listenDatagram` exists only under the same flag, so it tells.
  return typeof (Deno as unknown as Record<string, unknown>).listenDatagram === "function";
}
