/**
 * One stream's filter instances and the rules that run them: phase order, statuses,
 * failure modes, and `onDestroy` exactly once. The proxy lifecycle calls
 * {@linkcode runReceivers} and {@linkcode runSenders}; both return a plain status when
 * every filter answered synchronously, so the common case costs no `await`.
 *
 * @module
 */

import type {
  FilterChain,
  FilterLogger,
  FilterStatus,
  ReceivePhase,
  ReceiverFilter,
  RequestStream,
  RespondInit,
  ResponseStream,
  SenderFilter,
  StreamFilterFactory,
} from "./api.ts";
import type { FilterStats } from "../stats/scopes.ts";

/** One `stream_filters` entry, made once per config load. */
export interface FilterEntry {
  /** The filter's name (`name`, else `type`). */
  readonly name: string;
  /** The config the filter was declared with (what its `parseConfig` made of it, if any). */
  readonly config: unknown;
  /**
   * `per_filter_config` values naming this filter → what its `parseConfig` made of them
   * at load; absent when the filter has no parser.
   */
  readonly overrides?: ReadonlyMap<unknown, unknown>;
  /** What a failure of this filter does to the request. */
  readonly failureMode: "open" | "closed";
  /** The factory made from the config. */
  readonly factory: StreamFilterFactory;
  /** The filter's logger. */
  readonly logger: FilterLogger;
  /** The filter's stats (calls, stops, responds, errors, time), when counted. */
  readonly stats?: FilterStats;
}

/** What the running filter's stream must offer the chain. */
export interface ChainStream {
  /** The entry of the filter now running; read by `logger` and `config`. */
  current: FilterEntry | undefined;
  /** True once a local response was set. */
  readonly responded: boolean;
  /** Sets a local response. */
  respond(status: number, init?: RespondInit): void;
}

interface AttachedReceiver {
  readonly filter: ReceiverFilter;
  readonly phase: ReceivePhase;
  readonly entry: FilterEntry;
}

interface AttachedSender {
  readonly filter: SenderFilter;
  readonly entry: FilterEntry;
}

type Destroyable = { onDestroy?(): void };

/** The filters of one stream, created by every factory of the listener. */
export class StreamFilters implements FilterChain {
  /** Receivers in config order, tagged with their phase. */
  readonly receivers: AttachedReceiver[] = [];
  /** Senders in config order. */
  readonly senders: AttachedSender[] = [];
  /**
   * The index of the receiver that ended the last {@linkcode runReceivers} call with a
   * status other than `continue`; -1 when the phase ran to its end. Set by every run, read
   * right after one: where a phase resumes after `rematch_route`/`rechoose_host` is the
   * caller's own state, passed back as `from`, never left here for a later phase.
   */
  endedAt = -1;
  #instances: Destroyable[] = [];
  #adding: FilterEntry | undefined;
  #destroyed = false;

  /** Creates the instances of every entry, in order. */
  constructor(entries: readonly FilterEntry[]) {
    for (let i = 0; i < entries.length; i++) {
      this.#adding = entries[i];
      entries[i].factory.createFilterChain(this);
    }
    this.#adding = undefined;
  }

  /** Adds a receiver filter to a phase (called by factories). */
  addReceiver(filter: ReceiverFilter, phase: ReceivePhase): void {
    const entry = this.#entryForAdd();
    if (phase !== "before_route" && phase !== "after_route" && phase !== "after_choose_host") {
      throw new Error(`Filter "${entry.name}" added a receiver for unknown phase "${phase}"`);
    }
    this.receivers.push({ filter, phase, entry });
    this.#track(filter);
  }

  /** Adds a sender filter (called by factories). */
  addSender(filter: SenderFilter): void {
    this.senders.push({ filter, entry: this.#entryForAdd() });
    this.#track(filter);
  }

  /** Calls `onDestroy` once on every distinct instance; later calls do nothing. */
  destroy(): void {
    if (this.#destroyed) return;
    this.#destroyed = true;
    for (const instance of this.#instances) {
      try {
        instance.onDestroy?.();
      } catch (error) {
        this.#ownerOf(instance)?.logger.error(`onDestroy threw: ${error}`);
      }
    }
  }

  #entryForAdd(): FilterEntry {
    if (this.#adding === undefined) {
      throw new Error("Filters can only be added while createFilterChain runs");
    }
    return this.#adding;
  }

  #track(instance: Destroyable): void {
    if (typeof instance.onDestroy === "function" && !this.#instances.includes(instance)) {
      this.#instances.push(instance);
    }
  }

  #ownerOf(instance: Destroyable): FilterEntry | undefined {
    return this.receivers.find((r) => r.filter === instance)?.entry ??
      this.senders.find((s) => s.filter === instance)?.entry;
  }
}

/**
 * Runs the receivers of `phase` from index `from` (0: the whole phase). Returns `continue`
 * when the phase ran to its end, `stop` when a filter stopped it (a response is then set),
 * or `rematch_route`/`rechoose_host`; `filters.endedAt` is then the asking filter's index,
 * so the caller resumes the phase with `from = filters.endedAt + 1`.
 */
