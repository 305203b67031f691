/**
 * The servers of the load benchmark: the nginx upstream and every proxy in front of it.
 * Each writes its own config into the run's temp dir and listens on 127.0.0.1 only;
 * none reads a system config.
 *
 * @module
 */

import { type Child, freePort, type ProcessGroup, waitUntilReady } from "./processes.ts";

/** The header every request of the benchmark carries (the `demo` filter requires it). */
export const BENCH_HEADERS: Record<string, string> = { "User": "admin" };

/** Where the benchmark runs. */
export interface BenchContext {
  /** Starts and stops the processes. */
  readonly processes: ProcessGroup;
  /** A temp dir of this run, for configs and nginx's files. */
  readonly dir: string;
  /** The repository root (where `main.ts` is). */
  readonly root: string;
}

/** A started server: its URL and its process. */
export interface Started {
  /** The URL wrk loads. */
  readonly url: string;
  /** The process, stopped after the target was measured. */
  readonly child: Child;
}

function nginxTempPaths(dir: string): string {
  return ["client_body", "proxy", "fastcgi", "uwsgi", "scgi"]
    .map((kind) => `  ${kind}_temp_path ${dir}/${kind};`)
    .join("\n");
}

async function startNginx(
  context: BenchContext,
  name: string,
  http: string,
  port: number,
  workers = 1,
  /** False for a port that does not speak HTTP/1.1: readiness is then a TCP connect. */
  probeHttp1 = true,
): Promise<Started> {
  const dir = `${context.dir}/${name}`;
  await Deno.mkdir(dir, { recursive: true });
  // Master and one worker, in the foreground; errors to stderr so a failure can be shown.
  const conf = `daemon off;
master_process on;
worker_processes ${workers};
pid ${dir}/nginx.pid;
error_log stderr warn;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 1000000;
${nginxTempPaths(dir)}
${http}
}
`;
  await Deno.writeTextFile(`${dir}/nginx.conf`, conf);
  const child = context.processes.spawn(name, "nginx", [
    "-p",
    `${dir}/`,
    "-c",
    `${dir}/nginx.conf`,
    "-e",
    "stderr",
  ]);
  const url = `http://127.0.0.1:${port}/`;
  if (probeHttp1) await waitUntilReady(child, url, BENCH_HEADERS);
  else await waitUntilListening(child, port);
  return { url, child };
}

