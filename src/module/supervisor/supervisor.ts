/**
 * The one supervisor of every out-of-process runtime (Worker, child process): it loads
 * the module in a first peer, makes factories whose filters forward to the peer, and
 * keeps a peer running with one set of rules, whatever the runtime:
 *
 * - **Start**: the module's import and the factory's creation share one deadline
 *   ({@linkcode START_TIMEOUT_MS}); a peer that misses it is stopped.
 * - **Timeout and ping**: a call that runs past the filter's timeout fails under its
 *   `failure_mode` (the peer's deadline sweep). The peer is then pinged; one that does
 *   not answer within the timeout either (a module spinning in a loop) is stopped and
 *   replaced. A peer only slow on one call (waiting for a fetch) keeps serving.
 * - **Restart with backoff**: a peer that crashed, exited, or was stopped as stuck is
 *   replaced at once the first time, then after 100, 200, 400 … ms up to 5 s while
 *   peers keep dying young (one that lived 10 s starts the count again). Calls wait for
 *   a restart in progress and fail at once while one is scheduled.
 * - **Streams** whose instances lived in a replaced peer fail their later calls: their
 *   state is gone.
 * - **Errors**: `SandboxedFilterError` (the filter threw), `SandboxTimeoutError`,
 *   `SandboxError` (start, crash, replacement, close), see `errors.ts`.
 *
 * A runtime supplies only a {@linkcode PeerRuntime}: how to start its peer, and the words
 * for what went wrong.
 *
 * @module
 */

import type {
  CreateStreamFilterFactory,
  FactoryContext,
  FilterChain,
  StreamFilterFactory,
} from "../../contract/filter.ts";
import { filterLogger } from "../../log/logger.ts";
import type { ModuleSpec } from "../runtime.ts";
import { exportProblem, loadError, spare } from "../subject.ts";
import { SandboxError } from "./errors.ts";
import type { FilterPeerBase, PeerOwner } from "./peer.ts";
import type { InitMessage, LoadedMessage } from "./protocol.ts";
import { FilterProxy } from "./stream_filter.ts";

/** How long a peer may take to import its module and make its factory. */
export const START_TIMEOUT_MS = 30_000;
/** The second restart's delay; each further one doubles it. */
const RESTART_INITIAL_MS = 100;
/** The longest restart delay. */
const RESTART_MAX_MS = 5_000;
/** A peer that lived this long restarts at once again. */
const RESTART_RESET_MS = 10_000;
/** How long the loader's peer waits to be adopted by a factory before it is stopped. */
const SPARE_PEER_MS = 10_000;

/** What an out-of-process runtime tells the supervisor. */
export interface PeerRuntime<P extends FilterPeerBase> {
  /** The peer's kind in messages: `Worker`, `process`. */
  readonly noun: string;
  /** Where the factory runs, in messages: `sandbox`, `sandbox process`. */
  readonly place: string;
  /**
   * Starts a peer that imports the module at once.
   *
   * @throws {Error} When Deno refuses to start it.
   */
  start(generation: number, owner: PeerOwner): P;
  /** Words Deno's refusal to start the first peer (e.g. the flags the process lacks). */
  refused(error: unknown): string;
  /** Words why the first peer could not load the module. */
  loadFailure(error: unknown): Promise<string>;
  /** How a peer stopped as stuck ends, in the log: `killed (SIGKILL)`, `terminated`. */
  readonly stuckFate: string;
  /** What the log adds about a stuck peer, or "". */
  readonly stuckNote: string;
}

/**
 * Loads the module in a first peer, checks its export, and returns the creator of its
 * supervised factories (the first one adopts that peer).
 *
 * @throws {ModuleLoadError} When the peer cannot start, or the module does not load in
 * it or lacks the export.
 */
