/**
 * Small timer helpers that always clean up after themselves.
 *
 * @module
 */

/** A promise that resolves to `undefined` after `ms`, unless cancelled. */
export interface Delay {
  /** Resolves after the delay, or at once when cancelled. */
  promise: Promise<undefined>;
  /** Clears the timer and resolves the promise. */
  cancel(): void;
}

/**
 * Starts a delay that can be cancelled, so no timer outlives the work that set it.
 *
 * @param ms Milliseconds.
 * @returns The delay.
 */
export function delay(ms: number): Delay {
  let id: ReturnType<typeof setTimeout> | undefined;
  let done!: (value: undefined) => void;
  const promise = new Promise<undefined>((resolve) => {
    done = resolve;
    id = setTimeout(() => resolve(undefined), ms);
  });
  return {
    promise,
    cancel() {
      clearTimeout(id);
      done(undefined);
    },
  };
}

/**
 * Waits for `promise`, at most `ms`.
 *
 * @returns The promise's value, or `undefined` when the time ran out.
 */
export async function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T | undefined> {
  const d = delay(ms);
  try {
    return await Promise.race([promise, d.promise]);
  } finally {
    d.cancel();
  }
}
