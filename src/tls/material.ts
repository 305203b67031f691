/**
 * Turns a `tls_context` into certificate material through the provider its `type`
 * names (`file` by default).
 *
 * @module
 */

import { ConfigError } from "../config/errors.ts";
import type { TlsContextConfig } from "../config/types.ts";
import type { CertificateProvider, PluginCaller, TlsMaterial } from "../filter/api.ts";
import { CertificateProviderError, reasonOf } from "./errors.ts";
import { getCertificateProvider, registeredCertificateProviders } from "./providers.ts";

/** What a provider is given besides its config. */
export interface TlsMaterialContext {
  /** Reaches the config's `plugins:`. */
  plugins: PluginCaller;
  /** The config file, to resolve relative paths; default `tls.position.file`. */
  configFile?: string;
}

/** A provider bound to its `tls_context`: its errors name the provider and the position. */
export interface BoundCertificateProvider {
  /** The provider's name. */
  readonly name: string;
  /**
   * Fetches the current material.
   *
   * @throws {CertificateProviderError} when the provider fails or answers nonsense.
   */
  fetch(): Promise<TlsMaterial>;
}

/**
 * Creates the provider a `tls_context` names. `file` gets `{ cert_chain, private_key,
 * ca_cert }`; every other provider gets `extend_verify`, as in MOSN.
 *
 * @param tls The normalized `tls_context`.
 * @param context The plugin caller and config file.
 * @returns The provider, whose `fetch()` errors say which provider failed and where.
 * @throws {ConfigError} when no provider has that name.
 * @throws {CertificateProviderError} when the provider rejects its config.
 */
export async function createTlsProvider(
  tls: TlsContextConfig,
  context: TlsMaterialContext,
): Promise<BoundCertificateProvider> {
  const name = tls.type === "" ? "file" : tls.type;
  const create = getCertificateProvider(name);
  if (create === undefined) {
    const known = registeredCertificateProviders().map((n) => `"${n}"`).join(", ");
    throw new ConfigError(
      { ...tls.position, path: `${tls.position.path}.type` },
      `unknown certificate provider "${name}" (registered: ${known || "none"})`,
    );
  }
  const config = name === "file"
    ? { cert_chain: tls.certChain, private_key: tls.privateKey, ca_cert: tls.caCert }
    : tls.extendVerify;
  let provider: CertificateProvider;
  try {
    provider = await create(config, {
      configFile: context.configFile ?? tls.position.file,
      plugins: context.plugins,
    });
  } catch (error) {
    throw new CertificateProviderError(name, tls.position, reasonOf(error), { cause: error });
  }
  return {
    name,
    async fetch() {
      let material: TlsMaterial;
      try {
        material = await provider.fetch();
      } catch (error) {
        throw new CertificateProviderError(name, tls.position, reasonOf(error), { cause: error });
      }
      const problem = checkMaterial(material);
      if (problem !== undefined) throw new CertificateProviderError(name, tls.position, problem);
      return material;
    },
  };
}

/**
 * Creates the provider a `tls_context` names and fetches its material once.
 *
 * @param tls The normalized `tls_context`.
 * @param context The plugin caller and config file.
 * @returns The certificate, key and optional CA, in PEM.
 * @throws {ConfigError} when no provider has that name.
 * @throws {CertificateProviderError} when the provider fails; the message names the
 * provider, the `tls_context`'s file, line and path, and the cause.
 * @example
 * ```ts
 * const material = await resolveTlsMaterial(listener.tls!, { plugins });
 * Deno.serve({ ...serveTlsOptions(material, listener.tls!), port: 443 }, handler);
 * ```
 */
export async function resolveTlsMaterial(
  tls: TlsContextConfig,
  context: TlsMaterialContext,
): Promise<TlsMaterial> {
  return await (await createTlsProvider(tls, context)).fetch();
}

function checkMaterial(material: unknown): string | undefined {
  if (material === null || typeof material !== "object") {
    return "fetch() returned no certificate material";
  }
  const m = material as Record<string, unknown>;
  if (typeof m.cert !== "string" || m.cert === "") return "fetch() returned no certificate";
  if (typeof m.key !== "string" || m.key === "") return "fetch() returned no private key";
  if (m.ca !== undefined && typeof m.ca !== "string") {
    return "fetch() returned a ca that is not PEM text";
  }
  if (
    m.refreshAfterMs !== undefined &&
    !(typeof m.refreshAfterMs === "number" && m.refreshAfterMs > 0)
  ) {
    return `fetch() returned refreshAfterMs ${
      String(m.refreshAfterMs)
    }; expected a positive number`;
  }
  return undefined;
}
