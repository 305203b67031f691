/**
 * Maps a sandbox's `permissions:` to a Worker's `deno.permissions`. A permission the
 * config leaves out is denied: a sandbox has exactly what it lists.
 *
 * @module
 */

/** The permissions a Worker can be given, as Deno names them. */
const NAMES = ["env", "ffi", "import", "net", "read", "run", "sys", "write"] as const;

/**
 * The Worker permissions of a sandbox.
 *
 * @param permissions The sandbox's `permissions:`; each value `"inherit"`, `"none"`,
 * `true`, `false` or a list. A missing name and `"none"` both mean denied.
 * @returns Deno's `PermissionOptionsObject` with every permission set.
 *
 * @example
 * ```ts
 * import { workerPermissions } from "./permissions.ts";
 *
 * workerPermissions({ net: ["api.example.com:443"] });
 * // { env: false, ffi: false, import: false, net: ["api.example.com:443"], read: false, … }
 * ```
 */
export function workerPermissions(
  permissions: Record<string, unknown>,
): Deno.PermissionOptionsObject {
  const out: Record<string, unknown> = {};
  for (const name of NAMES) {
    const value = permissions[name];
    if (value === "inherit" || value === true) out[name] = value;
    else if (Array.isArray(value)) out[name] = value.map(String);
    else out[name] = false;
  }
  return out as Deno.PermissionOptionsObject;
}
