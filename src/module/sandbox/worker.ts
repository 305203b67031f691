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
  timer: ReturnType<typeof setTimeout> | undefined;
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
    this.#worker.onmessage = (event: MessageEvent<WorkerMessage>) => this.#receive(event.data);
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
    const pending: PendingCall = { resolve, reject, stream, timer: undefined, timeoutMs };
    this.#postCall(message);
    this.#calls.set(id, pending);
    this.#arm(id, pending);
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
    for (const [id, pending] of this.#calls) {
      clearTimeout(pending.timer);
      this.#calls.delete(id);
      pending.reject(reason);
    }
    for (const wake of this.#pings.values()) wake();
    this.#pings.clear();
  }

  #arm(id: number, pending: PendingCall): void {
    pending.timer = setTimeout(() => {
      if (this.#calls.get(id) !== pending) return;
      this.#calls.delete(id);
      pending.reject(
        new SandboxTimeoutError(
          `Sandboxed filter "${this.#spec.filterName}" (module ${this.#spec.module}) did not answer within ${pending.timeoutMs} ms`,
        ),
      );
      this.host.timedOut(this);
    }, pending.timeoutMs);
  }

  #postCall(message: ReceiveMessage | SendMessage): void {
    try {
      this.#worker.postMessage(message);
    } catch (error) {
      if (!(error instanceof DOMException && error.name === "DataCloneError")) throw error;
      // Metadata may hold values other filters keep in process (functions, sockets):
      // the sandbox gets the entries that can be copied.
      if (message.meta === undefined) throw error;
      message.meta = message.meta.filter(([, value]) => cloneable(value));
      this.#worker.postMessage(message);
    }
  }

  #post(message: HostMessage): void {
    this.#worker.postMessage(message);
  }

  #receive(message: WorkerMessage): void {
    switch (message.t) {
      case "done": {
        const pending = this.#calls.get(message.id);
        if (pending === undefined) return;
        this.#calls.delete(message.id);
        clearTimeout(pending.timer);
        pending.resolve(message);
        return;
      }
      case "failed": {
        const pending = this.#calls.get(message.id);
        if (pending === undefined) return;
        this.#calls.delete(message.id);
        clearTimeout(pending.timer);
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
        clearTimeout(pending.timer);
        work = pending.stream.body({ maxBytes: request.maxBytes }).finally(() => {
          if (this.#calls.get(request.call) === pending) this.#arm(request.call, pending);
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

function cloneable(value: unknown): boolean {
  try {
    structuredClone(value);
    return true;
  } catch {
    return false;
  }
}
