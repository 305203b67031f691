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

import {
  BUILTIN_CERTIFICATE_PROVIDERS,
  BUILTIN_PROTOCOLS,
  BUILTIN_STREAM_FILTERS,
} from "./extensions/builtin.ts";
import { loadConfig } from "./src/config/load.ts";
import { narrowestPermissionFlags } from "./src/config/permissions.ts";
import type { MosaicConfig, StreamFilterConfig } from "./src/config/types.ts";
import {
  isKnownFilterType,
  registeredFilterTypes,
  registerStreamFilter,
  streamFilterConfigParser,
  streamFilterPermissions,
} from "./src/filter/registry.ts";
import { buildFilterEntries } from "./src/filter/build.ts";
import { registerProtocol } from "./src/protocol/registry.ts";
import { Router } from "./src/router/router.ts";
import { createTlsProvider } from "./src/tls/material.ts";
import type { LoadOptions } from "./src/config/load.ts";
import { configureLogging, logger } from "./src/log/logger.ts";
import { loadFilterModule } from "./src/module/loader.ts";
import { Runtime } from "./src/server/runtime.ts";
import { watchConfigFile } from "./src/server/config_watch.ts";
import { registerCertificateProvider } from "./src/tls/providers.ts";
import type { PluginCaller } from "./src/filter/api.ts";
import type { PluginAdmin } from "./src/admin/plugin.ts";
import { type RunningAdmin, startAdmin } from "./src/admin/setup.ts";
import { canReusePort } from "./src/server/tls_mode.ts";
import { type ConfigSource, readConfigSource } from "./src/workers/config_source.ts";
import { resolveWorkerCount, takeWorkersFlag } from "./src/workers/count.ts";
import { WorkerPool } from "./src/workers/pool.ts";
import { isWorkerThread, serveWorker } from "./src/workers/worker.ts";

const USAGE = `Usage:
  mosaic [run] <config.yaml>   start the proxy
  mosaic check <config.yaml>   validate the config and print the narrowest deno run flags
  mosaic flags <config.yaml>   print only those flags, for scripts: deno run $(…) main.ts <config>

  --workers N|auto             run N workers (auto: one per core), overriding workers: in the config
`;

for (const [name, create] of BUILTIN_STREAM_FILTERS) registerStreamFilter(name, create);
for (const [name, create] of BUILTIN_PROTOCOLS) registerProtocol(name, create);
for (const [name, create] of BUILTIN_CERTIFICATE_PROVIDERS) {
  registerCertificateProvider(name, create);
}

