/**
 * `workers: N` in the main thread: starts N Web Workers, each a whole runtime on the same
 * ports (`reusePort`), reloads them all or none, drains them, replaces one that dies,
 * and answers their plugin calls from the one plugin manager.
 *
 * @module
 */

import type { Logger } from "@logtape/logtape";
import type { LogLevel, MosaicConfig } from "../config/types.ts";
import type { PluginCaller } from "../filter/api.ts";
import { logger } from "../log/logger.ts";
import { sumCounters } from "./counters.ts";
import { type StatsSnapshot, sumStats } from "../stats/snapshot.ts";
import {
  type CounterSnapshot,
  errorData,
  errorFrom,
  type FromWorker,
  INIT_ID,
  SHUTDOWN_ID,
  type ToWorker,
} from "./protocol.ts";

/** Options of {@linkcode WorkerPool.start}. */
export interface WorkerPoolOptions {
  /** How many workers. */
  count: number;
  /** The module every worker runs; it calls `serveWorker` (Mosaic's `main.ts`). */
  entry: string | URL;
  /** The config file, as the user named it. */
  file: string;
  /** The config's text, already validated by the main thread. */
  text: string;
  /** The config parsed from `text`. */
  config: MosaicConfig;
  /** The plugins, started once in the main thread. */
  plugins: PluginCaller;
  /**
   * First delay before a dead worker is replaced; doubles while replacements keep dying.
   *
   * @default {100}
   */
  restartInitialMs?: number;
  /**
   * Largest replacement delay.
   *
   * @default {5000}
   */
  restartMaxMs?: number;
  /**
   * A worker that ran this long is replaced after `restartInitialMs` again.
   *
   * @default {10000}
   */
  restartResetMs?: number;
  /**
   * The logger.
   *
   * @default {logger("workers")}
   */
  logger?: Logger;
}

/** Where a worker is in its life. */
export type WorkerState = "starting" | "running" | "restarting" | "stopped";

/** One worker, as the admin API shows it. */
export interface WorkerStatus {
  /** `%worker%` of its access log lines, `[w<index>]` of its log lines. */
  index: number;
  state: WorkerState;
  /** How many times it was replaced after dying. */
  restarts: number;
  /** Why it died last, if it did. */
  lastExit?: string;
}

/** Every worker's status and counters, and the counters summed over the workers. */
export interface WorkerReport {
  workers: (WorkerStatus & { counters?: CounterSnapshot })[];
  total: CounterSnapshot;
}

/** Raised when the workers cannot start or a reload fails in one of them. */
export class WorkerPoolError extends Error {
  /** Creates the error. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "WorkerPoolError";
  }
}

interface Pending {
  resolve(message: FromWorker): void;
  reject(error: Error): void;
}

class Slot {
  worker: Worker | undefined;
  state: WorkerState = "starting";
  restarts = 0;
  lastExit: string | undefined;
  startedAt = 0;
  delayMs: number;
  timer: ReturnType<typeof setTimeout> | undefined;
  readonly pending = new Map<number, Pending>();

  constructor(readonly index: number, delayMs: number) {
    this.delayMs = delayMs;
  }

  get name(): string {
    return `w${this.index}`;
  }
}

/**
 * The workers of one proxy.
 *
 * @example
 * ```ts ignore
 * const pool = await WorkerPool.start({ count: 4, entry: import.meta.url, file, text, config, plugins });
 * await pool.reload(nextText);   // every worker builds, then every worker switches
 * await pool.shutdown(30_000);
 * ```
 */
export class WorkerPool {
  readonly #slots: Slot[] = [];
  readonly #options: WorkerPoolOptions;
  readonly #log: Logger;
  readonly #restartInitialMs: number;
  readonly #restartMaxMs: number;
  readonly #restartResetMs: number;
  #text: string;
  #ports: Record<string, number> = {};
  #addresses = new Map<string, Deno.NetAddr>();
  #nextId = 1;
  #queue: Promise<unknown> = Promise.resolve();
  #stopping = false;

