/**
 * One worker of `workers: N`, in its own thread: a whole {@linkcode Runtime} (listeners,
 * routers, pools, filters, access logs) built from the config text the main thread
 * validated, every listener bound with `reusePort` so the kernel spreads connections
 * over the workers. Requests never leave the worker; only plugin calls go to the main
 * thread, where the plugins run once.
 *
 * @module
 */

import { type LoadOptions, parseConfig } from "../config/load.ts";
import type { MosaicConfig } from "../config/types.ts";
import type { ModuleResolver } from "../filter/build.ts";
import { configureLogging, logger } from "../log/logger.ts";
import { type PreparedGeneration, Runtime } from "../server/runtime.ts";
import { threadCounters } from "./counters.ts";
import { threadStats } from "../stats/scopes.ts";
import { errorData, type FromWorker, INIT_ID, SHUTDOWN_ID, type ToWorker } from "./protocol.ts";
import { RemotePluginCaller } from "./remote_plugins.ts";

/** What a worker needs from the program that starts it (its `main.ts`). */
export interface WorkerSetup {
  /** The same options the main thread loads the config with. */
  loadOptions: LoadOptions;
  /** Imports `type: module` filters. */
  resolveModule: ModuleResolver;
}

interface WorkerScope {
  postMessage(message: FromWorker): void;
  onmessage: ((event: MessageEvent<ToWorker>) => void) | null;
  close(): void;
}

/** True in a Web Worker's thread, false in the main thread. */
export function isWorkerThread(): boolean {
  return typeof (globalThis as { WorkerGlobalScope?: unknown }).WorkerGlobalScope !==
    "undefined";
}

/**
 * Serves the main thread's messages in this worker until it says `shutdown`.
 *
 * An error that nothing catches (a filter's timer that throws, say) ends the worker: the
 * main thread logs which one died and why, and starts another in its place.
 *
 * @param setup The config load options and module resolver of the program.
 */
export function serveWorker(setup: WorkerSetup): void {
  const scope = globalThis as unknown as WorkerScope;
  const post = (message: FromWorker) => scope.postMessage(message);
  const plugins = new RemotePluginCaller(post);
  const prepared = new Map<number, { config: MosaicConfig; generation: PreparedGeneration }>();
  let index = 0;
  let file = "";
  let ports: Record<string, number> = {};
  let runtime: Runtime | undefined;
  let logLevel: MosaicConfig["logLevel"] | undefined;
  let logPath = "stderr";

  const parse = (text: string) =>
    withPorts(parseConfig(text, file, setup.loadOptions).config, ports);
  const log = () => logger("worker");

  async function handle(message: ToWorker): Promise<void> {
    switch (message.type) {
      case "init": {
        ({ index, file, ports } = message);
        try {
          const config = parse(message.text);
          logPath = config.logPath;
          configureLogging(logLevel ?? config.logLevel, logPath, { worker: index });
          runtime = await Runtime.start(config, {
            plugins,
            resolveModule: setup.resolveModule,
            reusePort: true,
            worker: index,
          });
          const addresses: Record<string, { hostname: string; port: number }> = {};
          for (const [name, addr] of runtime.addresses) {
            addresses[name] = { hostname: addr.hostname, port: addr.port };
          }
          post({ type: "started", addresses });
        } catch (error) {
          post({ type: "done", id: INIT_ID, error: errorData(error) });
        }
        return;
      }
      case "prepare": {
        try {
          const config = parse(message.text);
          const generation = await runtime!.prepare(config);
          prepared.set(message.id, { config, generation });
          post({ type: "done", id: message.id });
        } catch (error) {
          post({ type: "done", id: message.id, error: errorData(error) });
        }
        return;
      }
      case "commit": {
        const next = prepared.get(message.id);
        prepared.delete(message.id);
        try {
          if (next === undefined) throw new Error(`No prepared config ${message.id}`);
          // A reload sets the config's level again, as in the main thread.
          logPath = next.config.logPath;
          logLevel = undefined;
          configureLogging(next.config.logLevel, logPath, { worker: index });
          await runtime!.commit(next.generation);
          threadCounters.add("reloads");
          post({ type: "done", id: message.id });
        } catch (error) {
          post({ type: "done", id: message.id, error: errorData(error) });
        }
        return;
      }
      case "discard": {
        const next = prepared.get(message.id);
        prepared.delete(message.id);
        if (next !== undefined) {
          await runtime!.discard(next.generation).catch((error) => {
            log().warn("Dropping a prepared config failed: {error}", { error: String(error) });
          });
        }
        post({ type: "done", id: message.id });
        return;
      }
      case "shutdown": {
        for (const { generation } of prepared.values()) {
          await runtime?.discard(generation).catch(() => {});
        }
        await runtime?.shutdown(message.drainTimeoutMs);
        post({ type: "done", id: SHUTDOWN_ID });
        scope.close();
        return;
      }
      case "stats":
        post({
          type: "done",
          id: message.id,
          counters: threadCounters.snapshot(),
          stats: threadStats.snapshot(),
        });
        return;
      case "plugin_result":
        plugins.answer(message.id, message.response, message.error);
        return;
      case "log_level":
        logLevel = message.level;
        configureLogging(logLevel, logPath, { worker: index });
        return;
    }
  }

  // Plugin answers must not wait behind a build that is waiting for them; everything
  // else runs in the order the main thread sent it.
  let queue = Promise.resolve();
  scope.onmessage = (event) => {
    const message = event.data;
    if (
      message.type === "plugin_result" || message.type === "stats" || message.type === "log_level"
    ) {
      handle(message);
      return;
    }
    queue = queue.then(() => handle(message));
  };
}

/**
 * The config with listeners of port 0 bound to the ports worker 0 got: every worker
 * must share each listener's port.
 */
function withPorts(config: MosaicConfig, ports: Record<string, number>): MosaicConfig {
  if (!config.listeners.some((l) => l.port === 0 && ports[l.name] !== undefined)) return config;
  return {
    ...config,
    listeners: config.listeners.map((l) =>
      l.port === 0 && ports[l.name] !== undefined ? { ...l, port: ports[l.name] } : l
    ),
  };
}
