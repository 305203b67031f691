/**
 * Subresource-integrity pins of module bytes: `sha256-<base64 of the SHA-256 digest>`,
 * the form `integrity:` takes in a `type: module` filter (and in HTML's `<script
 * integrity>`).
 *
 * @module
 */

/** The SHA-256 digest of some bytes, in the two forms the loader needs. */
export interface ModuleDigest {
  /** `sha256-<base64>`, comparable with an `integrity:` pin. */
  readonly integrity: string;
  /** The digest in lower-case hex; its prefix versions the module's import URL. */
  readonly hex: string;
}

/**
 * Hashes module bytes.
 *
 * @param bytes The module's source bytes, exactly as served or stored.
 * @returns The digest as an integrity string and as hex.
 *
 * @example
 * ```ts
 * import { digestModule } from "./integrity.ts";
 *
 * const { integrity } = await digestModule(new TextEncoder().encode("export {};\n"));
 * console.log(integrity); // sha256-…
 * ```
 */
export async function digestModule(bytes: Uint8Array<ArrayBuffer>): Promise<ModuleDigest> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  let binary = "";
  let hex = "";
  for (const byte of digest) {
    binary += String.fromCharCode(byte);
    hex += byte.toString(16).padStart(2, "0");
  }
  return { integrity: `sha256-${btoa(binary)}`, hex };
}
