/**
 * The certificate provider registry: `tls_context.type` names → provider factories.
 * Built-ins (`file`, `plugin`) are listed as data in `extensions/builtin.ts` and
 * registered from `main.ts` through this same function, so a built-in has no powers a
 * third-party provider lacks.
 *
 * @module
 */

import type { CertificateProviderFactory } from "../filter/api.ts";

const registry = new Map<string, CertificateProviderFactory>();

/**
 * Registers a certificate provider under a name usable as `type:` in a `tls_context`.
 * The provider's factory receives the context's `extend_verify` as its config.
 *
 * @param name The provider's type name, e.g. `vault`.
 * @param create Makes a provider from `extend_verify`.
 * @throws {Error} when the name is empty or already registered.
 * @example
 * ```ts
 * import { registerCertificateProvider } from "@mosaic/proxy";
 *
 * registerCertificateProvider("static", (config) => ({
 *   fetch: () => Promise.resolve({ cert: "-----BEGIN CERTIFICATE-----…", key: "…" }),
 * }));
 * ```
 */
export function registerCertificateProvider(
  name: string,
  create: CertificateProviderFactory,
): void {
  if (typeof name !== "string" || name === "") {
    throw new Error("Cannot register a certificate provider: the name must be a non-empty string");
  }
  if (typeof create !== "function") {
    throw new Error(
      `Cannot register certificate provider "${name}": expected a factory function, got ${typeof create}`,
    );
  }
  if (registry.has(name)) {
    throw new Error(
      `Cannot register certificate provider "${name}": the name is already registered`,
    );
  }
  registry.set(name, create);
}

/**
 * Returns the factory registered under `name`, if any.
 *
 * @param name A `tls_context.type` value.
 * @returns The factory, or undefined when no provider has that name.
 */
export function getCertificateProvider(name: string): CertificateProviderFactory | undefined {
  return registry.get(name);
}

/**
 * The registered provider names, sorted, for error messages.
 *
 * @returns The names.
 */
export function registeredCertificateProviders(): string[] {
  return [...registry.keys()].sort();
}
