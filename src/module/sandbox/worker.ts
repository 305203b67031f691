/**
 * One sandbox Worker seen from the host: starts it, tracks its calls with their
 * timeouts, answers its body and plugin requests, and ends it.
 *
 * @module
 */

import type { FilterLogger, PluginCaller } from "../../filter/api.ts";
import { FilterPeerBase } from "../proxy/peer.ts";
import { sandboxEntryUrl } from "./entry.ts";
import { SandboxTimeoutError, SandboxWorkerError } from "./errors.ts";
import type { HostMessage, WorkerMessage } from "./protocol.ts";

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

/** A Worker running one sandboxed filter module. */
export class SandboxWorker extends FilterPeerBase {
  /** Receives logs, timeouts and crashes. */
  host: SandboxWorkerHost;
  #spec: SandboxWorkerSpec;
  #worker: Worker;

  /**
   * Starts the Worker; it imports the module at once.
   *
   * @throws {Error} When Deno refuses the Worker, e.g. for permissions the process lacks.
   */
  constructor(spec: SandboxWorkerSpec, generation: number, host: SandboxWorkerHost) {
    super(generation, "sweep");
    this.#spec = spec;
    this.host = host;
    this.#worker = new Worker(sandboxEntryUrl(spec.importUrl, spec.exportName), {
      type: "module",
      name: `mosaic sandbox ${spec.filterName}`,
      deno: { permissions: spec.permissions },
    });
    this.#worker.onmessage = (event: MessageEvent<WorkerMessage[]>) => {
      for (const message of event.data) this.receive(message);
    };
    this.#worker.onerror = (event) => {
      // Unhandled, a Worker's error would end the whole process.
      event.preventDefault();
      this.#failed(event.message);
    };
    this.#worker.onmessageerror = () => this.#failed("a message could not be deserialized");
  }

  /** Lets the factory's `destroy()` and the streams' `onDestroy` run, then terminates. */
  async close(timeoutMs: number): Promise<void> {
    await this.closeHandshake(timeoutMs);
    this.terminate(new SandboxWorkerError(`The sandbox of module ${this.#spec.module} was closed`));
  }

  /**
   * Terminates the Worker and fails its calls with `reason`. A Worker spinning in a loop
   * is not stopped by this (Deno cannot interrupt it); it is only cut off.
   */
  terminate(reason: Error): void {
    if (this.end(reason)) this.#worker.terminate();
  }

  /** The timeout of a call, naming the filter and its module. */
  protected timeoutError(timeoutMs: number): Error {
    return new SandboxTimeoutError(
      `Sandboxed filter "${this.#spec.filterName}" (module ${this.#spec.module}) did not answer within ${timeoutMs} ms`,
    );
  }

  /** Tells the factory, which pings the Worker to see whether it is stuck. */
  protected timedOut(): void {
    this.host.timedOut(this);
  }

  /** Posts a batch in one `postMessage`: waking the Worker's thread costs more than copying. */
  protected write(batch: HostMessage[]): void {
    try {
      this.#worker.postMessage(batch);
    } catch (error) {
      if (!isDataCloneError(error)) throw error;
      for (const message of batch) this.#postAlone(message);
    }
  }

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
        this.failCall(message.id, error as Error);
      }
    }
  }

  #failed(message: string): void {
    const error = new SandboxWorkerError(message);
    if (!this.initialized) {
      // Before "loaded" or between "loaded" and "init": the module failed to load.
      this.terminate(error);
      return;
    }
    this.host.crashed(this, message);
  }
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