  private constructor(options: WorkerPoolOptions) {
    this.#options = options;
    this.#text = options.text;
    this.#log = options.logger ?? logger("workers");
    this.#restartInitialMs = options.restartInitialMs ?? 100;
    this.#restartMaxMs = options.restartMaxMs ?? 5000;
    this.#restartResetMs = options.restartResetMs ?? 10_000;
    for (let i = 0; i < options.count; i++) {
      this.#slots.push(new Slot(i, this.#restartInitialMs));
    }
  }

  /**
   * Starts every worker and waits until each has bound every listener. Worker 0 starts
   * first: a listener of port 0 gets its port in the others too.
   *
   * @throws {WorkerPoolError} naming the worker that did not start; the others are stopped.
   */
  static async start(options: WorkerPoolOptions): Promise<WorkerPool> {
    const pool = new WorkerPool(options);
    try {
      const first = await pool.#spawn(pool.#slots[0]);
      for (const listener of options.config.listeners) {
        const bound = first[listener.name];
        if (listener.port === 0 && bound !== undefined) pool.#ports[listener.name] = bound.port;
      }
      for (const [name, addr] of Object.entries(first)) {
        pool.#addresses.set(name, { transport: "tcp", ...addr });
      }
      await Promise.all(pool.#slots.slice(1).map((slot) => pool.#spawn(slot)));
    } catch (error) {
      await pool.shutdown(0);
      throw error;
    }
    return pool;
  }

  /** Addresses the listeners are bound to, by name (the same in every worker). */
  get addresses(): Map<string, Deno.NetAddr> {
    return new Map(this.#addresses);
  }

  /** Every worker's state. */
  status(): WorkerStatus[] {
    return this.#slots.map((slot) => ({
      index: slot.index,
      state: slot.state,
      restarts: slot.restarts,
      ...(slot.lastExit === undefined ? {} : { lastExit: slot.lastExit }),
    }));
  }

