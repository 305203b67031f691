/**
 * Mosaic's command line.
 *
 * ```sh
 * deno run --allow-net --allow-read main.ts config.yaml        # run the proxy
 * deno run --allow-read main.ts check config.yaml              # validate, print narrow flags
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
} from "./src/filter/registry.ts";
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

async function load(file: string): Promise<MosaicConfig> {
  const { config, warnings } = await loadConfig(file, {
    isKnownFilterType,
    knownFilterTypes: registeredFilterTypes,
  });
  configureLogging(config.logLevel, config.logPath);
  for (const warning of warnings) logger("config").warn(escape(warning));
  return config;
}

async function check(file: string, flagsOnly = false): Promise<number> {
  try {
    const { config, warnings } = await loadConfig(file, {
      isKnownFilterType,
      knownFilterTypes: registeredFilterTypes,
    });
    if (flagsOnly) {
      console.log(narrowestPermissionFlags(config).join(" "));
      return 0;
    }
    for (const warning of warnings) console.error(`warning: ${warning}`);
    console.log(`${file}: OK`);
    console.log(`deno run ${narrowestPermissionFlags(config).join(" ")} main.ts ${file}`);
    return 0;
  } catch (error) {
    console.error(error instanceof Error ? error.message : String(error));
    return 1;
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
