/**
 * One configured plugin over time: its current child, restarts with backoff, health
 * checks, enable/disable.
 *
 * @module
 */

import type { Logger } from "@logtape/logtape";
import type { PluginConfig } from "../config/types.ts";
import type { PluginRequest, PluginResponse } from "../filter/api.ts";
import { PluginClient } from "./client.ts";
import { PluginStartError, PluginUnavailableError } from "./errors.ts";
import { describeExit, type ExitInfo, PluginProcess } from "./process.ts";

/** Where a plugin is in its life. */
export type PluginState = "stopped" | "starting" | "up" | "down" | "disabled";

/** What `status` tells about a plugin. */
export interface PluginStatus {
  /** The plugin's name. */
  name: string;
  /** False after `disable`, until `enable`. */
  enabled: boolean;
  /** True while a child runs and answers calls (MOSN's `on`). */
  on: boolean;
  /** The state. */
  state: PluginState;
  /** The child's pid while one runs. */
  pid: number | undefined;
  /** `tcp` or `unix`, from the handshake. */
  network: "tcp" | "unix" | undefined;
  /** The address from the handshake. */
  address: string | undefined;
  /** How many times the child was restarted after dying. */
  restarts: number;
  /** Whether the plugin offers `grpc.health.v1` (undefined before the first start). */
  health: boolean | undefined;
  /** Why the last start or child failed, if it did. */
  lastError: string | undefined;
}

/** Tuning of restarts and health checks. */
export interface InstanceOptions {
  /** The plugin's logger. */
  logger: Logger;
  /** `MOSN_LOGBASE`. */
  logBase: string;
  /** First restart delay. */
  restartInitialMs: number;
  /** Largest restart delay. */
  restartMaxMs: number;
  /** A child up this long resets the backoff. */
  restartResetMs: number;
  /** Time between health checks, for plugins that offer them; 0 turns them off. */
  healthIntervalMs: number;
  /** Consecutive failed health checks that make Mosaic restart the plugin. */
  healthFailures: number;
  /** Time a stopping child gets between SIGTERM and SIGKILL. */
  stopGraceMs: number;
}

/** A running-or-not plugin. */
export class PluginInstance {
  readonly #config: PluginConfig;
  readonly #options: InstanceOptions;
  readonly #log: Logger;
  #state: PluginState = "stopped";
  #enabled = true;
  #process: PluginProcess | undefined;
  #client: PluginClient | undefined;
  #launching: Promise<void> | undefined;
  #restartTimer: ReturnType<typeof setTimeout> | undefined;
  #restartAt = 0;
  #attempt = 0;
  #restarts = 0;
  #health: boolean | undefined;
  #healthTimer: ReturnType<typeof setTimeout> | undefined;
  #lastError: string | undefined;
  #exitWatch: Promise<void> | undefined;

  /** Creates the instance; nothing runs until {@linkcode PluginInstance.start}. */
  constructor(config: PluginConfig, options: InstanceOptions) {
    this.#config = config;
    this.#options = options;
    this.#log = options.logger;
  }

  /** The plugin's name. */
  get name(): string {
    return this.#config.name;
  }

