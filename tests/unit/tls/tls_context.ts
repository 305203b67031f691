/**
 * A normalized `tls_context` for tests, as the config loader would produce it.
 *
 * @module
 */

import type { TlsContextConfig } from "../../../src/config/types.ts";

/** A `tls_context` with TLS on and everything else at its default, plus `overrides`. */
export function testTlsContext(
  configFile: string,
  overrides: Partial<TlsContextConfig> = {},
): TlsContextConfig {
  return {
    status: true,
    certChain: undefined,
    privateKey: undefined,
    caCert: undefined,
    serverName: undefined,
    minVersion: undefined,
    maxVersion: undefined,
    alpn: [],
    type: "file",
    extendVerify: undefined,
    insecureSkip: false,
    requireClientCert: false,
    serveMode: undefined,
    position: {
      file: configFile,
      line: 7,
      path: "servers[0].listeners[0].filter_chains[0].tls_context",
    },
    ...overrides,
  };
}

/** Runs curl and returns its exit code, stdout and stderr. */
export async function curl(
  args: string[],
): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await new Deno.Command("curl", {
    args: ["-sS", "--max-time", "10", ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decoder = new TextDecoder();
  return {
    code: out.code,
    stdout: decoder.decode(out.stdout),
    stderr: decoder.decode(out.stderr),
  };
}
