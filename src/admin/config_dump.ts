/**
 * `/api/v1/config_dump`: the running config as JSON, with secrets and private keys
 * replaced by `"[redacted]"`, so the answer can be pasted into an issue.
 *
 * @module
 */

import { parse } from "yaml";
import { withoutYamlDebugEnv } from "../config/positions.ts";

/** What a redacted value reads as. */
export const REDACTED = "[redacted]";

/** Keys whose values are secrets, whatever they hold (MOSN's and Envoy's spellings). */
const SECRET_KEY =
  /(^|_)(private_?key|key|password|passwd|secret|token|bearer_token|credentials?|authorization|api_?key|client_secret)$/i;

/**
 * Replaces secrets in a parsed config: values of secret-named keys (`private_key`,
 * `key`, `password`, `secret`, `token`, …) and any string that holds a PEM private key.
 * Certificates (public) stay.
 *
 * @param value The parsed config (or any part of it).
 * @returns A copy with secrets replaced by {@linkcode REDACTED}.
 */
export function redactConfig(value: unknown): unknown {
  if (typeof value === "string") {
    return /-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(value) ? REDACTED : value;
  }
  if (Array.isArray(value)) return value.map(redactConfig);
  if (value !== null && typeof value === "object") {
    const out: Record<string, unknown> = {};
    for (const [key, v] of Object.entries(value)) {
      out[key] = SECRET_KEY.test(key) && v !== null && v !== "" && typeof v !== "object"
        ? REDACTED
        : redactConfig(v);
    }
    return out;
  }
  return value;
}

/**
 * Parses the config text as the proxy runs it and redacts it.
 *
 * @param text The config file's text (YAML or JSON).
 * @returns The redacted config.
 */
export function configDump(text: string): unknown {
  return redactConfig(withoutYamlDebugEnv(() => parse(text)));
}
