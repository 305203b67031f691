/**
 * The error of a process sandbox that could not start, ended, was killed or closed. The
 * chain applies the filter's `failure_mode` to it like to any filter error. (A timeout
 * is the Worker sandbox's `SandboxTimeoutError`, and an error the filter threw in the
 * child is re-raised as a `SandboxedFilterError` with the filter's own name, as for
 * Workers.)
 *
 * @module
 */

/** A sandbox process could not start, ended, was killed or was closed. */
export class SandboxProcessError extends Error {
  /** Makes the error. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "SandboxProcessError";
  }
}
