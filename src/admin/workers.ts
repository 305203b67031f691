/**
 * The workers endpoint: every worker's state (running, restarting, how often it was
 * replaced and why it died last) and its counters, with the counters summed over the
 * workers, so the admin API answers for the whole proxy and not for one thread.
 *
 * @module
 */

import type { WorkerReport } from "../workers/pool.ts";
import { threadCounters } from "../workers/counters.ts";
import type { AdminHandler } from "./server.ts";

/** The path Mosaic serves the workers endpoint at. */
export const WORKERS_ADMIN_PATH = "/api/v1/workers";

/** What the endpoint needs: the worker pool, or the single runtime of `workers: 1`. */
export interface WorkersSource {
  /** Every worker's status and counters, and their sum. */
  report(): Promise<WorkerReport>;
}

/**
 * The source of `workers: 1`: one runtime, in the main thread, counting in it.
 *
 * @returns A source that reports worker 0.
 */
export function singleWorker(): WorkersSource {
  return {
    report() {
      const counters = threadCounters.snapshot();
      return Promise.resolve({
        workers: [{ index: 0, state: "running", restarts: 0, counters }],
        total: counters,
      });
    },
  };
}

/**
 * Makes the handler: `GET /api/v1/workers` answers JSON
 * `{ "workers": [{ "index", "state", "restarts", "lastExit"?, "counters"? }], "total": {} }`.
 *
 * @param source The pool, or {@linkcode singleWorker}.
 * @returns The handler.
 */
export function workersAdminHandler(source: WorkersSource): AdminHandler {
  return async () => {
    const report = await source.report();
    return new Response(JSON.stringify(report, null, 2) + "\n", {
      status: 200,
      headers: { "content-type": "application/json" },
    });
  };
}
