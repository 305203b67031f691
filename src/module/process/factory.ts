/**
 * The host side of a process-sandboxed filter: a {@linkcode StreamFilterFactory} whose
 * filters forward each `onReceive`/`append` to the module's own filters in a child
 * process and apply what comes back, so the chain (statuses, `failure_mode`,
 * `onDestroy`) treats them like any filter.
 *
 * - A call that times out fails under the filter's `failure_mode`. The child is then
 *   pinged; one that does not answer within the timeout either (a module spinning in a
 *   loop) is killed with SIGKILL and replaced. A child that is only slow on one call
 *   (waiting for a fetch) keeps serving the other streams.
 * - A child that exits or crashes is restarted: at once the first time, then after 100,
 *   200, 400 … ms up to 5 s while it keeps dying young (a child that lived 10 s starts
 *   the count again). Calls wait for a restart in progress, and fail at once while a
 *   restart is scheduled.
 * - Streams whose instances lived in a replaced child fail their later calls: their
 *   state is gone.
 *
 * @module
 */

import type { FactoryContext, FilterChain, StreamFilterFactory } from "../../filter/api.ts";
import { startPeer } from "../proxy/start.ts";
import { FilterProxy } from "../proxy/stream_filter.ts";
import { SandboxChild, type SandboxChildHost, type SandboxChildSpec } from "./child.ts";
import { SandboxProcessError } from "./errors.ts";

/** How long a child may take to start, import its module and make its factory. */
export const PROCESS_START_TIMEOUT_MS = 30_000;
/** The second restart's delay; each further one doubles it. */
const RESTART_INITIAL_MS = 100;
/** The longest restart delay. */
const RESTART_MAX_MS = 5_000;
/** A child that lived this long restarts at once again. */
const RESTART_RESET_MS = 10_000;

/** Options of {@linkcode ProcessFilterFactory.create}. */
export interface ProcessFactoryOptions {
  /** The child to start with: the loader's, which already imported the module. */
  child?: SandboxChild;
  /** Per-call timeout in milliseconds. @default {1000} */
  timeoutMs?: number;
}

/** A factory whose filters run in a child process. */
export class ProcessFilterFactory implements StreamFilterFactory, SandboxChildHost {
  readonly #spec: SandboxChildSpec;
  readonly #config: unknown;
  readonly #context: FactoryContext;
  readonly #timeoutMs: number;
  #child: SandboxChild | undefined;
  #starting: Promise<SandboxChild> | undefined;
  #generation = 0;
  #failures = 0;
  #restartTimer: ReturnType<typeof setTimeout> | undefined;
  #restartAt = 0;
  #lastFailure = "";
  #destroyed = false;
  readonly #proxy: FilterProxy<SandboxChild>;
  #dying = new Set<Promise<unknown>>();

