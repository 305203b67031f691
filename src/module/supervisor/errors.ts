/**
 * The errors of an out-of-process filter, the same for every runtime (Worker, child
 * process). The chain applies the filter's `failure_mode` to each of them and logs
 * `name: message`.
 *
 * - {@linkcode SandboxedFilterError}: the filter threw inside its sandbox; re-raised with
 *   the filter's own error name.
 * - {@linkcode SandboxTimeoutError}: a call did not answer within the filter's timeout.
 * - {@linkcode SandboxError}: the sandbox could not start, ended, crashed, was replaced
 *   or was closed.
 *
 * @module
 */

import type { RemoteError } from "./protocol.ts";

/**
 * An error thrown by the filter inside its sandbox, re-raised on the host with the same
 * name and message: a `NotCapable` in the sandbox is a `NotCapable` in the log.
 */
export class SandboxedFilterError extends Error {
  /** The stack as it was in the sandbox. */
  readonly remoteStack: string | undefined;

  /** Re-raises `remote`. */
  constructor(remote: RemoteError) {
    // Deno's advice to "run again with the --allow-… flag" is wrong for a sandbox: its
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

/** A sandbox (Worker or process) could not start, ended, crashed, was replaced or closed. */
export class SandboxError extends Error {
  /** Makes the error. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "SandboxError";
  }
}
