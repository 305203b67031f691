/**
 * The admin API of a running proxy, as `main.ts` starts it: MOSN's plugin endpoint, the
 * workers endpoint, the operations endpoints and the dashboard, with the config's bearer
 * token. It keeps what the endpoints show about the config in force (its version, when
 * it was loaded, how many reloads) and turns `/ready` to 503 while the proxy drains.
 *
 * @module
 */

import type { LogLevel, MosaicConfig } from "../config/types.ts";
import { configureLogging } from "../log/logger.ts";
import type { PluginStatus } from "../plugin/manager.ts";
import { threadStats } from "../stats/scopes.ts";
import { type StatsSnapshot, sumStats } from "../stats/snapshot.ts";
import { addDashboardRoutes } from "./dashboard.ts";
import { addOperationsRoutes, type ConfigInfo, Readiness } from "./operations.ts";
import { PLUGIN_ADMIN_PATH, type PluginAdmin, pluginAdminHandler } from "./plugin.ts";
import { AdminServer } from "./server.ts";
import {
  singleWorker,
  WORKERS_ADMIN_PATH,
  workersAdminHandler,
  type WorkersSource,
} from "./workers.ts";

/** What the admin API needs of the runtime: one `Runtime`, or the `WorkerPool`. */
export interface AdminRuntime {
  /** Where the listeners are bound. */
  readonly addresses: Map<string, Deno.NetAddr>;
  /** The workers' stats, summed (the pool); absent for one runtime in this thread. */
  stats?(): Promise<StatsSnapshot>;
  /** Sets the workers' log level (the pool). */
  setLogLevel?(level: LogLevel): void;
  /** Every worker's status and counters (the pool). */
  report?: WorkersSource["report"];
}

/** The running admin API. */
export interface RunningAdmin {
  /** The admin server. */
  readonly server: AdminServer;
  /** Where it listens. */
  readonly bound: { hostname: string; port: number };
  /** Records a reload that took effect. */
  reloaded(text: string, config: MosaicConfig): Promise<void>;
  /** Records a reload that failed. */
  reloadFailed(error: string): void;
  /** Turns `/ready` to 503: the proxy drains. */
  draining(): void;
  /** Stops the admin server. */
  stop(): Promise<void>;
}

/** `sha256:` and the first 12 hex digits of the config text's SHA-256. */
export async function configVersion(text: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  const hex = [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
  return `sha256:${hex.slice(0, 12)}`;
}

/**
 * Starts the admin API of `config.admin`.
 *
 * @param options The config in force, its text and file, the runtime and the plugins.
 * @returns The running admin API.
 * @throws {AdminServerError} when its address cannot be bound.
 */
export async function startAdmin(options: {
  file: string;
  text: string;
  config: MosaicConfig;
  runtime: AdminRuntime;
  plugins: PluginAdmin;
}): Promise<RunningAdmin> {
  const { runtime, plugins, file } = options;
  const admin = options.config.admin!;
  let config = options.config;
  let text = options.text;
  let level: LogLevel = config.logLevel;
  const now = Date.now();
  const info: ConfigInfo = {
    file,
    version: await configVersion(text),
    startedAt: now,
    loadedAt: now,
    reloads: 0,
  };
  const readiness = new Readiness();
  const source = {
    // With workers, plugins run in this (the main) thread: their stats join the sum once.
    stats: () =>
      runtime.stats
        ? runtime.stats().then((s) => sumStats([s, threadStats.mainThreadSnapshot()]))
        : Promise.resolve(threadStats.snapshot()),
    config: () => config,
    configText: () => text,
    info: () => ({ ...info }),
    addresses: () => runtime.addresses,
    plugins: (): PluginStatus[] => plugins.status(),
    logLevel: () => level,
    setLogLevel: (next: LogLevel) => {
      level = next;
      configureLogging(next, config.logPath);
      runtime.setLogLevel?.(next);
      return Promise.resolve();
    },
  };
  const server = new AdminServer({ hostname: admin.hostname, port: admin.port, token: admin.token })
    .route(PLUGIN_ADMIN_PATH, pluginAdminHandler(plugins), {
      mutating: (url) => url.searchParams.has("enable") || url.searchParams.has("disable"),
      description: "MOSN's plugins: ?status=all|<name>; POST ?enable=<name>, ?disable=<name>",
    })
    .route(
      WORKERS_ADMIN_PATH,
      workersAdminHandler(runtime.report ? { report: () => runtime.report!() } : singleWorker()),
      { description: "every worker's state and counters, and their sum" },
    );
  addOperationsRoutes(server, source, readiness);
  addDashboardRoutes(server, source);
  const bound = await server.start();
  return {
    server,
    bound,
    async reloaded(nextText, nextConfig) {
      text = nextText;
      config = nextConfig;
      level = nextConfig.logLevel;
      info.version = await configVersion(nextText);
      info.loadedAt = Date.now();
      info.reloads++;
    },
    reloadFailed(error) {
      info.lastReloadError = { at: Date.now(), error };
    },
    draining() {
      readiness.draining = true;
    },
    stop: () => server.stop(),
  };
}
