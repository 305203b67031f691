/**
 * The messages between the main thread and its workers (`workers: N`). Only control
 * crosses threads: a config to build, a switch, a drain, a counter snapshot, and plugin
 * calls (the plugins run once, in the main thread). No request does.
 *
 * @module
 */

import type { PluginRequest, PluginResponse } from "../filter/api.ts";
import type { StatsSnapshot } from "../stats/snapshot.ts";
import type { LogLevel } from "../config/types.ts";

/** An error as it crosses a thread: structured clone keeps no class. */
export interface ErrorData {
  name: string;
  message: string;
}

/** Counters of one thread, by name, for the admin API to sum. */
export type CounterSnapshot = Record<string, number>;

/** What the main thread sends a worker. */
export type ToWorker =
  /** Start: build a runtime from `text` and bind every listener with `reusePort`. */
  | {
    type: "init";
    index: number;
    file: string;
    text: string;
    /** Ports that worker 0 got for listeners configured with port 0, by listener name. */
    ports: Record<string, number>;
  }
  /** Reload, phase one: build the next generation from `text`, keep it unused. */
  | { type: "prepare"; id: number; text: string }
  /** Reload, phase two: put the generation `id` in force. */
  | { type: "commit"; id: number }
  /** Reload failed in another worker: drop the generation `id`. */
  | { type: "discard"; id: number }
  /** Stop accepting, drain for up to `drainTimeoutMs`, close. */
  | { type: "shutdown"; drainTimeoutMs: number }
  /** Report this worker's counters. */
  | { type: "stats"; id: number }
  /** Log at `level` from now on (the admin API's log level update). */
  | { type: "log_level"; level: LogLevel }
  /** The answer of a plugin call the worker made. */
  | { type: "plugin_result"; id: number; response?: PluginResponse; error?: ErrorData };

/** What a worker sends the main thread. */
export type FromWorker =
  /** The runtime is up; the bound address of every listener. */
  | { type: "started"; addresses: Record<string, { hostname: string; port: number }> }
  /** An answer to `prepare`, `commit`, `discard`, `shutdown` or `stats`. */
  | {
    type: "done";
    id: number;
    error?: ErrorData;
    counters?: CounterSnapshot;
    /** The answer to `stats`: every stat of the worker (listeners, clusters, filters…). */
    stats?: StatsSnapshot;
  }
  /** A filter or certificate provider of the worker calls a plugin. */
  | {
    type: "plugin_call";
    id: number;
    name: string;
    request: PluginRequest;
    timeoutMs?: number;
  };

/** The id of the `done` that says `init` failed (a started worker says `started`). */
export const INIT_ID = 0;
/** The id of the answer to `shutdown`. */
export const SHUTDOWN_ID = -1;

/** Turns anything thrown into {@linkcode ErrorData}. */
export function errorData(error: unknown): ErrorData {
  return error instanceof Error
    ? { name: error.name, message: error.message }
    : { name: "Error", message: String(error) };
}

/** An error rebuilt on this side of the thread boundary, with its original name. */
export function errorFrom(data: ErrorData): Error {
  const error = new Error(data.message);
  error.name = data.name;
  return error;
}
