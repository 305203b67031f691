/**
 * The `plugin` certificate provider (MOSN's cert_loader demo): certificates come from
 * an out-of-process plugin, so the keys can live in a more trusted process than the
 * proxy. The plugin is called with an empty request and answers a JSON body
 * `{ "cert_pem": "…", "key_pem": "…", "ca_pem": "…" }` (`ca_pem` optional).
 *
 * ```yaml
 * tls_context:
 *   status: true
 *   type: plugin
 *   extend_verify: { plugin: cert_loader, refresh: 1h, timeout: 2s }
 * ```
 *
 * @module
 */

import type {
  CertificateProviderFactory,
  PluginCaller,
  PluginResponse,
  TlsMaterial,
} from "../../../mod.ts";

/** The provider's config, the `tls_context`'s `extend_verify`. */
export interface PluginProviderConfig {
  /** Name of an entry of the config's `plugins:`. */
  plugin: string;
  /** Fetch again after this long, e.g. `1h`; never when absent. */
  refresh?: string;
  /** Per-call timeout, e.g. `2s`; the plugin caller's default when absent. */
  timeout?: string;
}

/**
 * Makes a provider that asks a plugin for its certificate.
 *
 * @param config `extend_verify`: `{ plugin, refresh?, timeout? }`.
 * @param context Gives the plugin caller.
 * @returns The provider.
 * @throws {Error} when the config is malformed.
 */
export const createCertificateProvider: CertificateProviderFactory = (config, context) => {
  const { plugin, refreshMs, timeoutMs } = checkConfig(config);
  return {
    fetch: () => fetchFromPlugin(context.plugins, plugin, refreshMs, timeoutMs),
  };
};

async function fetchFromPlugin(
  plugins: PluginCaller,
  plugin: string,
  refreshMs: number | undefined,
  timeoutMs: number | undefined,
): Promise<TlsMaterial> {
  let response: PluginResponse;
  try {
    response = await plugins.call(plugin, {}, timeoutMs === undefined ? undefined : { timeoutMs });
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new Error(`calling plugin "${plugin}" failed: ${reason}`, { cause: error });
  }
  // MOSN's plugin convention: a negative status is a refusal.
  if (response.status < 0) {
    throw new Error(`plugin "${plugin}" answered status ${response.status}`);
  }
  let body: unknown;
  try {
    body = JSON.parse(new TextDecoder().decode(response.body));
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new Error(`plugin "${plugin}" answered a body that is not JSON: ${reason}`, {
      cause: error,
    });
  }
  if (body === null || typeof body !== "object" || Array.isArray(body)) {
    throw new Error(`plugin "${plugin}" answered JSON that is not an object`);
  }
  const fields = body as Record<string, unknown>;
  const cert = pemField(plugin, fields, "cert_pem", "CERTIFICATE");
  const key = pemField(plugin, fields, "key_pem", "PRIVATE KEY");
  if (cert === undefined) throw new Error(`plugin "${plugin}" answered no "cert_pem"`);
  if (key === undefined) throw new Error(`plugin "${plugin}" answered no "key_pem"`);
  const ca = pemField(plugin, fields, "ca_pem", "CERTIFICATE");
  const material: TlsMaterial = { cert, key };
  if (ca !== undefined) material.ca = ca;
  if (refreshMs !== undefined) material.refreshAfterMs = refreshMs;
  return material;
}

function pemField(
  plugin: string,
  fields: Record<string, unknown>,
  name: string,
  label: string,
): string | undefined {
  const value = fields[name];
  if (value === undefined || value === null || value === "") return undefined;
  if (typeof value !== "string") {
    throw new Error(`plugin "${plugin}" answered a "${name}" that is not a string`);
  }
  if (!new RegExp(`-----BEGIN [A-Z ]*${label}-----`).test(value)) {
    throw new Error(`plugin "${plugin}" answered a "${name}" with no "${label}" PEM block`);
  }
  return value;
}

function checkConfig(
  config: unknown,
): { plugin: string; refreshMs: number | undefined; timeoutMs: number | undefined } {
  if (config === null || typeof config !== "object" || Array.isArray(config)) {
    throw new Error(`extend_verify: expected { plugin: <name> }, got ${describe(config)}`);
  }
  const c = config as Record<string, unknown>;
  if (typeof c.plugin !== "string" || c.plugin === "") {
    throw new Error(
      `extend_verify.plugin: expected the name of an entry of plugins:, got ${describe(c.plugin)}`,
    );
  }
  for (const key of Object.keys(c)) {
    if (key !== "plugin" && key !== "refresh" && key !== "timeout") {
      throw new Error(`extend_verify.${key}: unknown field (expected plugin, refresh, timeout)`);
    }
  }
  return {
    plugin: c.plugin,
    refreshMs: duration("refresh", c.refresh),
    timeoutMs: duration("timeout", c.timeout),
  };
}

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

function duration(field: string, value: unknown): number | undefined {
  if (value === undefined) return undefined;
  const match = typeof value === "string" ? /^(\d+(?:\.\d+)?)(ms|s|m|h)$/.exec(value) : null;
  const ms = match === null ? NaN : Number(match[1]) * UNIT_MS[match[2]];
  if (!(ms > 0)) {
    throw new Error(
      `extend_verify.${field}: expected a positive duration such as "30s" or "1h", got ${
        describe(value)
      }`,
    );
  }
  return ms;
}

function describe(value: unknown): string {
  if (value === undefined) return "nothing";
  if (value === null) return "null";
  if (Array.isArray(value)) return "a list";
  if (typeof value === "string") return JSON.stringify(value);
  return typeof value === "object" ? "a mapping" : String(value);
}