  private constructor(
    spec: SandboxChildSpec,
    config: unknown,
    context: FactoryContext,
    timeoutMs: number,
  ) {
    this.#spec = spec;
    this.#config = config;
    this.#context = context;
    this.#timeoutMs = timeoutMs;
    this.#proxy = new FilterProxy<SandboxChild>({
      config,
      filterName: context.name,
      timeoutMs,
      current: () => this.#child,
      next: () => this.#current(),
      replaced: () =>
        new SandboxProcessError(
          "The sandbox process that held this stream's filter instances was replaced",
        ),
      metadata: metadataEntries,
    });
  }

  /**
   * Starts (or adopts) a child and makes the module's factory in it with `config`.
   *
   * @throws {Error} What the module's factory threw, or why the child did not start.
   */
  static async create(
    spec: SandboxChildSpec,
    config: unknown,
    context: FactoryContext,
    options: ProcessFactoryOptions = {},
  ): Promise<ProcessFilterFactory> {
    const factory = new ProcessFilterFactory(spec, config, context, options.timeoutMs ?? 1000);
    factory.#child = await factory.#start(options.child);
    return factory;
  }

  /** The filter's logger: the child's log lines go here. */
  get logger(): FactoryContext["logger"] {
    return this.#context.logger;
  }

  /** Serves the filter's plugin calls. */
  get plugins(): FactoryContext["plugins"] {
    return this.#context.plugins;
  }

  /** The running child's process id, if one runs. */
  get pid(): number | undefined {
    return this.#child?.pid;
  }

  /** Adds one forwarding filter to every phase and to the senders. */
  createFilterChain(chain: FilterChain): void {
    this.#proxy.createFilterChain(chain);
  }

  /** Lets the module's `destroy()` run, then ends the child and waits for it to exit. */
  async destroy(): Promise<void> {
    if (this.#destroyed) return;
    this.#destroyed = true;
    clearTimeout(this.#restartTimer);
    const child = this.#child ?? await this.#starting?.catch(() => undefined);
    this.#child = undefined;
    await child?.close(Math.max(this.#timeoutMs, 1000));
    await Promise.all(this.#dying);
  }

  /** Called by a child whose call ran out of time: checks whether it is stuck. */
  timedOut(child: SandboxChild): void {
    this.#proxy.probe(child, (reason) => this.#replace(child, reason, "killed (SIGKILL)"));
  }

  /** Called by a child that exited or crashed by itself. */
  ended(child: SandboxChild, reason: string): void {
    if (child === this.#child) this.#replace(child, reason, "gone");
  }

  /** The child being started, or why there is none. */
  #current(): Promise<SandboxChild> {
    if (this.#destroyed) {
      return Promise.reject(
        new SandboxProcessError(`The sandbox process of module ${this.#spec.module} was closed`),
      );
    }
    if (this.#starting !== undefined) return this.#starting;
    const wait = Math.max(0, Math.round(this.#restartAt - performance.now()));
    return Promise.reject(
      new SandboxProcessError(
        `The sandbox process of module ${this.#spec.module} is down (${this.#lastFailure}); it restarts in ${wait} ms`,
      ),
    );
  }

  async #start(adopted: SandboxChild | undefined): Promise<SandboxChild> {
    const child = adopted ?? new SandboxChild(this.#spec, this.#generation + 1, this);
    this.#generation = child.generation;
    child.host = this;
    await startPeer(
      child,
      this.#config,
      this.#context,
      PROCESS_START_TIMEOUT_MS,
      () =>
        new SandboxProcessError(
          `the sandbox process did not start within ${PROCESS_START_TIMEOUT_MS} ms`,
        ),
      (error) => {
        child.kill(error);
        return child.exited.then(() => {});
      },
    );
    return child;
  }

  #restart(): void {
    this.#restartTimer = undefined;
    const starting = this.#start(undefined).then(
      (child) => {
        this.#starting = undefined;
        if (this.#destroyed) {
          this.#bury(child.close(this.#timeoutMs));
          throw new SandboxProcessError(
            `The sandbox process of module ${this.#spec.module} was closed`,
          );
        }
        this.#child = child;
        this.#context.logger.info(
          `Sandboxed filter "${this.#context.name}" (module ${this.#spec.module}): a new process (pid ${child.pid}) serves it`,
        );
        return child;
      },
      (error) => {
        this.#starting = undefined;
        const cause = error instanceof Error ? error.message : String(error);
        this.#lastFailure = `its restart failed: ${cause}`;
        const failed = new SandboxProcessError(
          `The sandbox process of module ${this.#spec.module} could not be restarted: ${cause}`,
          { cause: error },
        );
        this.#context.logger.error(failed.message);
        this.#scheduleRestart();
        throw failed;
      },
    );
    starting.catch(() => {});
    this.#starting = starting;
  }

  /** Starts a new child now or after the backoff; returns the delay. */
  #scheduleRestart(): number {
    if (this.#destroyed) return 0;
    const delay = this.#failures === 0
      ? 0
      : Math.min(RESTART_MAX_MS, RESTART_INITIAL_MS * 2 ** (this.#failures - 1));
    this.#failures = Math.min(this.#failures + 1, 30);
    this.#restartAt = performance.now() + delay;
    if (delay === 0) this.#restart();
    else this.#restartTimer = setTimeout(() => this.#restart(), delay);
    return delay;
  }

  #replace(child: SandboxChild, reason: string, fate: string): void {
    this.#child = undefined;
    this.#lastFailure = `its process ${reason}`;
    if (performance.now() - child.startedAt >= RESTART_RESET_MS) this.#failures = 0;
    child.kill(
      new SandboxProcessError(
        `The sandbox process of module ${this.#spec.module} (pid ${child.pid}) was replaced: it ${reason}`,
      ),
    );
    this.#bury(child.exited);
    const delay = this.#scheduleRestart();
    this.#context.logger.error(
      `Sandboxed filter "${this.#context.name}" (module ${this.#spec.module}): its process (pid ${child.pid}) ${reason}; it was ${fate} and a new process replaces it, started in ${delay} ms`,
    );
  }

  /** Keeps a dying child's exit, so destroy() returns only once every child is gone. */
  #bury(gone: Promise<unknown>): void {
    const tracked = gone.finally(() => this.#dying.delete(tracked));
    this.#dying.add(tracked);
  }
}

/** The stream's metadata, without functions and symbols, which JSON cannot carry. */
function metadataEntries(metadata: Map<string, unknown>): [string, unknown][] | undefined {
  if (metadata.size === 0) return undefined;
  const entries: [string, unknown][] = [];
  for (const [key, value] of metadata) {
    if (typeof value !== "function" && typeof value !== "symbol") entries.push([key, value]);
  }
  return entries;
}
