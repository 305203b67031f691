/**
 * The plugin host: starts every configured plugin, calls them, restarts them, stops
 * them. MOSN's `pkg/plugin` client side, with the lifecycle DESIGN.md asks for.
 *
 * @module
 */

import { getLogger, type Logger } from "@logtape/logtape";
import type { PluginConfig } from "../config/types.ts";
import type { PluginCaller, PluginRequest, PluginResponse } from "../filter/api.ts";
import { PluginCallError, PluginStartError, PluginUnavailableError } from "./errors.ts";
import { PluginInstance, type PluginStatus } from "./instance.ts";
import { type PluginStats, threadStats } from "../stats/scopes.ts";

export type { PluginState, PluginStatus } from "./instance.ts";

/** Options of {@linkcode PluginManager}. */
export interface PluginManagerOptions {
  /**
   * The parent logger; each plugin logs under a child named after it.
   *
   * @default {getLogger(["mosaic", "plugin"])}
   */
  logger?: Logger;
  /**
   * `MOSN_LOGBASE` given to plugins: where they may write logs.
   *
   * @default {Deno.cwd()}
   */
  logBase?: string;
  /**
   * Deadline of a call that gives no `timeoutMs`.
   *
   * @default {1000}
   */
  defaultTimeoutMs?: number;
  /**
   * First delay before restarting a child that died; doubles on each failure.
   *
   * @default {100}
   */
  restartInitialMs?: number;
  /**
   * Largest restart delay.
   *
   * @default {5000}
   */
  restartMaxMs?: number;
  /**
   * A child that stayed up this long restarts after `restartInitialMs` again.
   *
   * @default {10000}
   */
  restartResetMs?: number;
  /**
   * Time between `grpc.health.v1` checks of plugins that offer them; 0 turns them off.
   *
   * @default {5000}
   */
  healthIntervalMs?: number;
  /**
   * Failed health checks in a row after which the plugin is restarted.
   *
   * @default {3}
   */
  healthFailures?: number;
  /**
   * Time a stopping child gets between SIGTERM and SIGKILL.
   *
   * @default {2000}
   */
  stopGraceMs?: number;
}

/**
 * Runs the config's `plugins:` as child processes and calls them over gRPC.
 *
 * @example
 * ```ts ignore
 * const plugins = new PluginManager(config.plugins);
 * await plugins.start();
 * const answer = await plugins.call("checker", { header: { user: "admin" } }, { timeoutMs: 500 });
 * await plugins.stop();
 * ```
 */
export class PluginManager implements PluginCaller {
  readonly #instances = new Map<string, PluginInstance>();
  /** Each plugin with its stats, resolved once (`plugin.<name>.*`), for `call`. */
  readonly #calls = new Map<string, { instance: PluginInstance; stats: PluginStats }>();
  readonly #defaultTimeoutMs: number;
  #stopped = false;

  /**
   * Creates the manager; nothing runs until {@linkcode PluginManager.start}.
   *
   * @param configs Plugins by name, as the config loader produces them.
   * @param options Logger and tuning.
   */
  constructor(configs: ReadonlyMap<string, PluginConfig>, options: PluginManagerOptions = {}) {
    const logger = options.logger ?? getLogger(["mosaic", "plugin"]);
    this.#defaultTimeoutMs = options.defaultTimeoutMs ?? 1000;
    for (const [name, config] of configs) {
      const instance = new PluginInstance(config, {
        logger: logger.getChild(name),
        logBase: options.logBase ?? Deno.cwd(),
        restartInitialMs: options.restartInitialMs ?? 100,
        restartMaxMs: options.restartMaxMs ?? 5000,
        restartResetMs: options.restartResetMs ?? 10_000,
        healthIntervalMs: options.healthIntervalMs ?? 5000,
        healthFailures: options.healthFailures ?? 3,
        stopGraceMs: options.stopGraceMs ?? 2000,
      });
      this.#instances.set(name, instance);
      const stats = threadStats.plugin(name);
      stats.restartsSource = () => instance.status().restarts;
      this.#calls.set(name, { instance, stats });
    }
  }

