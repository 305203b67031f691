/**
 * The `file` certificate provider, the default of a `tls_context`: PEM from
 * `cert_chain`, `private_key` and `ca_cert`, each either inline PEM text (a value that
 * starts with `-----BEGIN`) or a file path relative to the config file's folder.
 * Files are read again on every fetch, so a refresh (SIGHUP) picks up replaced files.
 *
 * @module
 */

import type { CertificateProviderFactory, TlsMaterial } from "../../../mod.ts";

/** The provider's config: the `tls_context` fields MOSN reads for files. */
export interface FileProviderConfig {
  /** Certificate chain: PEM text or a path. */
  cert_chain?: string;
  /** Private key: PEM text or a path. */
  private_key?: string;
  /** CA bundle: PEM text or a path. */
  ca_cert?: string;
}

/**
 * Makes a provider that reads PEM inline or from files.
 *
 * @param config `{ cert_chain, private_key, ca_cert? }`.
 * @param context Gives the config file, to resolve relative paths.
 * @returns The provider.
 * @throws {Error} when `cert_chain` or `private_key` is missing or not a string.
 */
export const createCertificateProvider: CertificateProviderFactory = (config, context) => {
  const fields = checkConfig(config);
  const base = dirname(context.configFile);
  return {
    async fetch(): Promise<TlsMaterial> {
      const [cert, key, ca] = await Promise.all([
        loadPem("cert_chain", fields.cert_chain, base, "CERTIFICATE"),
        loadPem("private_key", fields.private_key, base, "PRIVATE KEY"),
        fields.ca_cert === undefined
          ? undefined
          : loadPem("ca_cert", fields.ca_cert, base, "CERTIFICATE"),
      ]);
      return ca === undefined ? { cert, key } : { cert, key, ca };
    },
  };
};

function checkConfig(
  config: unknown,
): { cert_chain: string; private_key: string; ca_cert: string | undefined } {
  if (config === null || typeof config !== "object" || Array.isArray(config)) {
    throw new Error(`expected cert_chain and private_key, got ${describe(config)}`);
  }
  const c = config as Record<string, unknown>;
  for (const field of ["cert_chain", "private_key", "ca_cert"]) {
    if (c[field] !== undefined && (typeof c[field] !== "string" || c[field] === "")) {
      throw new Error(`${field}: expected PEM text or a file path, got ${describe(c[field])}`);
    }
  }
  if (c.cert_chain === undefined) throw new Error("cert_chain: required");
  if (c.private_key === undefined) throw new Error("private_key: required");
  return {
    cert_chain: c.cert_chain as string,
    private_key: c.private_key as string,
    ca_cert: c.ca_cert as string | undefined,
  };
}

async function loadPem(field: string, value: string, base: string, label: string): Promise<string> {
  let text = value;
  let from = "inline PEM";
  if (!value.trimStart().startsWith("-----BEGIN")) {
    const path = value.startsWith("/") ? value : `${base}/${value}`;
    from = `file ${path}`;
    try {
      text = await Deno.readTextFile(path);
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      throw new Error(`${field}: cannot read ${path}: ${reason}`, { cause: error });
    }
  }
  // A key file with a certificate in it (or the reverse) is a common slip: say so here
  // rather than let the TLS library fail later with a vaguer message.
  if (!new RegExp(`-----BEGIN [A-Z ]*${label}-----`).test(text)) {
    throw new Error(`${field}: ${from} holds no "${label}" PEM block`);
  }
  return text;
}

function dirname(path: string): string {
  const slash = path.lastIndexOf("/");
  if (slash < 0) return ".";
  return slash === 0 ? "/" : path.slice(0, slash);
}

function describe(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "a list";
  if (typeof value === "string") return JSON.stringify(value);
  return typeof value === "object" ? "a mapping" : String(value);
}
