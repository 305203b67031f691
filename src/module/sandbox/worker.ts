/**
 * One sandbox Worker seen from the host: starts it, tracks its calls with their
 * timeouts, answers its body and plugin requests, and ends it.
 *
 * @module
 */

import type {
  FilterLogger,
  PluginCaller,
  PluginRequest,
  RequestStream,
  ResponseStream,
} from "../../filter/api.ts";
import { sandboxEntryUrl } from "./entry.ts";
import { SandboxedFilterError, SandboxTimeoutError, SandboxWorkerError } from "./errors.ts";
import type {
  DoneMessage,
  HostMessage,
  InitMessage,
  LoadedMessage,
  ReceiveMessage,
  RemoteError,
  SendMessage,
  WorkerMessage,
  WorkerRequest,
} from "./protocol.ts";

/** What starting a sandbox Worker needs. */
export interface SandboxWorkerSpec {
  /** The URL the Worker imports (with the loader's version query). */
  importUrl: string;
  /** The module URL as configured, for messages. */
  module: string;
  /** The factory's export name. */
  exportName: string;
  /** The Worker's permissions. */
  permissions: Deno.PermissionOptionsObject;
  /** The filter's name, for the Worker's name and messages. */
  filterName: string;
}

/** What a Worker reports to its owner. */
export interface SandboxWorkerHost {
  /** The filter's logger; the Worker's log lines go here. */
  readonly logger: FilterLogger;
  /** Serves the filter's plugin calls. */
  readonly plugins: PluginCaller;
  /** A call ran out of time. */
  timedOut(worker: SandboxWorker): void;
  /** The Worker raised an error it did not handle after it started. */
  crashed(worker: SandboxWorker, message: string): void;
}

interface PendingCall {
  resolve(done: DoneMessage): void;
  reject(error: Error): void;
  stream: RequestStream | ResponseStream;
  /** `performance.now()` past which the call fails; Infinity while the host reads a body. */
  deadline: number;
  timeoutMs: number;
}

/** A Worker running one sandboxed filter module. */
export class SandboxWorker {
  /** Counts Workers of one factory: a stream's instances live in one generation. */
  readonly generation: number;
  /** Receives logs, timeouts and crashes. */
  host: SandboxWorkerHost;
  #spec: SandboxWorkerSpec;
  #worker: Worker;
  #loaded = Promise.withResolvers<LoadedMessage>();
  #ready: PromiseWithResolvers<void> | undefined;
  #calls = new Map<number, PendingCall>();
  #pings = new Map<number, () => void>();
  #nextId = 0;
  #ended: Error | undefined;
  #outbox: HostMessage[] = [];
  #sweeper: ReturnType<typeof setInterval> | undefined;