  /**
   * Every running worker's counters, and their sum. A worker that does not answer
   * within `timeoutMs` is shown without counters.
   */
  async report(timeoutMs = 1000): Promise<WorkerReport> {
    const workers = await Promise.all(this.#slots.map(async (slot) => {
      const status = this.status()[slot.index];
      if (slot.state !== "running") return status;
      const id = this.#nextId++;
      const answer = await this.#request(slot, { type: "stats", id }, id, timeoutMs)
        .catch(() => undefined);
      const counters = answer?.type === "done" ? answer.counters : undefined;
      return counters === undefined ? status : { ...status, counters };
    }));
    return {
      workers,
      total: sumCounters(workers.flatMap((w) => "counters" in w && w.counters ? [w.counters] : [])),
    };
  }

  /** Makes every worker log at `level` from now on (until the process stops). */
  setLogLevel(level: LogLevel): void {
    for (const slot of this.#slots) {
      if (slot.worker !== undefined) this.#post(slot.worker, { type: "log_level", level });
    }
  }

  /**
   * Every running worker's stats, summed (counters, gauges and histograms alike). A
   * worker that does not answer within `timeoutMs` is left out.
   */
  async stats(timeoutMs = 1000): Promise<StatsSnapshot> {
    const answers = await Promise.all(this.#slots.map(async (slot) => {
      if (slot.state !== "running") return undefined;
      const id = this.#nextId++;
      const answer = await this.#request(slot, { type: "stats", id }, id, timeoutMs)
        .catch(() => undefined);
      return answer?.type === "done" ? answer.stats : undefined;
    }));
    return sumStats(answers.filter((s): s is StatsSnapshot => s !== undefined));
  }

  /**
   * Reloads every worker with `text`, in two phases: every running worker builds the
   * next generation; only when all have built does each put it in force. When one fails
   * to build, all drop theirs and no worker changes.
   *
   * @param text The config's text, already validated by the main thread.
   * @throws {WorkerPoolError} naming the worker that failed and why.
   */
  reload(text: string): Promise<void> {
    return this.#enqueue(async () => {
      const running = this.#slots.filter((slot) => slot.state === "running");
      const id = this.#nextId++;
      const built = await Promise.allSettled(
        running.map((slot) => this.#request(slot, { type: "prepare", id, text }, id)),
      );
      const failed = built.findIndex((r) => r.status === "rejected");
      if (failed !== -1) {
        await Promise.allSettled(
          running.map((slot, i) =>
            built[i].status === "fulfilled"
              ? this.#request(slot, { type: "discard", id }, id)
              : undefined
          ),
        );
        const reason = (built[failed] as PromiseRejectedResult).reason as Error;
        throw new WorkerPoolError(
          `Worker ${running[failed].name} could not build the config, so no worker changed: ` +
            reason.message,
          { cause: reason },
        );
      }
      // From here on, a worker that starts (in place of one that died) gets the new text.
      this.#text = text;
      const committed = await Promise.allSettled(
        running.map((slot) => this.#request(slot, { type: "commit", id }, id)),
      );
      const errors = committed.flatMap((r, i) =>
        r.status === "rejected" ? [`${running[i].name}: ${(r.reason as Error).message}`] : []
      );
      if (errors.length > 0) {
        throw new WorkerPoolError(
          `The config was built by every worker, but not put in force by ${errors.join("; ")}`,
        );
      }
    });
  }

  /**
   * Drains every worker for up to `drainTimeoutMs` and ends them. No worker is replaced
   * from now on.
   */
  async shutdown(drainTimeoutMs: number): Promise<void> {
    this.#stopping = true;
    await Promise.all(this.#slots.map(async (slot) => {
      clearTimeout(slot.timer);
      if (slot.state === "running") {
        await this.#request(
          slot,
          { type: "shutdown", drainTimeoutMs },
          SHUTDOWN_ID,
          drainTimeoutMs + 5000,
        ).catch((error) => {
          this.#log.warn(escape(`Worker ${slot.name} did not drain: ${error.message}`));
        });
      }
      slot.worker?.terminate();
      slot.worker = undefined;
      slot.state = "stopped";
      for (const pending of slot.pending.values()) {
        pending.reject(new WorkerPoolError("The workers are stopping"));
      }
      slot.pending.clear();
    }));
  }

  /** Starts the slot's worker; resolves with its listeners' addresses once it serves. */
  #spawn(slot: Slot): Promise<Record<string, { hostname: string; port: number }>> {
    slot.state = "starting";
    const worker = new Worker(this.#options.entry, { type: "module", name: slot.name });
    slot.worker = worker;
    worker.onmessage = (event: MessageEvent<FromWorker>) => this.#receive(slot, worker, event.data);
    worker.onerror = (event: ErrorEvent) => {
      // Without this the error would end the main thread too.
      event.preventDefault();
      const where = event.filename ? ` (${event.filename}:${event.lineno}:${event.colno})` : "";
      this.#died(slot, worker, `${event.message}${where}`);
    };
    worker.onmessageerror = () => this.#died(slot, worker, "a message could not be read");
    const started = new Promise<FromWorker>((resolve, reject) => {
      slot.pending.set(INIT_ID, { resolve, reject });
    });
    this.#post(worker, {
      type: "init",
      index: slot.index,
      file: this.#options.file,
      text: this.#text,
      ports: this.#ports,
    });
    return started.then(
      (message) => {
        slot.state = "running";
        slot.startedAt = Date.now();
        return message.type === "started" ? message.addresses : {};
      },
      (error: Error) => {
        worker.terminate();
        if (slot.worker === worker) slot.worker = undefined;
        throw new WorkerPoolError(`Worker ${slot.name} did not start: ${error.message}`, {
          cause: error,
        });
      },
    );
  }

  #receive(slot: Slot, worker: Worker, message: FromWorker): void {
    if (slot.worker !== worker) return; // A worker that was replaced.
    switch (message.type) {
      case "started":
        this.#settle(slot, INIT_ID, message);
        return;
      case "done":
        this.#settle(slot, message.id, message);
        return;
      case "plugin_call": {
        const { id, name, request, timeoutMs } = message;
        this.#options.plugins.call(name, request, timeoutMs === undefined ? {} : { timeoutMs })
          .then(
            (response) => this.#post(worker, { type: "plugin_result", id, response }),
            (error) => this.#post(worker, { type: "plugin_result", id, error: errorData(error) }),
          );
        return;
      }
    }
  }

  #settle(slot: Slot, id: number, message: FromWorker): void {
    const pending = slot.pending.get(id);
    if (pending === undefined) return;
    slot.pending.delete(id);
    if (message.type === "done" && message.error !== undefined) {
      pending.reject(errorFrom(message.error));
    } else pending.resolve(message);
  }

  #died(slot: Slot, worker: Worker, reason: string): void {
    if (slot.worker !== worker) return;
    worker.terminate();
    slot.worker = undefined;
    slot.lastExit = reason;
    const wasRunning = slot.state === "running";
    for (const pending of slot.pending.values()) {
      pending.reject(new WorkerPoolError(`Worker ${slot.name} died: ${reason}`));
    }
    slot.pending.clear();
    if (this.#stopping) {
      slot.state = "stopped";
      return;
    }
    // A worker that dies while starting is handled by whoever started it.
    if (!wasRunning) return;
    if (Date.now() - slot.startedAt >= this.#restartResetMs) slot.delayMs = this.#restartInitialMs;
    this.#log.error(
      escape(
        `Worker ${slot.name} died: ${reason}; the others keep serving, a new ` +
          `${slot.name} starts in ${slot.delayMs} ms`,
      ),
    );
    this.#scheduleRestart(slot);
  }

  #scheduleRestart(slot: Slot): void {
    slot.state = "restarting";
    const delayMs = slot.delayMs;
    slot.delayMs = Math.min(slot.delayMs * 2, this.#restartMaxMs);
    slot.timer = setTimeout(() => {
      slot.timer = undefined;
      this.#enqueue(async () => {
        if (this.#stopping) return;
        try {
          await this.#spawn(slot);
          slot.restarts++;
          this.#log.info(`Worker ${slot.name} is back (restart ${slot.restarts})`);
        } catch (error) {
          if (this.#stopping) return;
          this.#log.error(
            escape(`${(error as Error).message}; trying again in ${slot.delayMs} ms`),
          );
          this.#scheduleRestart(slot);
        }
      }).catch(() => {});
    }, delayMs);
  }

  #request(
    slot: Slot,
    message: ToWorker,
    id: number,
    timeoutMs?: number,
  ): Promise<FromWorker> {
    const worker = slot.worker;
    if (worker === undefined) {
      return Promise.reject(new WorkerPoolError(`Worker ${slot.name} is not running`));
    }
    return new Promise<FromWorker>((resolve, reject) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const settle = <T>(f: (value: T) => void) => (value: T) => {
        clearTimeout(timer);
        f(value);
      };
      slot.pending.set(id, { resolve: settle(resolve), reject: settle(reject) });
      if (timeoutMs !== undefined) {
        timer = setTimeout(() => {
          slot.pending.delete(id);
          reject(new WorkerPoolError(`Worker ${slot.name} did not answer within ${timeoutMs} ms`));
        }, timeoutMs);
      }
      this.#post(worker, message);
    });
  }

  #post(worker: Worker, message: ToWorker): void {
    worker.postMessage(message);
  }

  /** Runs control steps (reloads, replacements) one at a time. */
  #enqueue<T>(step: () => Promise<T>): Promise<T> {
    const next = this.#queue.then(step);
    this.#queue = next.catch(() => {});
    return next;
  }
}

/** LogTape reads `{name}` as a placeholder; these messages are plain text. */
function escape(text: string): string {
  return text.replaceAll("{", "{{").replaceAll("}", "}}");
}
