/**
 * One running guest (a Worker or a child process) seen from the host, whatever carries
 * its messages: the calls in flight with their deadlines (one sweep per peer, no timer
 * per call), pings, the `close` handshake, batching of outgoing messages, the answers to
 * the guest's body and plugin requests, and failing everything once the peer ends. A
 * runtime's subclass supplies the transport (how a batch is written, where messages come
 * from) and how the peer is stopped; the supervisor (`supervisor.ts`) decides when.
 *
 * @module
 */

import type {
  FilterLogger,
  PluginCaller,
  PluginRequest,
  RequestStream,
  ResponseStream,
} from "../../contract/filter.ts";
import { SandboxedFilterError, type SandboxTimeoutError } from "./errors.ts";
import type {
  DoneMessage,
  GuestMessage,
  GuestRequest,
  HostMessage,
  InitMessage,
  LoadedMessage,
  ReceiveMessage,
  RemoteError,
  SendMessage,
} from "./protocol.ts";

/** What a peer reports to its owner (the supervisor, or the loader while it loads). */
export interface PeerOwner {
  /** The filter's logger; the peer's log lines go here. */
  readonly logger: FilterLogger;
  /** Serves the filter's plugin calls. */
  readonly plugins: PluginCaller;
  /** Calls of `peer` ran out of time. */
  timedOut(peer: FilterPeerBase): void;
  /** `peer` ended by itself after it was initialized (crash, exit, broken channel). */
  ended(peer: FilterPeerBase, reason: string): void;
}

/** One filter call in flight. */
export interface PendingCall {
  resolve(done: DoneMessage): void;
  reject(error: Error): void;
  stream: RequestStream | ResponseStream;
  /** `performance.now()` past which the call fails; Infinity while the host reads a body. */
  deadline: number;
  timeoutMs: number;
}

/** A Worker or child process that runs one sandboxed filter module. */
export abstract class FilterPeerBase {
  /** Counts the peers of one factory: a stream's instances live in one generation. */
  readonly generation: number;
  /** When it was started, from `performance.now()`. */
  readonly startedAt: number = performance.now();
  /** Receives logs, plugin calls, timeouts and ends. */
  host: PeerOwner;
  #loaded = Promise.withResolvers<LoadedMessage>();
  #ready: PromiseWithResolvers<void> | undefined;
  #calls = new Map<number, PendingCall>();
  #pings = new Map<number, () => void>();
  #nextId = 0;
  #ended: Error | undefined;
  #outbox: HostMessage[] = [];
  #sweeper: ReturnType<typeof setInterval> | undefined;

  /** Sets up the bookkeeping of peer `generation`; the subclass starts the peer. */
  constructor(generation: number, host: PeerOwner) {
    this.generation = generation;
    this.host = host;
    this.#loaded.promise.catch(() => {});
  }

  /** What the peer is, for messages: `Worker`, `process (pid 1234)`. */
  abstract get label(): string;

  /** Resolves once the peer is gone (its thread ended, its process exited); never rejects. */
  abstract get gone(): Promise<unknown>;

  /**
   * Stops the peer now and fails its calls with `reason`: a child process is killed
   * (SIGKILL), a Worker terminated. Await {@linkcode FilterPeerBase.gone}.
   */
  abstract kill(reason: Error): void;

  /**
   * Lets the factory's `destroy()` and the streams' `onDestroy` run (at most
   * `timeoutMs`), then stops the peer and waits until it is gone.
   */
  abstract close(timeoutMs: number): Promise<void>;

  /** Resolves once the module is imported, with what it exports; rejects with the cause. */
  loaded(): Promise<LoadedMessage> {
    return this.#loaded.promise;
  }

  /** Makes the factory in the peer; rejects with the error the factory threw. */
  init(message: InitMessage): Promise<void> {
    this.#ready = Promise.withResolvers<void>();
    this.post(message);
    return this.#ready.promise;
  }

