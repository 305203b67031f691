/**
 * Mosaic's command line.
 *
 * ```sh
 * ./node_modules/.bin/deno run --allow-net --allow-read main.ts config.yaml    # run the proxy
 * ./node_modules/.bin/deno run --allow-read main.ts check config.yaml          # validate
 * ```
 *
 * @module
 */

import { BUILTIN_CERTIFICATE_PROVIDERS, BUILTIN_STREAM_FILTERS } from "./extensions/builtin.ts";
import { loadConfig } from "./src/config/load.ts";
import { narrowestPermissionFlags } from "./src/config/permissions.ts";
import type { MosaicConfig } from "./src/config/types.ts";
import {
  isKnownFilterType,
  registeredFilterTypes,
  registerStreamFilter,
  streamFilterConfigParser,
} from "./src/filter/registry.ts";
import { buildFilterEntries } from "./src/filter/build.ts";
import { Router } from "./src/router/router.ts";
import { createTlsProvider } from "./src/tls/material.ts";
import type { LoadOptions } from "./src/config/load.ts";
import { configureLogging, logger } from "./src/log/logger.ts";
import { loadFilterModule } from "./src/module/loader.ts";
import { Runtime } from "./src/server/runtime.ts";
import { watchConfigFile } from "./src/server/config_watch.ts";
import { registerCertificateProvider } from "./src/tls/providers.ts";
import type { PluginCaller } from "./src/filter/api.ts";
import { AdminServer } from "./src/admin/server.ts";
import { PLUGIN_ADMIN_PATH, type PluginAdmin, pluginAdminHandler } from "./src/admin/plugin.ts";

const USAGE = `Usage:
  mosaic [run] <config.yaml>   start the proxy
  mosaic check <config.yaml>   validate the config and print the narrowest deno run flags
  mosaic flags <config.yaml>   print only those flags, for scripts: deno run $(…) main.ts <config>
`;

for (const [name, create] of BUILTIN_STREAM_FILTERS) registerStreamFilter(name, create);
for (const [name, create] of BUILTIN_CERTIFICATE_PROVIDERS) {
  registerCertificateProvider(name, create);
}

/** Runs the command line; returns the exit code. */
export async function main(args: string[]): Promise<number> {
  const [first, second] = args;
  if (first === undefined || first === "-h" || first === "--help") {
    console.log(USAGE);
    return first === undefined ? 2 : 0;
  }
  if (first === "check") return second === undefined ? usage() : await check(second);
  if (first === "flags") return second === undefined ? usage() : await check(second, true);
  if (first === "run") return second === undefined ? usage() : await run(second);
  return await run(first);
}

function usage(): number {
  console.error(USAGE);
  return 2;
}

const LOAD_OPTIONS: LoadOptions = {
  isKnownFilterType,
  knownFilterTypes: registeredFilterTypes,
  filterConfigParser: streamFilterConfigParser,
};

async function load(file: string): Promise<MosaicConfig> {
  const { config, warnings } = await loadConfig(file, LOAD_OPTIONS);
  configureLogging(config.logLevel, config.logPath);
  for (const warning of warnings) logger("config").warn(escape(warning));
  return config;
}

async function check(file: string, flagsOnly = false): Promise<number> {
  try {
    const { config, warnings } = await loadConfig(file, LOAD_OPTIONS);
    if (flagsOnly) {
      console.log(narrowestPermissionFlags(config).join(" "));
      return 0;
    }
    for (const warning of warnings) console.error(`warning: ${warning}`);
    const notes = await preflight(config);
    for (const note of notes) console.error(`note: ${note}`);
    console.log(`${file}: OK`);
    console.log(runCommand(config, file));
    return 0;
  } catch (error) {
    console.error(error instanceof Error ? error.message : String(error));
    return 1;
  }
}

/** The command that runs `file`, as it can be pasted after `npm ci`. */
function runCommand(config: MosaicConfig, file: string): string {
  return `${DENO} run ${narrowestPermissionFlags(config).join(" ")} main.ts ${file}`;
}

/** Deno as installed by `npm ci`: `deno` itself is not on the PATH. */
const DENO = "./node_modules/.bin/deno";

/**
 * What `run` does before it serves, without serving or starting processes: builds every
 * router, every stream filter factory (modules by URL are imported here; sandboxed ones
 * in their Worker) and every certificate provider (`file` ones are read), so that
 * `check` fails exactly when `run` would. Plugins are not started: a filter or provider
 * that calls one while it loads is told so.
 *
 * @returns Notes about what could not be checked without starting a process.
 */