export async function loadSupervised<P extends FilterPeerBase>(
  runtime: PeerRuntime<P>,
  spec: ModuleSpec,
  timeoutMs: number,
): Promise<CreateStreamFilterFactory> {
  const { subject, filter } = spec;
  const loading: PeerOwner = {
    logger: filterLogger(filter.name),
    plugins: { call: () => Promise.reject(new Error("The sandbox is still loading")) },
    timedOut() {},
    ended() {},
  };
  let peer: P;
  try {
    peer = runtime.start(1, loading);
  } catch (error) {
    throw loadError(subject, runtime.refused(error), error);
  }
  let loaded: LoadedMessage;
  try {
    loaded = await withDeadline(
      START_TIMEOUT_MS,
      () =>
        new SandboxError(
          `the sandbox ${runtime.noun} did not load it within ${START_TIMEOUT_MS} ms`,
        ),
      (deadline) => Promise.race([peer.loaded(), deadline]),
    );
  } catch (error) {
    peer.kill(error instanceof Error ? error : new Error(String(error)));
    await peer.gone;
    throw loadError(subject, await runtime.loadFailure(error), error);
  }
  const problem = exportProblem(subject, loaded.exports, loaded.kind);
  if (problem !== undefined) {
    const error = loadError(subject, problem);
    peer.kill(error);
    await peer.gone;
    throw error;
  }
  // The peer that imported the module serves the first factory; it is stopped if no
  // factory adopts it (the build stopped at another filter).
  const adopt = spare(
    peer,
    SPARE_PEER_MS,
    (kept) => kept.kill(new SandboxError(`The loader's sandbox ${runtime.noun} was not adopted`)),
  );
  return async (config, context) => {
    try {
      return await SupervisedFilterFactory.create(runtime, spec, config, context, {
        peer: adopt(),
        timeoutMs,
      });
    } catch (error) {
      const cause = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
      throw new Error(
        `the factory ${subject.exportName} of module ${subject.url} in its ${runtime.place} failed: ${cause}`,
        { cause: error },
      );
    }
  };
}

