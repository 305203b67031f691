/**
 * The narrowest `deno run` permission flags a config needs, for `main.ts check`.
 *
 * @module
 */

import { dirname, isAbsolute, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import type { MosaicConfig, StreamFilterConfig, TlsContextConfig } from "./types.ts";
import { formatHostPort } from "./values.ts";

/** Permission names in the order their flags are printed. */
/** Where plugins put their unix sockets: `$TMPDIR`, as Go's os.TempDir and Node's os.tmpdir. */
const TEMP_DIR = "/tmp";

const ORDER = ["net", "read", "write", "import", "run", "env", "ffi", "sys"] as const;
type Permission = typeof ORDER[number];

/** Values per permission, in first-seen order; `true` means unrestricted. */
class Grants {
  #lists = new Map<Permission, Set<string> | true>();

  add(permission: Permission, value: string): void {
    const current = this.#lists.get(permission);
    if (current === true) return;
    if (current === undefined) this.#lists.set(permission, new Set([value]));
    else current.add(value);
  }

  addAll(permission: Permission): void {
    this.#lists.set(permission, true);
  }

  flags(): string[] {
    const out: string[] = [];
    for (const permission of ORDER) {
      const values = this.#lists.get(permission);
      if (values === true) out.push(`--allow-${permission}`);
      else if (values !== undefined) out.push(`--allow-${permission}=${[...values].join(",")}`);
    }
    return out;
  }
}

/** `host:port` for `--allow-net`; a bind to port 0 may get any port, so only the host. */
function netEntry(hostname: string, port: number): string {
  if (port !== 0) return formatHostPort(hostname, port);
  return hostname.includes(":") ? `[${hostname}]` : hostname;
}

function addTlsFiles(grants: Grants, tls: TlsContextConfig | undefined): void {
  // Only the `file` provider reads these fields as paths; PEM text needs no permission.
  if (tls === undefined || tls.type !== "file") return;
  for (const value of [tls.certChain, tls.privateKey, tls.caCert]) {
    if (value !== undefined && !value.includes("-----BEGIN")) grants.add("read", value);
  }
}

function addSandboxGrants(grants: Grants, permissions: Record<string, unknown>): void {
  // A Worker cannot be given more than its process has, so whatever a sandbox grants the
  // process must hold too.
  for (const permission of ORDER) {
    const value = permissions[permission];
    if (value === true) grants.addAll(permission);
    else if (Array.isArray(value)) {
      for (const entry of value) grants.add(permission, String(entry));
    }
  }
}

function denoExecutable(): string {
  try {
    return Deno.execPath();
  } catch {
    // Without read permission the path is hidden; the name resolves through PATH.
    return "deno";
  }
}

/** A plain HTTP listener that serves h2c by prior knowledge. */
function servesH2c(listener: MosaicConfig["listeners"][number]): boolean {
  return listener.network.type === "proxy" && listener.network.downstreamProtocol !== "Http1";
}

/** Options of {@linkcode narrowestPermissionFlags}. */
export interface PermissionOptions {
  /**
   * How many workers will run (`--workers`, else `workers:`, with `auto` resolved). More
   * than one needs read access to Mosaic's own folder, because Deno 2.9.6 checks a
   * Worker's whole module graph (main.ts, src/, node_modules/) against `--allow-read`.
   *
   * @default {1}
   */
  workers?: number;
  /**
   * Whether the Deno that runs the printed command already has `--unstable-net`, which
   * `reusePort` needs: deno.json's `unstable` list gives it when run from the project
   * folder. When false and more than one worker runs, `--unstable-net` is printed.
   *
   * @default {false}
   */
  unstableNet?: boolean;
  /**
   * What a registered stream filter needs (its creator's `permissions`, given the
   * filter's config as loaded); see `streamFilterPermissions` in `src/filter/registry.ts`.
   */
  filterPermissions?: (
    filter: StreamFilterConfig,
  ) => { readonly read?: readonly string[]; readonly net?: readonly string[] } | undefined;
}

/**
 * Computes the narrowest permission flags to run Mosaic on `config`:
 * `--allow-net` for listener binds, cluster hosts, the admin address and fetched
 * modules; `--allow-read` for the config file, TLS files and local modules;
 * `--allow-write` for log files; `--allow-import` for http(s) modules; `--allow-run`
 * for plugins and process sandboxes; `--allow-env` only when a sandbox grants
 * environment access. Flags come in a fixed order, their values in config order,
 * without duplicates.
 *
 * @param config A loaded config.
 * @param options How many workers run, and whether unstable net is already on.
 * @returns The flags, e.g. `["--allow-net=127.0.0.1:2046,127.0.0.1:8080", "--allow-read=/etc/mosaic.yaml"]`.
 *
 * @example
 * ```ts
 * import { loadConfig } from "./load.ts";
 * import { narrowestPermissionFlags } from "./permissions.ts";
 *
 * const { config } = await loadConfig("examples/simple_streamfilter/config.yaml");
 * console.log(["deno", "run", ...narrowestPermissionFlags(config), "main.ts"].join(" "));
 * ```
 */
export function narrowestPermissionFlags(
  config: MosaicConfig,
  options: PermissionOptions = {},
): string[] {
  const grants = new Grants();
  for (const listener of config.listeners) {
    grants.add("net", netEntry(listener.hostname, listener.port));
  }
  for (const cluster of config.clusters.values()) {
    for (const host of cluster.hosts) grants.add("net", netEntry(host.hostname, host.port));
  }
  if (config.admin !== undefined) {
    grants.add("net", netEntry(config.admin.hostname, config.admin.port));
  }
  // A TLS listener terminates TLS in node:tls and hands each connection to an inner
  // Deno.serve bound to a free loopback port (src/tls/bridge.ts).
  // A plain listener that may see h2c (downstream_protocol Auto or Http2) pipes those
  // connections to an inner Deno.serve on a loopback port (src/server/http1/h2c.ts).
  if (config.listeners.some((l) => l.tls !== undefined || servesH2c(l))) {
    grants.add("net", "127.0.0.1");
  }

  grants.add("read", config.file);
  // `watch: true` watches the config's folder (an editor replaces the file by renaming).
  if (config.watch) grants.add("read", dirname(config.file));
  for (const listener of config.listeners) addTlsFiles(grants, listener.tls);
  for (const cluster of config.clusters.values()) addTlsFiles(grants, cluster.tls);

  for (const listener of config.listeners) {
    for (const filter of listener.streamFilters) {
      const needs = options.filterPermissions?.(filter);
      for (const path of needs?.read ?? []) grants.add("read", path);
      for (const host of needs?.net ?? []) grants.add("net", host);
      if (filter.module === undefined) continue;
      const url = new URL(filter.module);
      if (url.protocol === "file:") {
        // Deno checks a dynamic import's whole module graph against --allow-read, so the
        // module's siblings (its own relative imports) must be readable too.
        grants.add("read", dirname(fileURLToPath(url)));
      } else {
        const port = url.port || (url.protocol === "https:" ? "443" : "80");
        const host = `${url.hostname}:${port}`;
        grants.add("import", host);
        // An integrity pin is checked on bytes the loader fetches itself.
        if (filter.integrity !== undefined) grants.add("net", host);
      }
      if (filter.sandbox !== undefined) {
        // A Worker gets at most what its process has; a child process gets its own flags.
        if (filter.sandbox.isolation === "process") grants.add("run", denoExecutable());
        else addSandboxGrants(grants, filter.sandbox.permissions);
      }
    }
  }

  for (
    const path of [
      config.logPath,
      ...config.listeners.flatMap((l) => l.accessLogs.map((a) => a.path)),
    ]
  ) {
    if (path !== "stdout" && path !== "stderr") grants.add("write", path);
  }

  for (const plugin of config.plugins.values()) {
    // A unix socket: Deno 2.9.6 checks read and write on its path (plugins make theirs in
    // the temp directory) and net access to exactly "unix:<path>", which the plugin picks
    // at random and names only in its handshake. No narrower grant than all of --allow-net
    // covers that; `network: tcp` keeps the net grant to 127.0.0.1.
    if (plugin.network === "unix") {
      grants.add("read", TEMP_DIR);
      grants.add("write", TEMP_DIR);
      grants.addAll("net");
    } else {
      // A tcp plugin picks its own port (MOSN's PLUGIN_MIN_PORT..PLUGIN_MAX_PORT).
      grants.add("net", "127.0.0.1");
    }
    const program = plugin.command[0];
    // A bare name is looked up in PATH; a path with a slash is relative to the plugin's cwd.
    const resolved = program.includes("/") && !isAbsolute(program) && plugin.cwd !== undefined
      ? resolve(plugin.cwd, program)
      : program;
    grants.add("run", resolved);
  }

  // npm:yaml's two debug switches (LOG_TOKENS, LOG_STREAM) are read as unset without
  // --allow-env (see positions.ts), and nothing else in Mosaic reads the environment. A
  // plugin's environment (MOSN_PLUGIN, its `env:`) is handed over through Deno.Command's
  // `env` option, which needs --allow-run only.
  // The plugin client is Mosaic's own (src/plugin/client.ts): unlike @grpc/grpc-js, it
  // reads no environment variables.
  const workers = (options.workers ?? 1) > 1;
  // A Worker's module graph is read under the process's permissions: its own folder.
  const home = new URL("../..", import.meta.url);
  if (workers && home.protocol === "file:") {
    grants.add("read", fileURLToPath(home).replace(/\/$/, ""));
  }
  const flags = grants.flags();
  if (workers && !options.unstableNet) flags.push("--unstable-net");
  return flags;
}