  /**
   * Starts every plugin and waits for each handshake.
   *
   * @throws {PluginStartError} naming every plugin that did not start; the plugins
   * that did start are stopped again first.
   */
  async start(): Promise<void> {
    const instances = [...this.#instances.values()];
    const results = await Promise.allSettled(instances.map((i) => i.start()));
    const errors = results.flatMap((r) => r.status === "rejected" ? [r.reason as Error] : []);
    if (errors.length === 0) return;
    await this.stop();
    if (errors.length === 1) throw errors[0];
    const first = errors[0] as PluginStartError;
    throw new PluginStartError(
      first.plugin ?? "",
      `${errors.length} plugins did not start:\n` + errors.map((e) => `- ${e.message}`).join("\n"),
      { cause: new AggregateError(errors) },
    );
  }

  /**
   * Calls plugin `name`. Fails at once when it is unknown, down, disabled or stopped.
   *
   * @param name The plugin's name in `plugins:`.
   * @param request Headers, trailers, body, type.
   * @param options `timeoutMs`: the call's deadline (default: the manager's).
   * @returns The plugin's response.
   * @throws {PluginUnavailableError} when no child can take the call.
   * @throws {PluginCallError} when the call fails or times out.
   */
  call(
    name: string,
    request: PluginRequest,
    options?: { timeoutMs?: number },
  ): Promise<PluginResponse> {
    const entry = this.#calls.get(name);
    if (entry === undefined) return Promise.reject(this.#unknown(name));
    const { instance, stats } = entry;
    const started = performance.now();
    return instance.call(request, options?.timeoutMs ?? this.#defaultTimeoutMs).then(
      (response) => {
        stats.called(performance.now() - started, false, false);
        return response;
      },
      (error) => {
        stats.called(
          performance.now() - started,
          true,
          error instanceof PluginCallError && error.timedOut,
        );
        throw error;
      },
    );
  }

  /** The names of the configured plugins, in config order. */
  names(): string[] {
    return [...this.#instances.keys()];
  }

  /** Every plugin's status, in config order. */
  status(): PluginStatus[];
  /** One plugin's status, or undefined when no plugin has that name. */
  status(name: string): PluginStatus | undefined;
  status(name?: string): PluginStatus[] | PluginStatus | undefined {
    if (name === undefined) return [...this.#instances.values()].map((i) => i.status());
    return this.#instances.get(name)?.status();
  }

  /**
   * Enables plugin `name` and starts it (MOSN's admin `?enable=`).
   *
   * @throws {PluginUnavailableError} when there is no such plugin or the manager stopped.
   * @throws {PluginStartError} when it does not start (it is retried with backoff).
   */
  async enable(name: string): Promise<void> {
    const instance = this.#instances.get(name);
    if (instance === undefined) throw this.#unknown(name);
    if (this.#stopped) throw new PluginUnavailableError(name, "The plugin manager is stopped");
    await instance.enable();
  }

  /**
   * Stops plugin `name` and refuses its calls until it is enabled (MOSN's `?disable=`).
   *
   * @throws {PluginUnavailableError} when there is no such plugin.
   */
  async disable(name: string): Promise<void> {
    const instance = this.#instances.get(name);
    if (instance === undefined) throw this.#unknown(name);
    await instance.disable();
  }

  /** Stops every plugin: close the connection, SIGTERM, SIGKILL after the grace. */
  async stop(): Promise<void> {
    this.#stopped = true;
    await Promise.all([...this.#instances.values()].map((i) => i.stop()));
  }

  #unknown(name: string): PluginUnavailableError {
    const known = this.names();
    return new PluginUnavailableError(
      name,
      `No plugin named "${name}" is configured` +
        (known.length > 0 ? ` (plugins: ${known.join(", ")})` : " (the config has no plugins)"),
    );
  }
}
