/**
 * Errors of the router.
 *
 * @module
 */

/**
 * A router config that the router cannot build: a regular expression that does not
 * compile, a header name that is not a valid token, a domain claimed twice. Raised
 * once, when the router is built at config load, never per request.
 */
export class RouterConfigError extends Error {
  /** Makes the error. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "RouterConfigError";
  }
}
