/**
 * The plugins as a worker sees them: every call is posted to the main thread, where the
 * one {@linkcode PluginManager} runs them, and answered by id.
 *
 * @module
 */

import type { PluginCaller, PluginRequest, PluginResponse } from "../filter/api.ts";
import { threadCounters } from "./counters.ts";
import { type ErrorData, errorFrom, type FromWorker } from "./protocol.ts";

/** Options of {@linkcode RemotePluginCaller}. */
export interface RemotePluginCallerOptions {
  /**
   * The deadline of a call that gives no `timeoutMs` (the main thread's manager applies
   * its own as well).
   *
   * @default {1000}
   */
  defaultTimeoutMs?: number;
  /**
   * Added to a call's deadline before the worker gives up on the answer, so that the
   * main thread's own timeout, with its clearer message, normally comes first.
   *
   * @default {1000}
   */
  graceMs?: number;
}

interface Pending {
  resolve(response: PluginResponse): void;
  reject(error: Error): void;
  timer: ReturnType<typeof setTimeout>;
}

/** A {@linkcode PluginCaller} that forwards calls to the main thread over `postMessage`. */
export class RemotePluginCaller implements PluginCaller {
  readonly #post: (message: FromWorker) => void;
  readonly #pending = new Map<number, Pending>();
  readonly #defaultTimeoutMs: number;
  readonly #graceMs: number;
  #nextId = 1;

  /**
   * Creates the caller.
   *
   * @param post Posts a message to the main thread.
   * @param options Deadlines.
   */
  constructor(post: (message: FromWorker) => void, options: RemotePluginCallerOptions = {}) {
    this.#post = post;
    this.#defaultTimeoutMs = options.defaultTimeoutMs ?? 1000;
    this.#graceMs = options.graceMs ?? 1000;
  }

  /**
   * Calls plugin `name` in the main thread.
   *
   * @throws {Error} what the plugin manager threw (with its name), or a timeout when no
   * answer came within the call's deadline plus the grace.
   */
  call(
    name: string,
    request: PluginRequest,
    options?: { timeoutMs?: number },
  ): Promise<PluginResponse> {
    const id = this.#nextId++;
    const timeoutMs = options?.timeoutMs;
    const deadline = (timeoutMs ?? this.#defaultTimeoutMs) + this.#graceMs;
    threadCounters.add("plugin_calls");
    return new Promise<PluginResponse>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        threadCounters.add("plugin_call_errors");
        reject(new Error(`Plugin "${name}" did not answer this worker within ${deadline} ms`));
      }, deadline);
      this.#pending.set(id, { resolve, reject, timer });
      this.#post({ type: "plugin_call", id, name, request, timeoutMs });
    });
  }

  /** Settles the call `id` with the main thread's answer. */
  answer(id: number, response: PluginResponse | undefined, error: ErrorData | undefined): void {
    const pending = this.#pending.get(id);
    if (pending === undefined) return; // It timed out already.
    this.#pending.delete(id);
    clearTimeout(pending.timer);
    if (error !== undefined || response === undefined) {
      threadCounters.add("plugin_call_errors");
      pending.reject(errorFrom(error ?? { name: "Error", message: "No answer" }));
    } else pending.resolve(response);
  }
}