  /**
   * Starts the child and waits until it answers.
   *
   * @throws {PluginStartError} when it does not start.
   */
  start(): Promise<void> {
    if (this.#state === "up") return Promise.resolve();
    this.#launching ??= this.#launch().finally(() => this.#launching = undefined);
    return this.#launching;
  }

  /**
   * Calls the plugin. Fails at once, without waiting, when no child is up.
   *
   * @throws {PluginUnavailableError} when the plugin is down, disabled or stopped.
   * @throws {PluginCallError} when the call fails or times out.
   */
  call(request: PluginRequest, timeoutMs: number): Promise<PluginResponse> {
    const client = this.#client;
    if (client === undefined) return Promise.reject(this.#unavailable());
    return client.call(request, timeoutMs);
  }

  /** The plugin's status. */
  status(): PluginStatus {
    const up = this.#state === "up";
    const handshake = this.#process?.handshake;
    return {
      name: this.name,
      enabled: this.#enabled,
      on: up,
      state: this.#state,
      pid: up ? this.#process?.pid : undefined,
      network: up ? handshake?.network : undefined,
      address: up ? handshake?.address : undefined,
      restarts: this.#restarts,
      health: this.#health,
      lastError: this.#lastError,
    };
  }

  /**
   * Turns the plugin on again after {@linkcode PluginInstance.disable} and starts it.
   *
   * @throws {PluginStartError} when it does not start; it is retried with backoff.
   */
  async enable(): Promise<void> {
    this.#enabled = true;
    if (this.#state === "disabled") this.#state = "stopped";
    this.#clearRestart();
    try {
      await this.start();
    } catch (err) {
      this.#scheduleRestart();
      throw err;
    }
  }

  /** Stops the child and refuses calls until {@linkcode PluginInstance.enable}. */
  async disable(): Promise<void> {
    this.#enabled = false;
    await this.#shutdown("disabled");
    this.#log.info(plain(`Plugin "${this.name}" disabled`));
  }

  /** Stops the child for good (close the connection, SIGTERM, then SIGKILL after the grace). */
  async stop(): Promise<void> {
    await this.#shutdown("stopped");
  }

  async #shutdown(state: "stopped" | "disabled"): Promise<void> {
    this.#state = state;
    this.#clearRestart();
    this.#clearHealth();
    // A start in progress finishes first, then is torn down below.
    await this.#launching?.catch(() => {});
    const proc = this.#process;
    const client = this.#client;
    this.#client = undefined;
    client?.close();
    if (proc) await proc.stop(this.#options.stopGraceMs);
    await this.#exitWatch;
    this.#process = undefined;
  }

  async #launch(): Promise<void> {
    if (!this.#enabled) throw this.#unavailable();
    this.#state = "starting";
    const started = Date.now();
    let proc: PluginProcess;
    try {
      proc = await PluginProcess.start(this.#config, this.#options);
    } catch (err) {
      this.#failed(err as Error);
      throw err;
    }
    const client = new PluginClient(this.name, proc.handshake.target);
    try {
      const left = () => Math.max(100, this.#config.startTimeoutMs - (Date.now() - started));
      await client.ready(left());
      this.#health = await this.#firstHealthCheck(client, left);
    } catch (err) {
      client.close();
      await proc.stop(this.#options.stopGraceMs);
      const error = new PluginStartError(
        this.name,
        `Plugin "${this.name}" printed its handshake (${proc.handshake.target}) but did not ` +
          `answer gRPC: ${(err as Error).message}`,
        { cause: err },
      );
      this.#failed(error);
      throw error;
    }
    if (this.#state !== "starting") {
      // Stopped or disabled while starting.
      client.close();
      await proc.stop(this.#options.stopGraceMs);
      throw this.#unavailable();
    }
    this.#process = proc;
    this.#client = client;
    this.#state = "up";
    this.#lastError = undefined;
    this.#exitWatch = proc.exited.then((exit) => this.#onExit(proc, exit));
    if (this.#health) this.#scheduleHealth(client, proc, 0);
    const { network, address } = proc.handshake;
    this.#log.info(plain(`Plugin "${this.name}" is up: pid ${proc.pid}, ${network} ${address}`), {
      plugin: this.name,
      pid: proc.pid,
    });
  }

  /** Returns whether the plugin offers health checks; waits for SERVING if it does. */
  async #firstHealthCheck(client: PluginClient, left: () => number): Promise<boolean> {
    for (let i = 0; i < 1000; i++) {
      const result = await client.health(Math.min(1000, left()));
      if (result === "UNIMPLEMENTED" || result === "SERVICE_UNKNOWN") return false;
      if (result === "SERVING") return true;
      if (left() <= 100) throw new Error(`its health check says ${result}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error("its health check never said SERVING");
  }

  #scheduleHealth(client: PluginClient, proc: PluginProcess, failures: number): void {
    const interval = this.#options.healthIntervalMs;
    if (interval <= 0) return;
    this.#healthTimer = setTimeout(async () => {
      this.#healthTimer = undefined;
      let ok = false;
      let why = "";
      try {
        const result = await client.health(Math.min(interval, 2000));
        ok = result === "SERVING";
        why = result;
      } catch (err) {
        why = (err as Error).message;
      }
      if (this.#client !== client) return; // the child changed meanwhile
      if (ok) {
        this.#scheduleHealth(client, proc, 0);
        return;
      }
      failures++;
      this.#log.warn(plain(`Plugin "${this.name}" failed health check ${failures}: ${why}`));
      if (failures >= this.#options.healthFailures) {
        this.#log.error(
          plain(`Plugin "${this.name}" failed ${failures} health checks; restarting it`),
        );
        proc.kill("SIGKILL"); // the exit watcher restarts it
      } else {
        this.#scheduleHealth(client, proc, failures);
      }
    }, interval);
  }

  #clearHealth(): void {
    clearTimeout(this.#healthTimer);
    this.#healthTimer = undefined;
  }

  #onExit(proc: PluginProcess, exit: ExitInfo): void {
    if (this.#process !== proc || this.#state !== "up") return; // an expected stop
    this.#clearHealth();
    this.#client?.close();
    this.#client = undefined;
    this.#lastError = `exited: ${describeExit(exit)}`;
    this.#state = "down";
    if (Date.now() - proc.startedAt >= this.#options.restartResetMs) this.#attempt = 0;
    this.#log.error(plain(`Plugin "${this.name}" (pid ${proc.pid}) ${describeExit(exit)}`), {
      plugin: this.name,
      pid: proc.pid,
    });
    this.#scheduleRestart();
  }

  #failed(err: Error): void {
    this.#lastError = err.message;
    if (this.#state === "starting") this.#state = "down";
  }

  #scheduleRestart(): void {
    if (!this.#enabled || this.#state === "stopped" || this.#restartTimer !== undefined) return;
    const o = this.#options;
    const wait = Math.min(o.restartMaxMs, o.restartInitialMs * 2 ** this.#attempt);
    this.#attempt = Math.min(this.#attempt + 1, 30);
    this.#restartAt = Date.now() + wait;
    this.#state = "down";
    this.#log.warn(plain(`Plugin "${this.name}" restarts in ${wait} ms`), {
      plugin: this.name,
      restartInMs: wait,
    });
    this.#restartTimer = setTimeout(() => {
      this.#restartTimer = undefined;
      this.#restarts++;
      this.start().catch((err: Error) => {
        // Stopped or disabled meanwhile: nothing failed.
        if (this.#state === "stopped" || this.#state === "disabled") return;
        this.#log.error(plain(`Plugin "${this.name}" did not restart: ${err.message}`));
        this.#scheduleRestart();
      });
    }, wait);
  }

  #clearRestart(): void {
    clearTimeout(this.#restartTimer);
    this.#restartTimer = undefined;
  }

  #unavailable(): PluginUnavailableError {
    const name = this.name;
    let message: string;
    switch (this.#state) {
      case "disabled":
        message = `Plugin "${name}" is disabled`;
        break;
      case "down": {
        const wait = Math.max(0, this.#restartAt - Date.now());
        message = `Plugin "${name}" is down (${this.#lastError ?? "not started"})` +
          (this.#restartTimer !== undefined ? `; restarting in ${wait} ms` : "");
        break;
      }
      case "starting":
        message = `Plugin "${name}" is starting`;
        break;
      default:
        message = `Plugin "${name}" is not running`;
    }
    return new PluginUnavailableError(name, message);
  }
}

/** A message with no LogTape placeholders: its braces are literal. */
function plain(message: string): string {
  return message.replaceAll("{", "{{").replaceAll("}", "}}");
}