/** Runs the command line; returns the exit code. */
export async function main(args: string[]): Promise<number> {
  let workers: number | "auto" | undefined;
  try {
    ({ args, workers } = takeWorkersFlag(args));
  } catch (error) {
    console.error((error as Error).message);
    return usage();
  }
  const [first, second] = args;
  if (first === undefined || first === "-h" || first === "--help") {
    console.log(USAGE);
    return first === undefined ? 2 : 0;
  }
  if (first === "check") {
    return second === undefined ? usage() : await check(second, false, workers);
  }
  if (first === "flags") return second === undefined ? usage() : await check(second, true, workers);
  if (first === "run") return second === undefined ? usage() : await run(second, workers);
  return await run(first, workers);
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

/** Loads the config with its text: with workers, every worker builds from that text. */
async function load(file: string): Promise<ConfigSource> {
  const source = await readConfigSource(file, LOAD_OPTIONS);
  configureLogging(source.config.logLevel, source.config.logPath);
  for (const warning of source.warnings) logger("config").warn(escape(warning));
  return source;
}

/** The flags `workers` needs besides the config's: see `PermissionOptions`. */
function workersOptions(config: MosaicConfig, workers: number | "auto" | undefined) {
  return {
    workers: resolveWorkerCount(workers ?? config.workers),
    unstableNet: canReusePort(),
    filterPermissions: (filter: StreamFilterConfig) =>
      streamFilterPermissions(filter.type, filter.parsedConfig?.value ?? filter.config),
  };
}

async function check(
  file: string,
  flagsOnly = false,
  workers?: number | "auto",
): Promise<number> {
  try {
    const { config, warnings } = await loadConfig(file, LOAD_OPTIONS);
    if (flagsOnly) {
      console.log(narrowestPermissionFlags(config, workersOptions(config, workers)).join(" "));
      return 0;
    }
    for (const warning of warnings) console.error(`warning: ${warning}`);
    const notes = await preflight(config);
    for (const note of notes) console.error(`note: ${note}`);
    console.log(`${file}: OK`);
    console.log(runCommand(config, file, workers));
    return 0;
  } catch (error) {
    console.error(error instanceof Error ? error.message : String(error));
    return 1;
  }
}

/** The command that runs `file`, as it can be pasted after `npm ci`. */
function runCommand(config: MosaicConfig, file: string, workers?: number | "auto"): string {
  const flags = narrowestPermissionFlags(config, workersOptions(config, workers)).join(" ");
  const option = workers === undefined ? "" : ` --workers ${workers}`;
  return `${DENO} run ${flags} main.ts${option} ${file}`;
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

async function run(file: string, workers?: number | "auto"): Promise<number> {
  let config: MosaicConfig;
  let runtime: Runtime | WorkerPool;
  let plugins: (PluginCaller & PluginAdmin & { stop(): Promise<void> }) | undefined;
  let admin: RunningAdmin | undefined;
  const log = logger("main");
  try {
    const source = await load(file);
    config = source.config;
    const count = resolveWorkerCount(workers ?? config.workers);
    // Plugins first: filters and certificate providers may call them while they load.
    // With workers they run here, once; the workers call them through this thread.
    plugins = await startPlugins(config);
    runtime = count > 1
      ? await startWorkers(file, source, count, plugins)
      : await Runtime.start(config, { plugins, resolveModule: loadFilterModule });
    if (config.admin !== undefined) {
      admin = await startAdmin({ file, text: source.text, config, runtime, plugins });
      log.info(`Admin API on ${admin.bound.hostname}:${admin.bound.port}`);
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
        // Workers: each builds from the same text; all switch, or none does.
        if (runtime instanceof WorkerPool) await runtime.reload(next.text);
        else await runtime.reload(next.config);
        config = next.config;
        await admin?.reloaded(next.text, next.config);
        log.info("Reloaded {file}", { file });
      } catch (error) {
        const reason = error instanceof Error ? error.message : String(error);
        admin?.reloadFailed(reason);
        log.error("Reload failed, the running config stays: {error}", { error: reason });
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
    // /ready answers 503 while the listeners drain; the admin API stops after them.
    admin?.draining();
    runtime.shutdown(config.drainTimeoutMs)
      .finally(() => admin?.stop())
      .catch(() => {})
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
 * Starts `count` workers, each a whole runtime on the same ports (`reusePort`, which
 * needs `--unstable-net`: Deno 2.9.6 exits the process without it rather than throw).
 */
async function startWorkers(
  file: string,
  source: ConfigSource,
  count: number,
  plugins: PluginCaller,
): Promise<WorkerPool> {
  if (!canReusePort()) {
    throw new Error(
      `${count} workers share their ports with reusePort, which needs --unstable-net ` +
        "(deno.json's unstable list has it when Deno runs from Mosaic's folder)",
    );
  }
  const pool = await WorkerPool.start({
    count,
    entry: import.meta.url,
    file,
    text: source.text,
    config: source.config,
    plugins,
  });
  logger("main").info("{count} workers serve every listener", { count });
  return pool;
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

if (import.meta.main) {
  // main.ts is also the module of every worker (`workers: N`): it registers the same
  // built-ins, and `deno compile` includes it with no extra --include.
  if (isWorkerThread()) serveWorker({ loadOptions: LOAD_OPTIONS, resolveModule: loadFilterModule });
  else Deno.exit(await main(Deno.args));
}
