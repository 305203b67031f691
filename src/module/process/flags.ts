/**
 * Turns a sandbox's `permissions:` into the `deno run` flags of its child process.
 * Whatever the config leaves out is denied (`--no-prompt`): the process has exactly the
 * permissions listed, plus what it needs to load its module (see
 * {@linkcode childPermissionFlags}).
 *
 * @module
 */

import { dirname } from "node:path";
import { fileURLToPath } from "node:url";

/** The permissions a sandbox can grant, as Deno names them. */
const NAMES = ["env", "ffi", "import", "net", "read", "run", "sys", "write"] as const;

/** A sandbox's permissions cannot be given to a child process. */
export class SandboxPermissionError extends Error {
  /** Makes the error. */
  constructor(message: string) {
    super(message);
    this.name = "SandboxPermissionError";
  }
}

/** The flags of a sandbox process, and the grants its runner drops once the module loaded. */
export interface ChildGrants {
  /** `--allow-…` flags, in a fixed order. */
  flags: string[];
  /** Grants only the loading needed, revoked after it (`Deno.permissions.revokeSync`). */
  revoke: Deno.PermissionDescriptor[];
}

/**
 * The flags of the child process that runs `moduleUrl` with `permissions`.
 *
 * - `true` → `--allow-<name>`; a list → `--allow-<name>=<a>,<b>`; `false`, `"none"`, an
 *   empty list or no entry → nothing.
 * - `"inherit"` → `--allow-<name>` when this process holds the whole permission. A
 *   partial grant cannot be read back from Deno, so it is an error: list the entries.
 * - A `file:` module's folder is added to `--allow-read` unless a grant covers it, and
 *   revoked once the module is loaded; an `http(s):` module's `host:port` is added to
 *   `--allow-import`. Without them the module could not be imported at all.
 *
 * @param permissions The sandbox's `permissions:`.
 * @param moduleUrl The module's URL as configured.
 * @returns The flags and the grants to revoke after loading.
 * @throws {SandboxPermissionError} For `"inherit"` of a permission this process holds in
 * part, and for a list entry with a comma (a flag cannot carry it).
 *
 * @example
 * ```ts
 * import { childPermissionFlags } from "./flags.ts";
 *
 * childPermissionFlags({ net: ["api.example.com:443"] }, "file:///srv/filters/auth.ts");
 * // { flags: ["--allow-net=api.example.com:443", "--allow-read=/srv/filters"],
 * //   revoke: [{ name: "read", path: "/srv/filters" }] }
 * ```
 */
export function childPermissionFlags(
  permissions: Record<string, unknown>,
  moduleUrl: string,
): ChildGrants {
  const grants = new Map<string, true | string[]>();
  for (const name of NAMES) {
    const value = permissions[name];
    if (value === true) grants.set(name, true);
    else if (value === "inherit") grants.set(name, inherited(name));
    else if (Array.isArray(value) && value.length > 0) {
      const entries = value.map(String);
      const bad = entries.find((entry) => entry.includes(","));
      if (bad !== undefined) {
        throw new SandboxPermissionError(
          `sandbox.permissions.${name}: ${
            JSON.stringify(bad)
          } holds a comma, which a --allow-${name} flag cannot carry`,
        );
      }
      grants.set(name, entries);
    }
  }

  const revoke: Deno.PermissionDescriptor[] = [];
  const url = new URL(moduleUrl);
  if (url.protocol === "file:") {
    const folder = dirname(fileURLToPath(url));
    if (!covers(grants.get("read"), folder)) {
      add(grants, "read", folder);
      revoke.push({ name: "read", path: folder });
    }
  } else if (url.protocol === "http:" || url.protocol === "https:") {
    const host = `${url.hostname}:${url.port || (url.protocol === "https:" ? "443" : "80")}`;
    const imports = grants.get("import");
    if (imports !== true && !imports?.includes(host)) add(grants, "import", host);
  }

  const flags: string[] = [];
  for (const name of NAMES) {
    const grant = grants.get(name);
    if (grant === true) flags.push(`--allow-${name}`);
    else if (grant !== undefined) flags.push(`--allow-${name}=${grant.join(",")}`);
  }
  return { flags, revoke };
}

function inherited(name: (typeof NAMES)[number]): true {
  if (Deno.permissions.querySync({ name }).state === "granted") return true;
  throw new SandboxPermissionError(
    `sandbox.permissions.${name}: "inherit" passes Mosaic's own ${name} permission down, ` +
      `but Mosaic holds only part of it, which Deno cannot read back for a child process: ` +
      `list the entries the module needs instead`,
  );
}

function add(grants: Map<string, true | string[]>, name: string, entry: string): void {
  const grant = grants.get(name);
  if (grant === true) return;
  grants.set(name, [...(grant ?? []), entry]);
}

/** True when a read grant covers `path`: the whole permission, the path or a parent. */
function covers(grant: true | string[] | undefined, path: string): boolean {
  if (grant === true) return true;
  return grant?.some((entry) => {
    const base = entry.endsWith("/") ? entry.slice(0, -1) : entry;
    return path === base || path.startsWith(`${base}/`);
  }) ?? false;
}
