/**
 * The Worker runtime's transport: one sandbox Worker seen from the host. Its messages are
 * `postMessage` batches of the supervisor's protocol; everything else (calls, deadlines,
 * pings, restarts) is the supervisor's.
 *
 * @module
 */

import { SandboxError, SandboxTimeoutError } from "../supervisor/errors.ts";
import { FilterPeerBase, type PeerOwner } from "../supervisor/peer.ts";
import type { GuestMessage, HostMessage } from "../supervisor/protocol.ts";
import { sandboxEntryUrl } from "./entry.ts";

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

/** A Worker running one sandboxed filter module. */
export class WorkerPeer extends FilterPeerBase {
  #spec: SandboxWorkerSpec;
  #worker: Worker;
  #gone = Promise.withResolvers<void>();
  #terminated = false;

  /**
   * Starts the Worker; it imports the module at once.
   *
   * @throws {Error} When Deno refuses the Worker, e.g. for permissions the process lacks.
   */
  constructor(spec: SandboxWorkerSpec, generation: number, host: PeerOwner) {
    super(generation, host);
    this.#spec = spec;
    this.#worker = new Worker(sandboxEntryUrl(spec.importUrl, spec.exportName), {
      type: "module",
      name: `mosaic sandbox ${spec.filterName}`,
      deno: { permissions: spec.permissions },
    });
    this.#worker.onmessage = (event: MessageEvent<GuestMessage[]>) => {
      for (const message of event.data) this.receive(message);
    };
    this.#worker.onerror = (event) => {
      // Unhandled, a Worker's error would end the whole process.
      event.preventDefault();
      this.#failed(event.message);
    };
    this.#worker.onmessageerror = () => this.#failed("a message could not be deserialized");
  }

  /** `Worker`. */
  get label(): string {
    return "Worker";
  }

  /** Resolves once the Worker was terminated. */
  get gone(): Promise<void> {
    return this.#gone.promise;
  }

  /** Lets the factory's `destroy()` and the streams' `onDestroy` run, then terminates. */
  async close(timeoutMs: number): Promise<void> {
    await this.closeHandshake(timeoutMs);
    this.kill(new SandboxError(`The sandbox Worker of module ${this.#spec.module} was closed`));
  }

  /**
   * Terminates the Worker and fails its calls with `reason`. A Worker spinning in a loop
   * is not stopped by this (Deno cannot interrupt it); it is only cut off.
   */
  kill(reason: Error): void {
    this.end(reason);
    if (this.#terminated) return;
    this.#terminated = true;
    this.#worker.terminate();
    this.#gone.resolve();
  }

  /** The timeout of a call, naming the filter and its module. */
  protected timeoutError(timeoutMs: number): SandboxTimeoutError {
    return new SandboxTimeoutError(
      `Sandboxed filter "${this.#spec.filterName}" (module ${this.#spec.module}) did not answer within ${timeoutMs} ms`,
    );
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
    const error = new SandboxError(message);
    // Before "init" the module failed to load: `loaded()` rejects with the message.
    this.endedByItself(error, `crashed (${message})`);
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
