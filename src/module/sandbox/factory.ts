/**
 * The host side of a sandboxed filter: a {@linkcode StreamFilterFactory} whose filters
 * forward each `onReceive`/`append` to the module's own filters in a Worker and apply
 * what comes back, so the chain (statuses, `failure_mode`, `onDestroy`) treats them like
 * any filter. A call that times out fails under the filter's `failure_mode`; a Worker
 * that then does not answer a ping is replaced, and the stuck one is logged.
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
import { SandboxWorkerError } from "./errors.ts";
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
} from "./protocol.ts";
import { SandboxWorker, type SandboxWorkerHost, type SandboxWorkerSpec } from "./worker.ts";

/** How long a Worker may take to import its module and make its factory. */
export const SANDBOX_START_TIMEOUT_MS = 30_000;
/** After a replacement Worker failed to start, how long calls fail before the next try. */
const RESTART_BACKOFF_MS = 1_000;

const PHASE_BIT: Record<ReceivePhase, number> = {
  before_route: SHAPE_BEFORE_ROUTE,
  after_route: SHAPE_AFTER_ROUTE,
  after_choose_host: SHAPE_AFTER_CHOOSE_HOST,
};

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
  #probing = false;
  #destroyed = false;
  #nextStream = 0;

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
    const filter = new SandboxedStreamFilter(this, ++this.#nextStream);
    chain.addReceiver(filter, "before_route");
    chain.addReceiver(filter, "after_route");
    chain.addReceiver(filter, "after_choose_host");
    chain.addSender(filter);
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
    if (worker !== this.#worker || this.#probing) return;
    this.#probing = true;
    worker.ping(this.#timeoutMs).then((alive) => {
      this.#probing = false;
      if (!alive && worker === this.#worker) {
        this.#replace(
          worker,
          `did not answer a call nor a ping within ${this.#timeoutMs} ms`,
          "Deno cannot stop a Worker that spins in a loop: the old one may keep a CPU busy until its code returns",
        );
      }
    });
  }

  /** Called by a Worker that raised an error it did not handle. */
  crashed(worker: SandboxWorker, message: string): void {
    if (worker === this.#worker) this.#replace(worker, `crashed (${message})`, "");
    else worker.terminate(new SandboxWorkerError(message));
  }

  /** Runs one receive call in the Worker. */
  async receive(filter: SandboxedStreamFilter, stream: RequestStream): Promise<FilterStatus> {
    const worker = this.#worker ?? await this.#current();
    filter.check(worker);
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
      meta: stream.metadata.size === 0 ? undefined : [...stream.metadata],
      same,
      config: same ? undefined : effective,
      route: routeTuple(stream, this.#context.name),
      host: hostTuple(stream),
    };
    const done = await worker.call(message, stream, this.#timeoutMs);
    filter.adopt(worker, done, PHASE_BIT[stream.phase]);
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

  /** Runs one send call in the Worker. */
  async send(filter: SandboxedStreamFilter, stream: ResponseStream): Promise<FilterStatus> {
    const worker = this.#worker ?? await this.#current();
    filter.check(worker);
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
      meta: stream.metadata.size === 0 ? undefined : [...stream.metadata],
      same,
      config: same ? undefined : effective,
      route: routeTuple(stream, this.#context.name),
      host: hostTuple(stream),
    };
    const done = await worker.call(message, stream, this.#timeoutMs);
    filter.adopt(worker, done, SHAPE_SENDER);
    if (done.rstatus !== undefined) stream.status = done.rstatus;
    if (done.headers !== undefined) replaceHeaders(stream.headers, done.headers);
    if (done.body !== undefined) stream.setBody(done.body);
    if (done.meta !== undefined) applyMetadata(stream.metadata, done.meta);
    return done.status as FilterStatus;
  }

  /** Ends a stream's instances in the Worker they were made in. */
  destroyStream(filter: SandboxedStreamFilter): void {
    if (this.#worker !== undefined && this.#worker.generation === filter.generation) {
      this.#worker.destroyStream(filter.sid);
    }
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
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new SandboxWorkerError(
              `the sandbox did not start within ${SANDBOX_START_TIMEOUT_MS} ms`,
            ),
          ),
        SANDBOX_START_TIMEOUT_MS,
      );
    });
    try {
      await Promise.race([worker.loaded(), timeout]);
      await Promise.race([
        worker.init({
          t: "init",
          config: this.#config,
          name: this.#context.name,
          listener: this.#context.listener,
          configFile: this.#context.configFile,
        }),
        timeout,
      ]);
    } catch (error) {
      worker.terminate(error instanceof Error ? error : new Error(String(error)));
      throw error;
    } finally {
      clearTimeout(timer);
    }
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

/** The per-stream filter on the host: forwards to the stream's instances in the Worker. */
export class SandboxedStreamFilter implements ReceiverFilter, SenderFilter {
  /** The stream's id in the Worker. */
  readonly sid: number;
  /** The Worker generation the stream's instances live in; 0 before the first call. */
  generation = 0;
  #factory: SandboxedFilterFactory;
  /** SHAPE_* bits of where the instances were added; -1 until the first call. */
  #shape = -1;
  /** True once the Worker forgot the stream by itself (see `settle` in the Worker). */
  #released = false;

  /** Makes the filter of stream `sid`. */
  constructor(factory: SandboxedFilterFactory, sid: number) {
    this.#factory = factory;
    this.sid = sid;
  }

  /** Forwards to the Worker, unless the stream has no receiver in this phase. */
  onReceive(stream: RequestStream): FilterStatus | Promise<FilterStatus> {
    if (this.#shape !== -1 && (this.#shape & PHASE_BIT[stream.phase]) === 0) return "continue";
    return this.#factory.receive(this, stream);
  }

  /** Forwards to the Worker, unless the stream has no sender. */
  append(stream: ResponseStream): FilterStatus | Promise<FilterStatus> {
    if (this.#shape !== -1 && (this.#shape & SHAPE_SENDER) === 0) return "continue";
    return this.#factory.send(this, stream);
  }

  /** Ends the stream's instances in the Worker, unless it has none or forgot them. */
  onDestroy(): void {
    if (this.#shape !== -1 && !this.#released) this.#factory.destroyStream(this);
  }

  /** Fails when the stream's instances were lost with a replaced Worker. */
  check(worker: SandboxWorker): void {
    if (this.#shape !== -1 && worker.generation !== this.generation) {
      throw new SandboxWorkerError(
        "The sandbox Worker that held this stream's filter instances was replaced",
      );
    }
  }

  /**
   * Records where the stream's instances were made (from their first call's answer), and
   * whether the call of `bit` was their last one, after which the Worker forgets a stream
   * without `onDestroy`.
   */
  adopt(worker: SandboxWorker, done: DoneMessage, bit: number): void {
    if (done.shape !== undefined) {
      this.#shape = done.shape;
      this.generation = worker.generation;
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

function replaceHeaders(headers: Headers, entries: [string, string][]): void {
  for (const name of [...headers.keys()]) headers.delete(name);
  for (const [name, value] of entries) headers.append(name, value);
}

function applyMetadata(metadata: Map<string, unknown>, diff: MetadataDiff): void {
  for (const key of diff.del) metadata.delete(key);
  for (const [key, value] of diff.set) metadata.set(key, value);
}
