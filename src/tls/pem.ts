/**
 * Reads the PEM values of a `tls_context`: inline PEM text (a value that starts with
 * `-----BEGIN`) or a file path relative to the config file's folder.
 *
 * @module
 */

import { ConfigError } from "../config/errors.ts";
import type { TlsContextConfig } from "../config/types.ts";

/** The `tls_context` fields that hold PEM. */
export type PemField = "ca_cert" | "cert_chain" | "private_key";

const LABELS: Record<PemField, string> = {
  ca_cert: "CERTIFICATE",
  cert_chain: "CERTIFICATE",
  private_key: "PRIVATE KEY",
};

/**
 * Reads one PEM field of a `tls_context`, synchronously (it runs once per config load).
 *
 * @param tls The `tls_context`; its position gives the config file and the error path.
 * @param field The field's MOSN name.
 * @param value The field's value: PEM text or a path.
 * @returns The PEM text.
 * @throws {ConfigError} when the file cannot be read or holds no PEM block of the
 * expected kind.
 */
export function readPemSync(tls: TlsContextConfig, field: PemField, value: string): string {
  const where = { ...tls.position, path: `${tls.position.path}.${field}` };
  let text = value;
  let from = "the inline PEM";
  if (!value.trimStart().startsWith("-----BEGIN")) {
    const path = resolvePath(tls.position.file, value);
    from = `file ${path}`;
    try {
      text = Deno.readTextFileSync(path);
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      throw new ConfigError(where, `cannot read ${path}: ${reason}`, { cause: error });
    }
  }
  const label = LABELS[field];
  if (!new RegExp(`-----BEGIN [A-Z ]*${label}-----`).test(text)) {
    throw new ConfigError(where, `${from} holds no "${label}" PEM block`);
  }
  return text;
}

function resolvePath(configFile: string, path: string): string {
  if (path.startsWith("/")) return path;
  const slash = configFile.lastIndexOf("/");
  const base = slash < 0 ? "." : configFile.slice(0, slash) || "/";
  return `${base}/${path}`;
}
