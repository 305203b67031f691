/**
 * What `min_version`/`max_version` can mean on Deno: its TLS stack (rustls) always
 * negotiates TLS 1.2 or 1.3 and offers no way to narrow that range per socket.
 *
 * @module
 */

import { ConfigError } from "../config/errors.ts";
import type { TlsContextConfig } from "../config/types.ts";

const AUTO = new Set(["", "TLS_AUTO", "auto"]);

/**
 * Rejects `min_version`/`max_version` values that Deno cannot honour, so a config is
 * never silently served with other versions than it asked for. Accepted: `min_version`
 * absent, `TLS_AUTO` or `TLS1_2`; `max_version` absent, `TLS_AUTO` or `TLS1_3`.
 *
 * @param tls The `tls_context`.
 * @throws {ConfigError} naming the field and why.
 */
export function checkTlsVersions(tls: TlsContextConfig): void {
  const min = tls.minVersion;
  if (min !== undefined && !AUTO.has(min) && min !== "TLS1_2") {
    throw new ConfigError(
      { ...tls.position, path: `${tls.position.path}.min_version` },
      `Deno always accepts TLS 1.2 and 1.3 and cannot set a minimum version of ${
        JSON.stringify(min)
      } (use TLS1_2 or TLS_AUTO)`,
    );
  }
  const max = tls.maxVersion;
  if (max !== undefined && !AUTO.has(max) && max !== "TLS1_3") {
    throw new ConfigError(
      { ...tls.position, path: `${tls.position.path}.max_version` },
      `Deno always offers TLS 1.3 and cannot set a maximum version of ${
        JSON.stringify(max)
      } (use TLS1_3 or TLS_AUTO)`,
    );
  }
}
