/**
 * The errors of TLS set-up.
 *
 * @module
 */

import { formatConfigMessage } from "../config/errors.ts";
import type { SourcePosition } from "../config/types.ts";

/**
 * A certificate provider could not be created or could not fetch its certificate. The
 * message reads `<file>:<line>: <path>: certificate provider "<name>" failed: <cause>`.
 */
export class CertificateProviderError extends Error {
  /** The provider's name (`tls_context.type`). */
  readonly provider: string;
  /** Where the `tls_context` is. */
  readonly position: SourcePosition;

  /**
   * Makes the error.
   *
   * @param provider The provider's name.
   * @param position Where the `tls_context` is.
   * @param problem What went wrong.
   * @param options `cause`: the provider's own error.
   */
  constructor(
    provider: string,
    position: SourcePosition,
    problem: string,
    options?: ErrorOptions,
  ) {
    super(
      formatConfigMessage(position, `certificate provider "${provider}" failed: ${problem}`),
      options,
    );
    this.name = "CertificateProviderError";
    this.provider = provider;
    this.position = position;
  }
}

/** The reason of an error, for messages: its message, or the value itself. */
export function reasonOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
