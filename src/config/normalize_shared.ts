/**
 * What the normalizing steps share: the context they run in, path resolution relative to
 * the config file, and `tls_context`, which both listeners and clusters have.
 *
 * @module
 */

import { isAbsolute, resolve } from "node:path";
import type { FieldPath, SourceDocument } from "./positions.ts";
import { formatPath } from "./positions.ts";
import type { RawTlsContext } from "./schema_values.ts";
import type { TlsContextConfig } from "./types.ts";

/** What every normalizing step needs. */
export interface NormalizeContext {
  /** The parsed file, for positions and errors. */
  source: SourceDocument;
  /** Absolute directory of the config file: relative paths in the config start here. */
  dir: string;
}

/**
 * Resolves a file path from the config against the config file's directory, so a config
 * means the same whatever directory Mosaic is started from.
 *
 * @param dir The config file's directory.
 * @param path A path from the config.
 * @returns An absolute path.
 */
export function resolveFromConfig(dir: string, path: string): string {
  return isAbsolute(path) ? path : resolve(dir, path);
}

/**
 * Resolves a log destination: `stdout` and `stderr` stay, anything else is a file path.
 *
 * @param dir The config file's directory.
 * @param path `stdout`, `stderr` or a path.
 * @returns The destination.
 */
export function resolveOutput(dir: string, path: string): string {
  return path === "stdout" || path === "stderr" ? path : resolveFromConfig(dir, path);
}

/**
 * Quotes and lists names for a message: `"a", "b"`, or `none` for an empty list.
 *
 * @param names The names.
 * @returns The list.
 */
export function listNames(names: Iterable<string>): string {
  const all = [...names].map((n) => JSON.stringify(n));
  return all.length === 0 ? "none" : all.join(", ");
}

/**
 * Says where something was first defined, for "duplicate" messages.
 *
 * @param source The parsed file.
 * @param path Path of the first definition.
 * @returns E.g. `servers[0].listeners[0] (line 12)`.
 */
export function firstDefined(source: SourceDocument, path: FieldPath): string {
  return `${formatPath(path)} (line ${source.line(path)})`;
}

function emptyToUndefined(value: string | undefined): string | undefined {
  return value === undefined || value === "" ? undefined : value;
}

/**
 * Normalizes a `tls_context`. A context with `status: false` (MOSN's "TLS off") gives
 * undefined, so nobody can mistake it for TLS on.
 *
 * @param raw The parsed `tls_context`, if any.
 * @param path Its path.
 * @param ctx The normalizing context.
 * @param side A listener's context must name its certificate and key; a cluster's need not.
 * @returns The TLS config, or undefined when TLS is off.
 * @throws {ConfigError} When a listener turns TLS on without a certificate or key.
 */
export function normalizeTls(
  raw: RawTlsContext | undefined,
  path: FieldPath,
  ctx: NormalizeContext,
  side: "listener" | "cluster",
): TlsContextConfig | undefined {
  if (raw === undefined || !raw.status) return undefined;
  // With the `file` provider the PEM fields are PEM text or paths; other providers give
  // them their own meaning, so they are passed through untouched.
  const fileProvider = raw.type === "file";
  const pem = (value: string | undefined): string | undefined => {
    const text = emptyToUndefined(value);
    if (text === undefined || !fileProvider || text.includes("-----BEGIN")) return text;
    return resolveFromConfig(ctx.dir, text);
  };
  const certChain = pem(raw.cert_chain);
  const privateKey = pem(raw.private_key);
  if (side === "listener" && fileProvider) {
    if (certChain === undefined) {
      throw ctx.source.error(
        [...path, "cert_chain"],
        "missing; a listener with TLS on (status: true) needs a certificate chain (PEM text or a file path)",
      );
    }
    if (privateKey === undefined) {
      throw ctx.source.error(
        [...path, "private_key"],
        "missing; a listener with TLS on (status: true) needs a private key (PEM text or a file path)",
      );
    }
  }
  return {
    status: true,
    certChain,
    privateKey,
    caCert: pem(raw.ca_cert),
    serverName: emptyToUndefined(raw.server_name),
    minVersion: emptyToUndefined(raw.min_version),
    maxVersion: emptyToUndefined(raw.max_version),
    alpn: raw.alpn,
    type: raw.type,
    extendVerify: raw.extend_verify,
    insecureSkip: raw.insecure_skip,
    requireClientCert: raw.require_client_cert || raw.verify_client,
    serveMode: raw.serve_mode,
    position: ctx.source.position(path),
  };
}
