/**
 * Errors a sandboxed filter's calls fail with. The chain applies the filter's
 * `failure_mode` to each of them, and logs `name: message`.
 *
 * @module
 */

import type { RemoteError } from "./protocol.ts";

/**
 * An error thrown by the filter inside its Worker, re-raised on the host with the same
 * name and message: a `NotCapable` in the Worker is a `NotCapable` in the log.
 */
export class SandboxedFilterError extends Error {
  /** The stack as it was in the Worker. */
  readonly remoteStack: string | undefined;

  /** Re-raises `remote`. */
  constructor(remote: RemoteError) {
    // Deno's advice to "run again with the --allow-… flag" is wrong for a Worker: its
    // grant comes from the filter's config.
    super(
      remote.name === "NotCapable"
        ? `${
          remote.message.replace(/, run again with the --allow-\w+ flag$/, "")
        } (not granted by the filter's sandbox.permissions)`
        : remote.message,
    );
    this.name = remote.name;
    this.remoteStack = remote.stack;
  }
}

/** A sandboxed filter did not answer a call within its timeout. */
export class SandboxTimeoutError extends Error {
  /** Makes the error. */
  constructor(message: string) {
    super(message);
    this.name = "SandboxTimeoutError";
  }
}

/** A sandbox Worker could not start, crashed, was replaced or was closed. */
export class SandboxWorkerError extends Error {
  /** Makes the error. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "SandboxWorkerError";
  }
}