/** Waits until `port` accepts a TCP connection (for ports that speak only h2c). */
export async function waitUntilListening(child: Child, port: number): Promise<void> {
  const deadline = Date.now() + 120_000;
  while (Date.now() < deadline && !child.done) {
    try {
      (await Deno.connect({ hostname: "127.0.0.1", port })).close();
      return;
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
  throw new Error(`${child.name} did not listen on 127.0.0.1:${port}\n${child.tail()}`);
}

/** Where the upstream's large file is (`GET /big`), made by the scenario that needs it. */
export function bigFilePath(context: BenchContext): string {
  return `${context.dir}/big.bin`;
}

/**
 * Starts the upstream: nginx answering every request `200 ok`, and `/big` with the file at
 * {@linkcode bigFilePath} when a scenario made it. `http2` adds an h2c port (prior
 * knowledge) with the same answers.
 */
export function startUpstream(context: BenchContext): Promise<Started> {
  const port = freePort();
  return startNginx(
    context,
    "upstream",
    `  server {
    listen 127.0.0.1:${port};
    location / {
      default_type text/plain;
      return 200 "ok\\n";
    }
    location = /big {
      default_type application/octet-stream;
      alias ${bigFilePath(context)};
    }
  }`,
    port,
  );
}

/**
 * Starts nginx as a reverse proxy to `upstream`, with upstream keep-alive; `workers`
 * worker processes; `http2` makes its port speak h2c (prior knowledge) instead of HTTP/1.1.
 */
export function startNginxProxy(
  context: BenchContext,
  upstream: string,
  workers = 1,
  http2 = false,
): Promise<Started> {
  const port = freePort();
  const { host } = new URL(upstream);
  return startNginx(
    context,
    `nginx-proxy-${workers}w${http2 ? "-h2" : ""}`,
    `  upstream backend {
    server ${host};
    keepalive 64;
    keepalive_requests 1000000;
  }
  server {
    listen 127.0.0.1:${port}${http2 ? " http2" : ""};
    location / {
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      # A large body streams through its buffers, never into a temp file.
      proxy_max_temp_file_size 0;
      proxy_buffers 16 64k;
      proxy_busy_buffers_size 128k;
    }
  }`,
    port,
    workers,
    !http2,
  );
}

/** Starts haproxy in http mode with one thread, reusing upstream connections. */
export async function startHaproxy(
  context: BenchContext,
  upstream: string,
): Promise<Started> {
  const port = freePort();
  const { host } = new URL(upstream);
  const file = `${context.dir}/haproxy.cfg`;
  await Deno.writeTextFile(
    file,
    `global
  nbthread 1
  maxconn 4096

defaults
  mode http
  option http-keep-alive
  timeout connect 5s
  timeout client 30s
  timeout server 30s
  timeout http-keep-alive 30s

frontend bench
  bind 127.0.0.1:${port}
  default_backend upstream

backend upstream
  http-reuse always
  server upstream ${host}
`,
  );
  const child = context.processes.spawn("haproxy", "haproxy", [
    "-db",
    "-f",
    file,
  ]);
  const url = `http://127.0.0.1:${port}/`;
  await waitUntilReady(child, url, BENCH_HEADERS);
  return { url, child };
}

/** Starts node's `http-proxy` (bench/http_proxy/server.cjs) with a keep-alive agent. */
export async function startNodeHttpProxy(
  context: BenchContext,
  upstream: string,
): Promise<Started> {
  const port = freePort();
  const child = context.processes.spawn("http-proxy", "node", [
    `${context.root}/bench/http_proxy/server.cjs`,
    String(port),
    upstream,
  ]);
  const url = `http://127.0.0.1:${port}/`;
  await waitUntilReady(child, url, BENCH_HEADERS);
  return { url, child };
}

/** Starts the floor (`bench/floor/proxy.ts`): Deno.serve plus a minimal keep-alive pool. */
export async function startFloor(context: BenchContext, upstream: string): Promise<Started> {
  const port = freePort();
  const { host } = new URL(upstream);
  const child = context.processes.spawn("floor", Deno.execPath(), [
    "run",
    `--allow-net=127.0.0.1`,
    "bench/floor/proxy.ts",
    String(port),
    host,
  ], { cwd: context.root, env: { NO_COLOR: "1" } });
  const url = `http://127.0.0.1:${port}/`;
  await waitUntilReady(child, url, BENCH_HEADERS, 200, 120_000);
  return { url, child };
}

/** The Mosaic config of the benchmark: one listener, one cluster, no access log. */
export function mosaicConfig(
  port: number,
  upstream: string,
  filters: unknown[],
  options: { workers?: number; downstreamProtocol?: "Http1" | "Http2" } = {},
): string {
  const { host } = new URL(upstream);
  const config = {
    ...(options.workers === undefined ? {} : { workers: options.workers }),
    servers: [{
      default_log_path: "stderr",
      default_log_level: "WARN",
      routers: [{
        router_config_name: "bench_router",
        virtual_hosts: [{
          name: "bench",
          domains: ["*"],
          routers: [{
            match: { prefix: "/" },
            route: { cluster_name: "upstream" },
          }],
        }],
      }],
      listeners: [{
        name: "bench",
        address: `127.0.0.1:${port}`,
        filter_chains: [{
          filters: [{
            type: "proxy",
            config: {
              downstream_protocol: options.downstreamProtocol ?? "Http1",
              upstream_protocol: "Http1",
              router_config_name: "bench_router",
            },
          }],
        }],
        stream_filters: filters,
      }],
    }],
    // Stopped right after its measurement: no need for the default 30 s drain.
    drain_timeout: "1s",
    cluster_manager: {
      clusters: [{
        name: "upstream",
        type: "SIMPLE",
        lb_type: "LB_ROUNDROBIN",
        hosts: [{ address: host }],
      }],
    },
  };
  // JSON is YAML; the loader reads either.
  return JSON.stringify(config, null, 2) + "\n";
}

/** Starts Mosaic (`main.ts`, the same Deno as this script) with the given stream filters. */
export async function startMosaic(
  context: BenchContext,
  name: string,
  upstream: string,
  filters: unknown[],
  options: { workers?: number; downstreamProtocol?: "Http1" | "Http2" } = {},
): Promise<Started> {
  const port = freePort();
  const file = `${context.dir}/${name}.yaml`;
  await Deno.writeTextFile(file, mosaicConfig(port, upstream, filters, options));
  const child = context.processes.spawn(name, Deno.execPath(), [
    "run",
    "--allow-net",
    "--allow-read",
    "--allow-env",
    "main.ts",
    file,
  ], { cwd: context.root, env: { NO_COLOR: "1" } });
  const url = `http://127.0.0.1:${port}/`;
  // The first start may compile and cache the program: give it time.
  if (options.downstreamProtocol === "Http2") await waitUntilListening(child, port);
  else await waitUntilReady(child, url, BENCH_HEADERS, 200, 120_000);
  return { url, child };
}