export function runReceivers(
  filters: StreamFilters,
  phase: ReceivePhase,
  stream: RequestStream & ChainStream,
  from = 0,
): FilterStatus | Promise<FilterStatus> {
  const list = filters.receivers;
  filters.endedAt = -1;
  for (let i = from; i < list.length; i++) {
    const attached = list[i];
    if (attached.phase !== phase) continue;
    stream.current = attached.entry;
    const respondedBefore = stream.responded;
    const startedAt = attached.entry.stats === undefined ? 0 : performance.now();
    let result: FilterStatus | Promise<FilterStatus>;
    try {
      result = attached.filter.onReceive(stream);
    } catch (error) {
      result = failFilter(stream, attached.entry, error);
    }
    if (typeof result !== "string") {
      return finishReceiversAsync(filters, phase, stream, i, result, startedAt, respondedBefore);
    }
    const status = settleReceiver(stream, attached.entry, phase, result);
    if (attached.entry.stats !== undefined) {
      count(attached.entry.stats, startedAt, respondedBefore, stream.responded, status);
    }
    if (status !== "continue") {
      filters.endedAt = i;
      return status;
    }
  }
  return "continue";
}

async function finishReceiversAsync(
  filters: StreamFilters,
  phase: ReceivePhase,
  stream: RequestStream & ChainStream,
  index: number,
  pending: Promise<FilterStatus>,
  startedAt: number,
  respondedBefore: boolean,
): Promise<FilterStatus> {
  const entry = filters.receivers[index].entry;
  let result: FilterStatus;
  try {
    result = await pending;
  } catch (error) {
    result = failFilter(stream, entry, error);
  }
  const status = settleReceiver(stream, entry, phase, result);
  if (entry.stats !== undefined) {
    count(entry.stats, startedAt, respondedBefore, stream.responded, status);
  }
  if (status !== "continue") {
    filters.endedAt = index;
    return status;
  }
  return await runReceivers(filters, phase, stream, index + 1);
}

function settleReceiver(
  stream: ChainStream,
  entry: FilterEntry,
  phase: ReceivePhase,
  status: FilterStatus,
): FilterStatus {
  switch (status) {
    case "continue":
      return status;
    case "stop":
      if (!stream.responded) {
        entry.logger.error(
          `Filter "${entry.name}" returned "stop" in ${phase} without respond(); answering 500`,
        );
        stream.respond(500, { body: "filter stopped the request without a response\n" });
      }
      return status;
    case "rematch_route":
      if (phase === "after_route") return status;
      break;
    case "rechoose_host":
      if (phase === "after_choose_host") return status;
      break;
  }
  return failFilter(
    stream,
    entry,
    new Error(`returned ${JSON.stringify(status)}, which is not allowed in ${phase}`),
  );
}

/**
 * Applies a filter's failure mode to an error it raised: `open` logs and continues,
 * `closed` logs and answers 500.
 */
export function failFilter(stream: ChainStream, entry: FilterEntry, error: unknown): FilterStatus {
  if (entry.stats !== undefined) entry.stats.errors++;
  const reason = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  if (entry.failureMode === "open") {
    entry.logger.warn(
      `Filter "${entry.name}" failed (${reason}); failure_mode open lets the request continue`,
    );
    return "continue";
  }
  entry.logger.error(`Filter "${entry.name}" failed (${reason}); answering 500`);
  stream.respond(500, { body: "filter failed\n" });
  return "stop";
}

/** What a sender run needs of the response side. */
export interface SenderStream extends ResponseStream {
  /** The entry of the filter now running. */
  current: FilterEntry | undefined;
  /** Replaces the response with a local 500 (a closed-mode sender failure). */
  failWith500(): void;
}

/** Runs every sender in order; `stop` skips the later ones. */
export function runSenders(
  filters: StreamFilters,
  stream: SenderStream,
  from = 0,
): void | Promise<void> {
  const list = filters.senders;
  for (let i = from; i < list.length; i++) {
    const attached = list[i];
    stream.current = attached.entry;
    const startedAt = attached.entry.stats === undefined ? 0 : performance.now();
    let result: FilterStatus | Promise<FilterStatus>;
    try {
      result = attached.filter.append(stream);
    } catch (error) {
      result = failSender(stream, attached.entry, error);
    }
    if (typeof result !== "string") {
      return finishSendersAsync(filters, stream, i, result, startedAt);
    }
    if (attached.entry.stats !== undefined) {
      count(attached.entry.stats, startedAt, false, false, result);
    }
    if (result === "stop") return;
  }
}

async function finishSendersAsync(
  filters: StreamFilters,
  stream: SenderStream,
  index: number,
  pending: Promise<FilterStatus>,
  startedAt: number,
): Promise<void> {
  const entry = filters.senders[index].entry;
  let result: FilterStatus;
  try {
    result = await pending;
  } catch (error) {
    result = failSender(stream, entry, error);
  }
  if (entry.stats !== undefined) count(entry.stats, startedAt, false, false, result);
  if (result === "stop") return;
  await runSenders(filters, stream, index + 1);
}

function failSender(stream: SenderStream, entry: FilterEntry, error: unknown): FilterStatus {
  if (entry.stats !== undefined) entry.stats.errors++;
  const reason = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  if (entry.failureMode === "open") {
    entry.logger.warn(
      `Filter "${entry.name}" failed on the response (${reason}); failure_mode open sends it on`,
    );
    return "continue";
  }
  entry.logger.error(`Filter "${entry.name}" failed on the response (${reason}); answering 500`);
  stream.failWith500();
  return "stop";
}

/** Counts one call of a filter: its time, a `stop`, a local response it set. */
function count(
  stats: FilterStats,
  startedAt: number,
  respondedBefore: boolean,
  respondedAfter: boolean,
  status: FilterStatus,
): void {
  stats.calls++;
  stats.time_us += (performance.now() - startedAt) * 1000;
  if (status === "stop") stats.stops++;
  if (respondedAfter && !respondedBefore) stats.responds++;
}
