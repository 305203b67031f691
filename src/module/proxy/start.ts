/**
 * Starting a sandbox peer (Worker or child process), shared by both sandboxes: wait for
 * the module's import and the factory's creation under one deadline, and stop the peer
 * when either fails.
 *
 * @module
 */

import type { FactoryContext } from "../../filter/api.ts";
import type { InitMessage } from "../sandbox/protocol.ts";
import type { FilterPeerBase } from "./peer.ts";

/**
 * Runs `work` with a promise that rejects with `error()` after `ms`; `work` races its
 * steps against it. The timer is cleared once `work` settles.
 */
export async function withDeadline<T>(
  ms: number,
  error: () => Error,
  work: (deadline: Promise<never>) => Promise<T>,
): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(error()), ms);
  });
  try {
    return await work(deadline);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Waits for `peer` to load its module, then makes the factory in it with `config`, all
 * within `ms`. On failure `stop` ends the peer (and is awaited) before the error is
 * rethrown.
 */
export async function startPeer(
  peer: FilterPeerBase,
  config: unknown,
  context: FactoryContext,
  ms: number,
  timeoutError: () => Error,
  stop: (error: Error) => void | Promise<void>,
): Promise<void> {
  const init: InitMessage = {
    t: "init",
    config,
    name: context.name,
    listener: context.listener,
    configFile: context.configFile,
  };
  try {
    await withDeadline(ms, timeoutError, async (deadline) => {
      await Promise.race([peer.loaded(), deadline]);
      await Promise.race([peer.init(init), deadline]);
    });
  } catch (error) {
    await stop(error instanceof Error ? error : new Error(String(error)));
    throw error;
  }
}
