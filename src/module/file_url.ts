/**
 * `file:` URL to path, without node:url (which loads Node's compatibility layer).
 *
 * @module
 */

/**
 * The local path of a `file:` URL.
 *
 * @param url A `file:` URL string.
 * @returns The decoded path, e.g. `/srv/filters/auth.ts`.
 * @throws {TypeError} When `url` is not a `file:` URL.
 */
export function fromFileUrl(url: string): string {
  const parsed = new URL(url);
  if (parsed.protocol !== "file:") throw new TypeError(`Expected a file: URL, got ${url}`);
  return decodeURIComponent(parsed.pathname);
}