async function preflight(config: MosaicConfig): Promise<string[]> {
  const notes: string[] = [];
  const plugins: PluginCaller = {
    call: (name) =>
      Promise.reject(new Error(`check does not start plugins, so plugin "${name}" cannot answer`)),
  };
  for (const listener of config.listeners) {
    if (listener.network.type === "proxy") {
      new Router(config.routers.get(listener.network.routerConfigName)!);
      const filters = listener.streamFilters.filter((filter) => {
        if (filter.sandbox?.isolation !== "process") return true;
        notes.push(
          `${filter.position.file}:${filter.position.line}: ${filter.position.path}: ` +
            "a process-sandboxed module is loaded by run only (it starts a process)",
        );
        return false;
      });
      const entries = await buildFilterEntries(filters, {
        listener: listener.name,
        configFile: config.file,
        plugins,
        resolveModule: loadFilterModule,
      });
      for (const entry of entries) await entry.factory.destroy?.();
    }
    if (listener.tls?.status) await checkTls(listener.tls, plugins, notes);
  }
  for (const cluster of config.clusters.values()) {
    if (cluster.tls?.status) await checkTls(cluster.tls, plugins, notes);
  }
  return notes;
}

async function checkTls(
  tls: NonNullable<MosaicConfig["listeners"][number]["tls"]>,
  plugins: PluginCaller,
  notes: string[],
): Promise<void> {
  const provider = await createTlsProvider(tls, { plugins });
  if (provider.name === "file") await provider.fetch();
  else {
    notes.push(
      `${tls.position.file}:${tls.position.line}: ${tls.position.path}: certificate provider ` +
        `"${provider.name}" is fetched by run only (it may need a plugin)`,
    );
  }
}

async function run(file: string): Promise<number> {
  let config: MosaicConfig;
  let runtime: Runtime;
  let plugins: (PluginCaller & PluginAdmin & { stop(): Promise<void> }) | undefined;
  let admin: AdminServer | undefined;
  const log = logger("main");
  try {
    config = await load(file);
    // Plugins first: filters and certificate providers may call them while they load.
    plugins = await startPlugins(config);
    runtime = await Runtime.start(config, { plugins, resolveModule: loadFilterModule });
    if (config.admin !== undefined) {
      admin = new AdminServer({ hostname: config.admin.hostname, port: config.admin.port })
        .route(PLUGIN_ADMIN_PATH, pluginAdminHandler(plugins));
      const bound = await admin.start();
      log.info(`Admin API on ${bound.hostname}:${bound.port}`);
    }
  } catch (error) {
    console.error(`mosaic: ${error instanceof Error ? error.message : String(error)}`);
    await plugins?.stop().catch(() => {});
    return 1;
  }

  let reloading = Promise.resolve();
  const reload = () => {
    reloading = reloading.then(async () => {
      try {
        const next = await load(file);
        await runtime.reload(next);
        config = next;
        log.info("Reloaded {file}", { file });
      } catch (error) {
        log.error("Reload failed, the running config stays: {error}", {
          error: error instanceof Error ? error.message : String(error),
        });
      }
    });
  };
  Deno.addSignalListener("SIGHUP", reload);
  const watch = config.watch ? watchConfigFile(file, reload) : undefined;

  const stopped = Promise.withResolvers<void>();
  let stopping = false;
  const stop = (signal: string) => () => {
    // npm and deno task pass a signal on to the whole group: the second one is ignored.
    if (stopping) return;
    stopping = true;
    log.info("{signal}: draining for up to {ms} ms", { signal, ms: config.drainTimeoutMs });
    watch?.close();
    Promise.allSettled([runtime.shutdown(config.drainTimeoutMs), admin?.stop()])
      .then(() => plugins!.stop())
      .then(stopped.resolve, stopped.resolve);
  };
  Deno.addSignalListener("SIGINT", stop("SIGINT"));
  Deno.addSignalListener("SIGTERM", stop("SIGTERM"));
  log.info(`Mosaic running with ${escape(file)}`);
  await stopped.promise;
  log.info("Stopped");
  return 0;
}

/**
 * Starts the config's plugins. The gRPC stack is imported only when there are plugins:
 * it reads environment variables as it loads, which a config without plugins then does
 * not need `--allow-env` for.
 */
async function startPlugins(
  config: MosaicConfig,
): Promise<PluginCaller & PluginAdmin & { stop(): Promise<void> }> {
  if (config.plugins.size === 0) return noPlugins;
  const { PluginManager } = await import("./src/plugin/manager.ts");
  const manager = new PluginManager(config.plugins);
  await manager.start();
  return manager as PluginCaller & PluginAdmin & { stop(): Promise<void> };
}

const noPlugins = {
  call(name: string) {
    return Promise.reject(new Error(`Plugin "${name}" is not declared under plugins:`));
  },
  status(name?: string) {
    return name === undefined ? [] : undefined;
  },
  enable(name: string) {
    return Promise.reject(new Error(`Unknown plugin "${name}"`));
  },
  disable(name: string) {
    return Promise.reject(new Error(`Unknown plugin "${name}"`));
  },
  stop: () => Promise.resolve(),
} as PluginCaller & PluginAdmin & { stop(): Promise<void> };

function escape(text: string): string {
  return text.replaceAll("{", "{{").replaceAll("}", "}}");
}

if (import.meta.main) Deno.exit(await main(Deno.args));
