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

import type {
  FactoryContext,
  FilterChain,
  FilterStatus,
  ReceivePhase,
  ReceiverFilter,
  RequestStream,
  ResponseStream,
  SenderFilter,
  StreamFilterFactory,
} from "../../filter/api.ts";
import {
  type DoneMessage,
  type HostTuple,
  type MetadataDiff,
  type ReceiveMessage,
  type RouteTuple,
  type SendMessage,
  SHAPE_AFTER_CHOOSE_HOST,
  SHAPE_AFTER_ROUTE,
  SHAPE_BEFORE_ROUTE,
  SHAPE_DESTROY,
  SHAPE_SENDER,
} from "../sandbox/protocol.ts";
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

const PHASE_BIT: Record<ReceivePhase, number> = {
  before_route: SHAPE_BEFORE_ROUTE,
  after_route: SHAPE_AFTER_ROUTE,
  after_choose_host: SHAPE_AFTER_CHOOSE_HOST,
};

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
  #probing = false;
  #destroyed = false;
  #nextStream = 0;
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
    const filter = new ProcessStreamFilter(this, ++this.#nextStream);
    chain.addReceiver(filter, "before_route");
    chain.addReceiver(filter, "after_route");
    chain.addReceiver(filter, "after_choose_host");
    chain.addSender(filter);
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
    if (child !== this.#child || this.#probing) return;
    this.#probing = true;
    child.ping(this.#timeoutMs).then((alive) => {
      this.#probing = false;
      if (!alive && child === this.#child) {
        this.#replace(
          child,
          `did not answer a call nor a ping within ${this.#timeoutMs} ms`,
          "killed (SIGKILL)",
        );
      }
    });
  }

  /** Called by a child that exited or crashed by itself. */
  ended(child: SandboxChild, reason: string): void {
    if (child === this.#child) this.#replace(child, reason, "gone");
  }

  /** Runs one receive call in the child. */
  async receive(filter: ProcessStreamFilter, stream: RequestStream): Promise<FilterStatus> {
    const child = this.#child ?? await this.#current();
    filter.check(child);
    const effective = stream.config;
    const same = effective === this.#config;
    const message: ReceiveMessage = {
      t: "receive",
      id: 0,
      sid: filter.sid,
      phase: stream.phase,
      method: stream.method,
      path: stream.path,
      headers: [...stream.headers],
      remote: [stream.remoteAddr.hostname, stream.remoteAddr.port],
      responded: stream.responded,
      meta: metadataEntries(stream.metadata),
      same,
      config: same ? undefined : effective,
      route: routeTuple(stream, this.#context.name),
      host: hostTuple(stream),
    };
    const done = await child.call(message, stream, this.#timeoutMs);
    filter.adopt(child, done, PHASE_BIT[stream.phase]);
    if (done.headers !== undefined) replaceHeaders(stream.headers, done.headers);
    if (done.path !== undefined) stream.path = done.path;
    if (done.body !== undefined) stream.setBody(done.body);
    if (done.respond !== undefined) {
      const [status, headers, body] = done.respond;
      stream.respond(status, { headers, body });
    }
    if (done.meta !== undefined) applyMetadata(stream.metadata, done.meta);
    return done.status as FilterStatus;
  }

  /** Runs one send call in the child. */
  async send(filter: ProcessStreamFilter, stream: ResponseStream): Promise<FilterStatus> {
    const child = this.#child ?? await this.#current();
    filter.check(child);
    const effective = stream.config;
    const same = effective === this.#config;
    const request = stream.request;
    const message: SendMessage = {
      t: "send",
      id: 0,
      sid: filter.sid,
      status: stream.status,
      headers: [...stream.headers],
      local: stream.local,
      request: [
        request.method,
        request.path,
        [...request.headers],
        request.remoteAddr.hostname,
        request.remoteAddr.port,
      ],
      meta: metadataEntries(stream.metadata),
      same,
      config: same ? undefined : effective,
      route: routeTuple(stream, this.#context.name),
      host: hostTuple(stream),
    };
    const done = await child.call(message, stream, this.#timeoutMs);
    filter.adopt(child, done, SHAPE_SENDER);
    if (done.rstatus !== undefined) stream.status = done.rstatus;
    if (done.headers !== undefined) replaceHeaders(stream.headers, done.headers);
    if (done.body !== undefined) stream.setBody(done.body);
    if (done.meta !== undefined) applyMetadata(stream.metadata, done.meta);
    return done.status as FilterStatus;
  }

  /** Ends a stream's instances in the child they were made in. */
  destroyStream(filter: ProcessStreamFilter): void {
    if (this.#child !== undefined && this.#child.generation === filter.generation) {
      this.#child.destroyStream(filter.sid);
    }
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
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new SandboxProcessError(
              `the sandbox process did not start within ${PROCESS_START_TIMEOUT_MS} ms`,
            ),
          ),
        PROCESS_START_TIMEOUT_MS,
      );
    });
    try {
      await Promise.race([child.loaded(), timeout]);
      await Promise.race([
        child.init({
          t: "init",
          config: this.#config,
          name: this.#context.name,
          listener: this.#context.listener,
          configFile: this.#context.configFile,
        }),
        timeout,
      ]);
    } catch (error) {
      child.kill(error instanceof Error ? error : new Error(String(error)));
      await child.exited;
      throw error;
    } finally {
      clearTimeout(timer);
    }
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

/** The per-stream filter on the host: forwards to the stream's instances in the child. */
export class ProcessStreamFilter implements ReceiverFilter, SenderFilter {
  /** The stream's id in the child. */
  readonly sid: number;
  /** The child generation the stream's instances live in; 0 before the first call. */
  generation = 0;
  #factory: ProcessFilterFactory;
  /** SHAPE_* bits of where the instances were added; -1 until the first call. */
  #shape = -1;
  /** True once the child forgot the stream by itself (see `settle` in the Worker side). */
  #released = false;

  /** Makes the filter of stream `sid`. */
  constructor(factory: ProcessFilterFactory, sid: number) {
    this.#factory = factory;
    this.sid = sid;
  }

  /** Forwards to the child, unless the stream has no receiver in this phase. */
  onReceive(stream: RequestStream): FilterStatus | Promise<FilterStatus> {
    if (this.#shape !== -1 && (this.#shape & PHASE_BIT[stream.phase]) === 0) return "continue";
    return this.#factory.receive(this, stream);
  }

  /** Forwards to the child, unless the stream has no sender. */
  append(stream: ResponseStream): FilterStatus | Promise<FilterStatus> {
    if (this.#shape !== -1 && (this.#shape & SHAPE_SENDER) === 0) return "continue";
    return this.#factory.send(this, stream);
  }

  /** Ends the stream's instances in the child, unless it has none or forgot them. */
  onDestroy(): void {
    if (this.#shape !== -1 && !this.#released) this.#factory.destroyStream(this);
  }

  /** Fails when the stream's instances were lost with a replaced child. */
  check(child: SandboxChild): void {
    if (this.#shape !== -1 && child.generation !== this.generation) {
      throw new SandboxProcessError(
        "The sandbox process that held this stream's filter instances was replaced",
      );
    }
  }

  /**
   * Records where the stream's instances were made (from their first call's answer), and
   * whether the call of `bit` was their last one, after which the child forgets a stream
   * without `onDestroy` and needs no `destroy` message (the Worker sandbox's rule).
   */
  adopt(child: SandboxChild, done: DoneMessage, bit: number): void {
    if (done.shape !== undefined) {
      this.#shape = done.shape;
      this.generation = child.generation;
    }
    if ((this.#shape & SHAPE_DESTROY) !== 0) return;
    const calls = this.#shape & 15;
    if (calls === 0 || bit === 1 << (31 - Math.clz32(calls))) this.#released = true;
  }
}

function routeTuple(
  stream: RequestStream | ResponseStream,
  filterName: string,
): RouteTuple | undefined {
  const route = stream.route;
  if (route === undefined) return undefined;
  return [route.name, route.clusterName, route.virtualHost, route.perFilterConfig(filterName)];
}

function hostTuple(stream: RequestStream | ResponseStream): HostTuple | undefined {
  const host = stream.host;
  return host === undefined ? undefined : [host.address, host.cluster, host.weight];
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

function replaceHeaders(headers: Headers, entries: [string, string][]): void {
  for (const name of [...headers.keys()]) headers.delete(name);
  for (const [name, value] of entries) headers.append(name, value);
}

function applyMetadata(metadata: Map<string, unknown>, diff: MetadataDiff): void {
  for (const key of diff.del) metadata.delete(key);
  for (const [key, value] of diff.set) metadata.set(key, value);
}