/** A factory whose filters run in a supervised peer. */
export class SupervisedFilterFactory<P extends FilterPeerBase>
  implements StreamFilterFactory, PeerOwner {
  readonly #runtime: PeerRuntime<P>;
  readonly #module: string;
  readonly #config: unknown;
  readonly #context: FactoryContext;
  readonly #timeoutMs: number;
  readonly #proxy: FilterProxy<P>;
  #peer: P | undefined;
  #starting: Promise<P> | undefined;
  #generation = 0;
  #failures = 0;
  #restartTimer: ReturnType<typeof setTimeout> | undefined;
  #restartAt = 0;
  #lastFailure = "";
  #destroyed = false;
  #dying = new Set<Promise<unknown>>();

  private constructor(
    runtime: PeerRuntime<P>,
    module: string,
    config: unknown,
    context: FactoryContext,
    timeoutMs: number,
  ) {
    this.#runtime = runtime;
    this.#module = module;
    this.#config = config;
    this.#context = context;
    this.#timeoutMs = timeoutMs;
    this.#proxy = new FilterProxy<P>({
      config,
      filterName: context.name,
      timeoutMs,
      current: () => this.#peer,
      next: () => this.#current(),
      replaced: () =>
        new SandboxError(
          `The sandbox ${runtime.noun} that held this stream's filter instances was replaced`,
        ),
      metadata: metadataEntries,
    });
  }

  /**
   * Starts (or adopts) a peer and makes the module's factory in it with `config`.
   *
   * @throws {Error} What the module's factory threw, or why the peer did not start.
   */
  static async create<P extends FilterPeerBase>(
    runtime: PeerRuntime<P>,
    spec: ModuleSpec,
    config: unknown,
    context: FactoryContext,
    options: { peer?: P; timeoutMs?: number } = {},
  ): Promise<SupervisedFilterFactory<P>> {
    const factory = new SupervisedFilterFactory(
      runtime,
      spec.subject.url,
      config,
      context,
      options.timeoutMs ?? 1000,
    );
    factory.#peer = await factory.#start(options.peer);
    return factory;
  }

  /** The filter's logger: the peer's log lines go here. */
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

  /** Lets the module's `destroy()` run, then stops the peer; returns once every peer is gone. */
  async destroy(): Promise<void> {
    if (this.#destroyed) return;
    this.#destroyed = true;
    clearTimeout(this.#restartTimer);
    const peer = this.#peer ?? await this.#starting?.catch(() => undefined);
    this.#peer = undefined;
    await peer?.close(this.#timeoutMs);
    await Promise.all(this.#dying);
  }

  /** Called by a peer whose calls ran out of time: checks whether it is stuck. */
  timedOut(peer: FilterPeerBase): void {
    this.#proxy.probe(
      peer as P,
      (reason) =>
        this.#replace(peer as P, reason, this.#runtime.stuckFate, this.#runtime.stuckNote),
    );
  }

  /** Called by a peer that ended by itself. */
  ended(peer: FilterPeerBase, reason: string): void {
    if (peer === this.#peer) this.#replace(peer as P, reason, "gone", "");
  }

  /** The peer being started, or why there is none. */
  #current(): Promise<P> {
    if (this.#destroyed) return Promise.reject(this.#closed());
    if (this.#starting !== undefined) return this.#starting;
    const wait = Math.max(0, Math.round(this.#restartAt - performance.now()));
    return Promise.reject(
      new SandboxError(
        `The sandbox ${this.#runtime.noun} of module ${this.#module} is down (${this.#lastFailure}); it restarts in ${wait} ms`,
      ),
    );
  }

  #closed(): SandboxError {
    return new SandboxError(
      `The sandbox ${this.#runtime.noun} of module ${this.#module} was closed`,
    );
  }

  async #start(adopted: P | undefined): Promise<P> {
    const peer = adopted ?? this.#runtime.start(this.#generation + 1, this);
    this.#generation = peer.generation;
    peer.host = this;
    const init: InitMessage = {
      t: "init",
      config: this.#config,
      name: this.#context.name,
      listener: this.#context.listener,
      configFile: this.#context.configFile,
    };
    try {
      await withDeadline(
        START_TIMEOUT_MS,
        () =>
          new SandboxError(
            `the sandbox ${this.#runtime.noun} did not start within ${START_TIMEOUT_MS} ms`,
          ),
        async (deadline) => {
          await Promise.race([peer.loaded(), deadline]);
          await Promise.race([peer.init(init), deadline]);
        },
      );
    } catch (error) {
      peer.kill(error instanceof Error ? error : new Error(String(error)));
      await peer.gone;
      throw error;
    }
    return peer;
  }

  #restart(): void {
    this.#restartTimer = undefined;
    const starting = this.#start(undefined).then(
      (peer) => {
        this.#starting = undefined;
        if (this.#destroyed) {
          this.#bury(peer.close(this.#timeoutMs));
          throw this.#closed();
        }
        this.#peer = peer;
        this.#context.logger.info(
          `Sandboxed filter "${this.#context.name}" (module ${this.#module}): a new ${peer.label} serves it`,
        );
        return peer;
      },
      (error) => {
        this.#starting = undefined;
        const cause = error instanceof Error ? error.message : String(error);
        this.#lastFailure = `its restart failed: ${cause}`;
        const failed = new SandboxError(
          `The sandbox ${this.#runtime.noun} of module ${this.#module} could not be restarted: ${cause}`,
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

  /** Starts a new peer now or after the backoff; returns the delay. */
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

  #replace(peer: P, reason: string, fate: string, note: string): void {
    this.#peer = undefined;
    const label = peer.label;
    this.#lastFailure = `its ${label} ${reason}`;
    if (performance.now() - peer.startedAt >= RESTART_RESET_MS) this.#failures = 0;
    peer.kill(
      new SandboxError(
        `The sandbox ${label} of module ${this.#module} was replaced: it ${reason}`,
      ),
    );
    this.#bury(peer.gone);
    const delay = this.#scheduleRestart();
    this.#context.logger.error(
      `Sandboxed filter "${this.#context.name}" (module ${this.#module}): its ${label} ${reason}; it was ${fate} and a new ${this.#runtime.noun} replaces it.${
        note === "" ? "" : ` ${note}.`
      } The new one is started in ${delay} ms.`,
    );
  }

  /** Keeps a dying peer's end, so destroy() returns only once every peer is gone. */
  #bury(gone: Promise<unknown>): void {
    const tracked = gone.finally(() => this.#dying.delete(tracked));
    this.#dying.add(tracked);
  }
}

/**
 * Runs `work` with a promise that rejects with `error()` after `ms`; `work` races its
 * steps against it. The timer is cleared once `work` settles.
 */
async function withDeadline<T>(
  ms: number,
  error: () => Error,
  work: (deadline: Promise<never>) => Promise<T>,
): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(error()), ms);
  });
  try {
    return await work(deadline);
  } finally {
    clearTimeout(timer);
  }
}

/** The stream's metadata, without functions and symbols, which no transport carries. */
function metadataEntries(metadata: Map<string, unknown>): [string, unknown][] | undefined {
  if (metadata.size === 0) return undefined;
  const entries: [string, unknown][] = [];
  for (const [key, value] of metadata) {
    if (typeof value !== "function" && typeof value !== "symbol") entries.push([key, value]);
  }
  return entries;
}
