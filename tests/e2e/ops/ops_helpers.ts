/**
 * Helpers of the operations tests: a proxy config with an admin listener, a stream
 * filter and two clusters (one of them pointing at a closed port), and Debian packages
 * (Prometheus, Chromium) installed when missing.
 *
 * @module
 */

import { freePort, startUpstream, type Upstream } from "../../helpers/proxy_process.ts";

/**
 * Installs a Debian package when `command` is not on the PATH. Other test files may be
 * installing at the same time: apt waits for dpkg's lock. Package scripts do not start
 * services (RUNLEVEL=1, as bench/run.sh does).
 */
export async function ensureDebianPackage(command: string, pkg: string): Promise<string> {
  const which = await new Deno.Command("sh", { args: ["-c", `command -v ${command}`] }).output();
  if (which.success) return new TextDecoder().decode(which.stdout).trim();
  const apt = (args: string[]) =>
    new Deno.Command("apt-get", {
      args: ["-o", "DPkg::Lock::Timeout=300", ...args],
      env: { DEBIAN_FRONTEND: "noninteractive", RUNLEVEL: "1" },
      stdout: "null",
      stderr: "piped",
    }).output();
  const install = ["install", "-y", "-q", "--no-install-recommends", pkg];
  let out = await apt(install);
  if (!out.success) {
    await apt(["update", "-q"]);
    out = await apt(install);
  }
  if (!out.success) {
    throw new Error(
      `Cannot install ${pkg} with apt-get: ${new TextDecoder().decode(out.stderr).trim()}`,
    );
  }
  return `/usr/bin/${command}`;
}

/** What {@linkcode opsSetup} made. */
export interface OpsSetup {
  upstream: Upstream;
  listenerPort: number;
  adminPort: number;
  /** `http://127.0.0.1:<admin port>`. */
  admin: string;
  /** `http://127.0.0.1:<listener port>`. */
  proxy: string;
  yaml(options?: { token?: string; workers?: number; filterModule?: string }): string;
}

/**
 * An upstream answering 200 (`/fail`: 503), free ports for a listener and the admin API,
 * and the config: listener `web` runs the `demo` filter (403 without `User: admin`),
 * route `/dead` goes to cluster `dead`, whose one host nobody listens on.
 */
export function opsSetup(): OpsSetup {
  const upstream = startUpstream((request) => {
    const path = new URL(request.url).pathname;
    return new Response(path === "/fail" ? "failed\n" : "ok\n", {
      status: path === "/fail" ? 503 : 200,
    });
  });
  const listenerPort = freePort();
  const adminPort = freePort();
  const deadPort = freePort();
  return {
    upstream,
    listenerPort,
    adminPort,
    admin: `http://127.0.0.1:${adminPort}`,
    proxy: `http://127.0.0.1:${listenerPort}`,
    yaml: (options = {}) => `
servers:
  - default_log_level: INFO
    routers:
      - router_config_name: r
        virtual_hosts:
          - name: all
            domains: ["*"]
            routers:
              - match: { prefix: /dead }
                route: { cluster_name: dead }
              - match: { prefix: / }
                route: { cluster_name: up }
    listeners:
      - name: web
        address: 127.0.0.1:${listenerPort}
        filter_chains:
          - filters:
              - type: proxy
                config: { router_config_name: r }
        stream_filters:
          - type: ${options.filterModule ? "module" : "demo"}
${
      options.filterModule
        ? `            module: ${options.filterModule}\n`
        : ""
    }            config: { User: admin }
cluster_manager:
  clusters:
    - name: up
      type: SIMPLE
      lb_type: LB_ROUNDROBIN
      hosts: [{ address: "${upstream.address}" }]
    - name: dead
      type: SIMPLE
      lb_type: LB_ROUNDROBIN
      hosts: [{ address: "127.0.0.1:${deadPort}" }]
admin:
  address: 127.0.0.1:${adminPort}
${options.token ? `  bearer_token: ${options.token}\n` : ""}${
      options.workers ? `workers: ${options.workers}\n` : ""
    }`,
  };
}

/** Sends `n` requests to `url` with `headers`; returns the statuses seen. */
export async function send(
  url: string,
  n: number,
  headers: Record<string, string> = { user: "admin" },
): Promise<number[]> {
  const statuses: number[] = [];
  for (let i = 0; i < n; i++) {
    const res = await fetch(url, { headers });
    await res.body?.cancel();
    statuses.push(res.status);
  }
  return statuses;
}

/** One stat of `/stats`, by its Envoy name (0 when absent). */
export async function stat(admin: string, name: string): Promise<number> {
  const res = await fetch(`${admin}/stats`);
  const body = await res.json() as { stats: { name: string; value: number }[] };
  return body.stats.find((s) => s.name === name)?.value ?? 0;
}