  /**
   * Runs one filter call. Rejects when the filter throws, when the call takes longer
   * than `timeoutMs` (waiting for the client's body does not count), or when the peer
   * ends first.
   */
  call(
    message: ReceiveMessage | SendMessage,
    stream: RequestStream | ResponseStream,
    timeoutMs: number,
  ): Promise<DoneMessage> {
    if (this.#ended !== undefined) return Promise.reject(this.#ended);
    const id = message.id = ++this.#nextId;
    const { promise, resolve, reject } = Promise.withResolvers<DoneMessage>();
    const pending: PendingCall = {
      resolve,
      reject,
      stream,
      deadline: Infinity,
      timeoutMs,
    };
    this.#calls.set(id, pending);
    this.#arm(id, pending);
    this.post(message);
    return promise;
  }

  /** Ends a stream's instances in the peer (their `onDestroy`). */
  destroyStream(sid: number): void {
    if (this.#ended === undefined) this.post({ t: "destroy", sid });
  }

  /** True when the peer's event loop answers within `timeoutMs`. */
  ping(timeoutMs: number): Promise<boolean> {
    if (this.#ended !== undefined) return Promise.resolve(false);
    const id = ++this.#nextId;
    const { promise, resolve } = Promise.withResolvers<boolean>();
    const timer = setTimeout(() => {
      this.#pings.delete(id);
      resolve(false);
    }, timeoutMs);
    this.#pings.set(id, () => {
      clearTimeout(timer);
      resolve(true);
    });
    this.post({ t: "ping", id });
    return promise;
  }

  /** Why the peer ended, or undefined while it runs. */
  protected get ended(): Error | undefined {
    return this.#ended;
  }

  /** True once the factory was asked for (`init`): a later end is a crash, not a load failure. */
  protected get initialized(): boolean {
    return this.#ready !== undefined;
  }

  /** Writes one batch of messages to the peer; called only while it runs. */
  protected abstract write(batch: HostMessage[]): void;

  /** The error of a call that ran out of `timeoutMs`. */
  protected abstract timeoutError(timeoutMs: number): SandboxTimeoutError;

  /**
   * Lets the factory's `destroy()` and the streams' `onDestroy` run: sends `close` and
   * waits for its answer, at most `timeoutMs`. Does nothing before `init` or after the end.
   */
  protected async closeHandshake(timeoutMs: number): Promise<void> {
    if (this.#ended !== undefined || this.#ready === undefined) return;
    const id = ++this.#nextId;
    const { promise, resolve } = Promise.withResolvers<void>();
    this.#pings.set(id, resolve);
    this.post({ t: "close", id });
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([promise, new Promise((r) => timer = setTimeout(r, timeoutMs))]);
    clearTimeout(timer);
    this.#pings.delete(id);
  }

  /** Fails everything pending with `reason`; later calls fail with it at once. */
  protected end(reason: Error): boolean {
    if (this.#ended !== undefined) return false;
    this.#ended = reason;
    this.#loaded.reject(reason);
    this.#ready?.reject(reason);
    clearInterval(this.#sweeper);
    this.#sweeper = undefined;
    for (const [id, pending] of this.#calls) {
      this.#calls.delete(id);
      pending.reject(reason);
    }
    for (const wake of this.#pings.values()) wake();
    this.#pings.clear();
    return true;
  }

  /**
   * Stops the peer after it ended by itself (crashed, exited, broke its channel): fails
   * everything with `reason`, and tells the owner when it had been initialized (before
   * that, it is a load failure, which `loaded()` or `init()` reports).
   */
  protected endedByItself(reason: Error, how: string): void {
    const started = this.initialized;
    const first = this.#ended === undefined;
    this.kill(reason);
    if (first && started) this.host.ended(this, how);
  }

  /** Fails call `id` alone (its message could not be sent), if it is still pending. */
  protected failCall(id: number, error: Error): void {
    const pending = this.#calls.get(id);
    if (pending === undefined) return;
    this.#calls.delete(id);
    pending.reject(error);
  }

  /**
   * Queues a message; everything queued in one task goes in one write. Waking the peer is
   * most of what a call costs (measured on Deno 2.9.6, 2 busy cores: a Worker's
   * `postMessage` about 10 µs of the host's thread, a pipe write to a child about 25 µs).
   * Deferring the write further, to the end of the event loop's turn (`setImmediate`),
   * measured slower at 50 connections: a turn of Mosaic's loop mostly serves one socket.
   */
  protected post(message: HostMessage): void {
    if (this.#outbox.push(message) === 1) queueMicrotask(this.#flush);
  }

  #flush = (): void => {
    const batch = this.#outbox;
    this.#outbox = [];
    if (this.#ended === undefined) this.write(batch);
  };

  /** Handles one message from the peer. */
  protected receive(message: GuestMessage): void {
    switch (message.t) {
      case "done": {
        const pending = this.#calls.get(message.id);
        if (pending === undefined) return;
        this.#calls.delete(message.id);
        pending.resolve(message);
        return;
      }
      case "failed":
        this.failCall(message.id, new SandboxedFilterError(message.error));
        return;
      case "request":
        this.#serve(message);
        return;
      case "log":
        this.host.logger[message.level](message.message, message.properties);
        return;
      case "pong":
      case "closed":
        this.#pings.get(message.id)?.();
        this.#pings.delete(message.id);
        return;
      case "loaded":
        this.#loaded.resolve(message);
        return;
      case "load_failed":
        this.#loaded.reject(new SandboxedFilterError(message.error));
        return;
      case "ready":
        this.#ready?.resolve();
        return;
      case "init_failed":
        this.#ready?.reject(new SandboxedFilterError(message.error));
        return;
    }
  }

  #serve(request: GuestRequest): void {
    let work: Promise<unknown>;
    if (request.kind === "plugin") {
      work = this.host.plugins.call(request.name, request.request as PluginRequest, {
        timeoutMs: request.timeoutMs,
      });
    } else {
      const pending = this.#calls.get(request.call);
      if (pending === undefined) {
        work = Promise.reject(new Error("body() was called after the filter call ended"));
      } else {
        // The time the client takes to send its body is not the filter's.
        pending.deadline = Infinity;
        work = pending.stream.body({ maxBytes: request.maxBytes }).finally(() => {
          if (this.#calls.get(request.call) === pending) this.#arm(request.call, pending);
        });
      }
    }
    work.then(
      (value) => {
        if (this.#ended === undefined) this.post({ t: "reply", id: request.id, ok: true, value });
      },
      (error) => {
        if (this.#ended === undefined) {
          this.post({ t: "reply", id: request.id, ok: false, error: toRemote(error) });
        }
      },
    );
  }

  /**
   * Starts the call's clock: one interval per peer while calls are pending (a tenth of
   * the timeout, 5 to 100 ms) fails the late ones, which costs less than a timer per
   * call.
   */
  #arm(_id: number, pending: PendingCall): void {
    pending.deadline = performance.now() + pending.timeoutMs;
    this.#sweeper ??= setInterval(
      this.#sweep,
      Math.max(5, Math.min(100, pending.timeoutMs / 10)),
    );
  }

  /** Fails the calls past their deadline. */
  #sweep = (): void => {
    if (this.#calls.size === 0) {
      clearInterval(this.#sweeper);
      this.#sweeper = undefined;
      return;
    }
    const now = performance.now();
    let late = false;
    for (const [id, pending] of this.#calls) {
      if (pending.deadline > now) continue;
      this.#calls.delete(id);
      late = true;
      pending.reject(this.timeoutError(pending.timeoutMs));
    }
    if (late) this.host.timedOut(this);
  };
}

function toRemote(error: unknown): RemoteError {
  return error instanceof Error
    ? { name: error.name, message: error.message }
    : { name: "Error", message: String(error) };
}
