/**
 * The host side of a sandboxed filter: a {@linkcode StreamFilterFactory} whose filters
 * forward each `onReceive`/`append` to the module's own filters in a Worker and apply
 * what comes back, so the chain (statuses, `failure_mode`, `onDestroy`) treats them like
 * any filter. A call that times out fails under the filter's `failure_mode`; a Worker
 * that then does not answer a ping is replaced, and the stuck one is logged.
 *
 * @module
 */

import type { FactoryContext, FilterChain, StreamFilterFactory } from "../../filter/api.ts";
import { startPeer } from "../proxy/start.ts";
import { FilterProxy } from "../proxy/stream_filter.ts";
import { SandboxWorkerError } from "./errors.ts";
import { SandboxWorker, type SandboxWorkerHost, type SandboxWorkerSpec } from "./worker.ts";

/** How long a Worker may take to import its module and make its factory. */
export const SANDBOX_START_TIMEOUT_MS = 30_000;
/** After a replacement Worker failed to start, how long calls fail before the next try. */
const RESTART_BACKOFF_MS = 1_000;

/** Options of {@linkcode SandboxedFilterFactory.create}. */
export interface SandboxedFactoryOptions {
  /** The Worker to start with: the loader's, which already imported the module. */
  worker?: SandboxWorker;
  /** Per-call timeout in milliseconds. @default {1000} */
  timeoutMs?: number;
}

/** A factory whose filters run in a Worker. */
export class SandboxedFilterFactory implements StreamFilterFactory, SandboxWorkerHost {
  readonly #spec: SandboxWorkerSpec;
  readonly #config: unknown;
  readonly #context: FactoryContext;
  readonly #timeoutMs: number;
  #worker: SandboxWorker | undefined;
  #starting: Promise<SandboxWorker> | undefined;
  #generation = 0;
  #startFailure: { error: Error; at: number } | undefined;
  #destroyed = false;
  readonly #proxy: FilterProxy<SandboxWorker>;

  private constructor(
    spec: SandboxWorkerSpec,
    config: unknown,
    context: FactoryContext,
    timeoutMs: number,
  ) {
    this.#spec = spec;
    this.#config = config;
    this.#context = context;
    this.#timeoutMs = timeoutMs;
    this.#proxy = new FilterProxy<SandboxWorker>({
      config,
      filterName: context.name,
      timeoutMs,
      current: () => this.#worker,
      next: () => this.#current(),
      replaced: () =>
        new SandboxWorkerError(
          "The sandbox Worker that held this stream's filter instances was replaced",
        ),
      metadata: (metadata) => metadata.size === 0 ? undefined : [...metadata],
    });
  }

  /**
   * Starts (or adopts) a Worker and makes the module's factory in it with `config`.
   *
   * @throws {Error} What the module's factory threw, or why the Worker did not start.
   */
  static async create(
    spec: SandboxWorkerSpec,
    config: unknown,
    context: FactoryContext,
    options: SandboxedFactoryOptions = {},
  ): Promise<SandboxedFilterFactory> {
    const factory = new SandboxedFilterFactory(spec, config, context, options.timeoutMs ?? 1000);
    factory.#worker = await factory.#start(options.worker);
    return factory;
  }

  /** The filter's logger: the Worker's log lines go here. */
  get logger(): FactoryContext["logger"] {
    return this.#context.logger;
  }

  /** Serves the filter's plugin calls. */
  get plugins(): FactoryContext["plugins"] {
    return this.#context.plugins;
  }

  /** Adds one forwarding filter to every phase and to the senders. */
  createFilterChain(chain: FilterChain): void {
    this.#proxy.createFilterChain(chain);
  }

  /** Lets the module's `destroy()` run, then terminates the Worker. */
  async destroy(): Promise<void> {
    if (this.#destroyed) return;
    this.#destroyed = true;
    const worker = this.#worker ?? await this.#starting?.catch(() => undefined);
    this.#worker = undefined;
    await worker?.close(this.#timeoutMs);
  }

  /** Called by a Worker whose call ran out of time: checks whether it is stuck. */
  timedOut(worker: SandboxWorker): void {
    this.#proxy.probe(worker, (reason) =>
      this.#replace(
        worker,
        reason,
        "Deno cannot stop a Worker that spins in a loop: the old one may keep a CPU busy until its code returns",
      ));
  }

  /** Called by a Worker that raised an error it did not handle. */
  crashed(worker: SandboxWorker, message: string): void {
    if (worker === this.#worker) this.#replace(worker, `crashed (${message})`, "");
    else worker.terminate(new SandboxWorkerError(message));
  }

  /** The running Worker, waiting for a replacement to start (or starting one). */
  #current(): Promise<SandboxWorker> {
    if (this.#destroyed) {
      return Promise.reject(
        new SandboxWorkerError(`The sandbox of module ${this.#spec.module} was closed`),
      );
    }
    if (this.#starting !== undefined) return this.#starting;
    const failure = this.#startFailure;
    if (failure !== undefined && performance.now() - failure.at < RESTART_BACKOFF_MS) {
      return Promise.reject(failure.error);
    }
    return this.#restart();
  }

  #restart(): Promise<SandboxWorker> {
    const starting = this.#start(undefined).then(
      (worker) => {
        this.#starting = undefined;
        this.#startFailure = undefined;
        if (this.#destroyed) {
          worker.close(this.#timeoutMs);
          throw new SandboxWorkerError(`The sandbox of module ${this.#spec.module} was closed`);
        }
        this.#worker = worker;
        return worker;
      },
      (error) => {
        this.#starting = undefined;
        const cause = error instanceof Error ? error.message : String(error);
        const failed = new SandboxWorkerError(
          `The sandbox of module ${this.#spec.module} could not be restarted: ${cause}`,
          { cause: error },
        );
        this.#startFailure = { error: failed, at: performance.now() };
        this.#context.logger.error(failed.message);
        throw failed;
      },
    );
    this.#starting = starting;
    return starting;
  }

  async #start(adopted: SandboxWorker | undefined): Promise<SandboxWorker> {
    const worker = adopted ?? new SandboxWorker(this.#spec, this.#generation + 1, this);
    this.#generation = worker.generation;
    worker.host = this;
    await startPeer(
      worker,
      this.#config,
      this.#context,
      SANDBOX_START_TIMEOUT_MS,
      () =>
        new SandboxWorkerError(`the sandbox did not start within ${SANDBOX_START_TIMEOUT_MS} ms`),
      (error) => worker.terminate(error),
    );
    return worker;
  }

  #replace(worker: SandboxWorker, reason: string, detail: string): void {
    this.#context.logger.error(
      `Sandboxed filter "${this.#context.name}" (module ${this.#spec.module}): its Worker ${reason}; it was terminated and a new Worker replaces it.${
        detail === "" ? "" : ` ${detail}.`
      }`,
    );
    this.#worker = undefined;
    worker.terminate(
      new SandboxWorkerError(
        `The sandbox Worker of module ${this.#spec.module} was replaced: it ${reason}`,
      ),
    );
    if (!this.#destroyed) this.#restart().catch(() => {});
  }
}
