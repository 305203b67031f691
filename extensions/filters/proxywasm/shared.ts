/**
 * Process-wide state of proxy-wasm: shared data (per VM id, with CAS), shared queues and
 * metrics. Every plugin and instance of this process sees the same maps, as the VMs of one
 * Envoy worker do.
 *
 * @module
 */

import { Result } from "./abi.ts";

interface SharedValue {
  value: Uint8Array;
  cas: number;
}

const sharedData = new Map<string, Map<string, SharedValue>>();
let casCounter = 0;

/** Reads shared data; undefined when the key is not set. */
export function getSharedData(vmId: string, key: string): SharedValue | undefined {
  return sharedData.get(vmId)?.get(key);
}

/** Writes shared data; a non-zero `cas` must match the current value's. */
export function setSharedData(vmId: string, key: string, value: Uint8Array, cas: number): number {
  let map = sharedData.get(vmId);
  if (map === undefined) sharedData.set(vmId, map = new Map());
  const current = map.get(key);
  if (cas !== 0 && current !== undefined && current.cas !== cas) return Result.CasMismatch;
  map.set(key, { value: value.slice(), cas: ++casCounter });
  return Result.Ok;
}

/** A shared queue and who is told when data arrives. */
interface Queue {
  vmId: string;
  name: string;
  items: Uint8Array[];
  onReady: (token: number) => void;
}

const queues = new Map<number, Queue>();
let queueTokens = 0;

/** Registers (or re-registers) queue `name` of `vmId`; `onReady` is told of new items. */
export function registerQueue(
  vmId: string,
  name: string,
  onReady: (token: number) => void,
): number {
  for (const [token, queue] of queues) {
    if (queue.vmId === vmId && queue.name === name) {
      queue.onReady = onReady;
      return token;
    }
  }
  const token = ++queueTokens;
  queues.set(token, { vmId, name, items: [], onReady });
  return token;
}

/** The token of queue `name` of `vmId`, if registered. */
export function resolveQueue(vmId: string, name: string): number | undefined {
  for (const [token, queue] of queues) {
    if (queue.vmId === vmId && queue.name === name) return token;
  }
  return undefined;
}

/** Appends to a queue and tells its owner, after the current call returns. */
export function enqueue(token: number, data: Uint8Array): number {
  const queue = queues.get(token);
  if (queue === undefined) return Result.NotFound;
  queue.items.push(data.slice());
  queueMicrotask(() => queue.onReady(token));
  return Result.Ok;
}

/** Takes the oldest item of a queue. */
export function dequeue(token: number): Uint8Array | number {
  const queue = queues.get(token);
  if (queue === undefined) return Result.NotFound;
  return queue.items.shift() ?? Result.Empty;
}

/** A metric defined by a guest. */
export interface WasmMetric {
  /** `counter`, `gauge` or `histogram`. */
  readonly type: "counter" | "gauge" | "histogram";
  /** The name the guest gave. */
  readonly name: string;
  /** The current value (the last recorded value of a histogram). */
  value: bigint;
}

const METRIC_TYPES = ["counter", "gauge", "histogram"] as const;
const metrics: WasmMetric[] = [];
const metricIds = new Map<string, number>();

/** Defines a metric (the same type and name give the same id). */
export function defineMetric(type: number, name: string): number | undefined {
  const kind = METRIC_TYPES[type];
  if (kind === undefined) return undefined;
  const key = `${kind}:${name}`;
  let id = metricIds.get(key);
  if (id === undefined) {
    id = metrics.push({ type: kind, name, value: 0n });
    metricIds.set(key, id);
  }
  return id;
}

/** The metric with `id`, if defined. */
export function metricById(id: number): WasmMetric | undefined {
  return metrics[id - 1];
}

/** Every metric guests defined in this process, for inspection. */
export function wasmMetrics(): readonly WasmMetric[] {
  return metrics;
}