  /**
   * Starts the Worker; it imports the module at once.
   *
   * @throws {Error} When Deno refuses the Worker, e.g. for permissions the process lacks.
   */
  constructor(spec: SandboxWorkerSpec, generation: number, host: SandboxWorkerHost) {
    this.#spec = spec;
    this.generation = generation;
    this.host = host;
    this.#loaded.promise.catch(() => {});
    this.#worker = new Worker(sandboxEntryUrl(spec.importUrl, spec.exportName), {
      type: "module",
      name: `mosaic sandbox ${spec.filterName}`,
      deno: { permissions: spec.permissions },
    });
    this.#worker.onmessage = (event: MessageEvent<WorkerMessage[]>) => this.#receive(event.data);
    this.#worker.onerror = (event) => {
      // Unhandled, a Worker's error would end the whole process.
      event.preventDefault();
      this.#failed(event.message);
    };
    this.#worker.onmessageerror = () => this.#failed("a message could not be deserialized");
  }

  /** Resolves once the module is imported, with what it exports; rejects with the cause. */
  loaded(): Promise<LoadedMessage> {
    return this.#loaded.promise;
  }

  /** Makes the factory in the Worker; rejects with the error the factory threw. */
  init(message: InitMessage): Promise<void> {
    this.#ready = Promise.withResolvers<void>();
    this.#post(message);
    return this.#ready.promise;
  }

  /**
   * Runs one filter call. Rejects when the filter throws, when the call takes longer
   * than `timeoutMs` (waiting for the client's body does not count), or when the Worker
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
      deadline: performance.now() + timeoutMs,
      timeoutMs,
    };
    this.#calls.set(id, pending);
    this.#post(message);
    this.#sweeper ??= setInterval(this.#sweep, Math.max(5, Math.min(100, timeoutMs / 10)));
    return promise;
  }

  /** Ends a stream's instances in the Worker (their `onDestroy`). */
  destroyStream(sid: number): void {
    if (this.#ended === undefined) this.#post({ t: "destroy", sid });
  }

  /** True when the Worker's event loop answers within `timeoutMs`. */
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
    this.#post({ t: "ping", id });
    return promise;
  }

  /** Lets the factory's `destroy()` and the streams' `onDestroy` run, then terminates. */
  async close(timeoutMs: number): Promise<void> {
    if (this.#ended === undefined && this.#ready !== undefined) {
      const id = ++this.#nextId;
      const { promise, resolve } = Promise.withResolvers<void>();
      this.#pings.set(id, resolve);
      this.#post({ t: "close", id });
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([promise, new Promise((r) => timer = setTimeout(r, timeoutMs))]);
      clearTimeout(timer);
      this.#pings.delete(id);
    }
    this.terminate(new SandboxWorkerError(`The sandbox of module ${this.#spec.module} was closed`));
  }

  /**
   * Terminates the Worker and fails its calls with `reason`. A Worker spinning in a loop
   * is not stopped by this (Deno cannot interrupt it); it is only cut off.
   */
  terminate(reason: Error): void {
    if (this.#ended !== undefined) return;
    this.#ended = reason;
    this.#worker.terminate();
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
  }

  /**
   * Fails the calls past their deadline. One interval per Worker while calls are pending
   * (a tenth of the timeout, 5 to 100 ms) costs less than a timer per call.
   */
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
      pending.reject(
        new SandboxTimeoutError(
          `Sandboxed filter "${this.#spec.filterName}" (module ${this.#spec.module}) did not answer within ${pending.timeoutMs} ms`,
        ),
      );
    }
    if (late) this.host.timedOut(this);
  };

  /**
   * Queues a message; everything queued in one turn of the event loop goes in one
   * `postMessage`. Under load that saves most of the cost of a call: waking the Worker's
   * thread costs more than copying the message.
   */
  #post(message: HostMessage): void {
    if (this.#outbox.push(message) === 1) queueMicrotask(this.#flush);
  }

  #flush = (): void => {
    const batch = this.#outbox;
    this.#outbox = [];
    if (this.#ended !== undefined) return;
    try {
      this.#worker.postMessage(batch);
    } catch (error) {
      if (!isDataCloneError(error)) throw error;
      for (const message of batch) this.#postAlone(message);
    }
  };

  /** Posts one message of a batch that could not be copied as a whole. */
  #postAlone(message: HostMessage): void {
    try {
      this.#worker.postMessage([message]);
      return;
    } catch (error) {
      if (!isDataCloneError(error)) throw error;
      if ((message.t === "receive" || message.t === "send") && message.meta !== undefined) {
        // Metadata may hold values other filters keep in process (functions, sockets):
        // the sandbox gets the entries that can be copied.
        message.meta = message.meta.filter(([, value]) => cloneable(value));
        try {
          this.#worker.postMessage([message]);
          return;
        } catch (again) {
          if (!isDataCloneError(again)) throw again;
        }
      }
      if (message.t === "receive" || message.t === "send") {
        const pending = this.#calls.get(message.id);
        this.#calls.delete(message.id);
        pending?.reject(error as Error);
      }
    }
  }

  #receive(batch: WorkerMessage[]): void {
    for (const message of batch) this.#receiveOne(message);
  }

  #receiveOne(message: WorkerMessage): void {
    switch (message.t) {
      case "done": {
        const pending = this.#calls.get(message.id);
        if (pending === undefined) return;
        this.#calls.delete(message.id);
        pending.resolve(message);
        return;
      }
      case "failed": {
        const pending = this.#calls.get(message.id);
        if (pending === undefined) return;
        this.#calls.delete(message.id);
        pending.reject(new SandboxedFilterError(message.error));
        return;
      }
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
      case "ready":
        this.#ready?.resolve();
        return;
      case "init_failed":
        this.#ready?.reject(new SandboxedFilterError(message.error));
        return;
    }
  }

  #serve(request: WorkerRequest): void {
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
          pending.deadline = performance.now() + pending.timeoutMs;
        });
      }
    }
    work.then(
      (value) => {
        if (this.#ended === undefined) this.#post({ t: "reply", id: request.id, ok: true, value });
      },
      (error) => {
        if (this.#ended === undefined) {
          this.#post({ t: "reply", id: request.id, ok: false, error: toRemote(error) });
        }
      },
    );
  }

  #failed(message: string): void {
    const error = new SandboxWorkerError(message);
    if (this.#ready === undefined) {
      // Before "loaded" or between "loaded" and "init": the module failed to load.
      this.terminate(error);
      return;
    }
    this.host.crashed(this, message);
  }
}

function toRemote(error: unknown): RemoteError {
  return error instanceof Error
    ? { name: error.name, message: error.message }
    : { name: "Error", message: String(error) };
}

function isDataCloneError(error: unknown): boolean {
  return error instanceof DOMException && error.name === "DataCloneError";
}

function cloneable(value: unknown): boolean {
  try {
    structuredClone(value);
    return true;
  } catch {
    return false;
  }
}
