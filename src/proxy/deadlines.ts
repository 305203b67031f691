/**
 * Route timeouts without a timer per request. Every stream of a route with the same
 * timeout gets its deadline in insertion order, so one FIFO queue per timeout value keeps
 * them sorted, and one timer (armed for the queue's head) serves them all. A stream that
 * ends before its deadline only marks its entry; the queue drops it when it comes up, and
 * when no stream is left waiting the timer is cleared, so none outlives the streams.
 *
 * @module
 */

/** One stream's place in a {@linkcode DeadlineQueue}. */
export interface Deadline {
  /** When it expires (`Date.now()` time). */
  readonly at: number;
  /** What to abort when it expires; cleared when the stream ended in time. */
  controller: AbortController | undefined;
}

/** The streams waiting on one timeout value. */
export class DeadlineQueue {
  #entries: Deadline[] = [];
  #head = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #armedFor = 0;
  /** Streams added and not yet ended or expired. */
  #live = 0;
  readonly #reason: string;

  /** Makes the queue for timeouts of `ms` milliseconds. */
  constructor(readonly ms: number) {
    this.#reason = `route timeout of ${ms} ms`;
  }

  /** Adds a stream that started at `now`; `controller` is aborted at `now + ms`. */
  add(controller: AbortController, now: number): Deadline {
    const entry: Deadline = { at: now + this.ms, controller };
    this.#entries.push(entry);
    this.#live++;
    if (this.#timer === undefined) this.#arm(entry.at, now);
    return entry;
  }

  /** Lets go of a stream that ended before its deadline. */
  end(entry: Deadline): void {
    if (entry.controller === undefined) return;
    entry.controller = undefined;
    if (--this.#live > 0) return;
    // Nothing waits: no timer may outlive the streams (a test, a drain).
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#entries = [];
    this.#head = 0;
  }

  #arm(at: number, now: number): void {
    this.#armedFor = at;
    this.#timer = setTimeout(() => this.#expire(), Math.max(0, at - now));
  }

  #expire(): void {
    this.#timer = undefined;
    const now = Date.now();
    const entries = this.#entries;
    let head = this.#head;
    while (head < entries.length && entries[head].at <= now) {
      const controller = entries[head].controller;
      entries[head].controller = undefined;
      head++;
      if (controller !== undefined) {
        this.#live--;
        controller.abort(new DOMException(this.#reason, "TimeoutError"));
      }
    }
    // Drop what was served once it is most of the array (amortized O(1) per entry).
    if (head > 1024 && head * 2 > entries.length) {
      this.#entries = entries.slice(head);
      head = 0;
    }
    this.#head = head;
    // Streams that ended in time still hold their places: skip them when arming.
    while (
      this.#head < this.#entries.length && this.#entries[this.#head].controller === undefined
    ) {
      this.#head++;
    }
    if (this.#head < this.#entries.length) this.#arm(this.#entries[this.#head].at, now);
    else {
      this.#entries = [];
      this.#head = 0;
    }
  }

  /** Entries not yet expired or dropped (for tests). */
  get pending(): number {
    let count = 0;
    for (let i = this.#head; i < this.#entries.length; i++) {
      if (this.#entries[i].controller !== undefined) count++;
    }
    return count;
  }

  /** The deadline the timer is armed for, or undefined when none is (for tests). */
  get armedFor(): number | undefined {
    return this.#timer === undefined ? undefined : this.#armedFor;
  }
}

const queues = new Map<number, DeadlineQueue>();

/** The process's queue for timeouts of `ms` (one per distinct value). */
export function deadlineQueue(ms: number): DeadlineQueue {
  let queue = queues.get(ms);
  if (queue === undefined) {
    queue = new DeadlineQueue(ms);
    queues.set(ms, queue);
  }
  return queue;
}
