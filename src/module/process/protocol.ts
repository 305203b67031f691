/**
 * The messages of a process sandbox: the Worker sandbox's (see `../sandbox/protocol.ts`),
 * which the child's filter side speaks unchanged, plus the one a process needs because
 * its module is imported before that filter side runs.
 *
 * @module
 */

import type { RemoteError, WorkerMessage } from "../sandbox/protocol.ts";

export type { HostMessage } from "../sandbox/protocol.ts";

/** The child could not import the module; it exits after sending this. */
export interface LoadFailedMessage {
  /** The message's kind. */
  t: "load_failed";
  /** What `import()` threw. */
  error: RemoteError;
}

/** Everything the child sends. */
export type ChildMessage = WorkerMessage | LoadFailedMessage;
