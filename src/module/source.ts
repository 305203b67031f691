/**
 * Reads a module's bytes, for its integrity pin and its version query. A `file:` module
 * is read from disk (the same `--allow-read` its import needs). An `http:`/`https:`
 * module is fetched only when it has an integrity pin: that fetch needs
 * `--allow-net=<host:port>` besides the import's `--allow-import=<host:port>`, and
 * `main.ts check` prints both.
 *
 * @module
 */

import { fromFileUrl } from "./file_url.ts";
import { deniedPermissionFlag, deniedReason } from "./errors.ts";

/** How long fetching a remote module's bytes may take. */
const FETCH_TIMEOUT_MS = 30_000;

/** The module's bytes could not be read; the message is the cause, ready for a load error. */
export class ModuleSourceError extends Error {
  /** Makes the error. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "ModuleSourceError";
  }
}

/**
 * Reads the bytes of the module at `url`.
 *
 * @param url A `file:`, `http:` or `https:` URL.
 * @returns The bytes exactly as stored or served.
 * @throws {ModuleSourceError} When the file is missing or unreadable, the host is
 * unreachable, the server answers anything but 2xx, or Deno denies the read or fetch
 * (the message then names the flag to add).
 */
export async function readModuleSource(url: string): Promise<Uint8Array<ArrayBuffer>> {
  return url.startsWith("file:") ? await readFile(url) : await fetchRemote(url);
}

async function readFile(url: string): Promise<Uint8Array<ArrayBuffer>> {
  const path = fromFileUrl(url);
  try {
    return await Deno.readFile(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      throw new ModuleSourceError(`no such file ${path}`, { cause: error });
    }
    throw new ModuleSourceError(permissionAware(error, `cannot read ${path}`), { cause: error });
  }
}

async function fetchRemote(url: string): Promise<Uint8Array<ArrayBuffer>> {
  let response: Response;
  try {
    response = await fetch(url, {
      redirect: "follow",
      signal: AbortSignal.timeout(FETCH_TIMEOUT_MS),
    });
  } catch (error) {
    const denied = permissionAware(error, "");
    if (denied !== "") throw new ModuleSourceError(denied, { cause: error });
    const detail = error instanceof Error && error.cause instanceof Error
      ? error.cause.message
      : error instanceof Error
      ? error.message
      : String(error);
    throw new ModuleSourceError(`the URL is unreachable (${detail})`, { cause: error });
  }
  if (!response.ok) {
    await response.body?.cancel();
    throw new ModuleSourceError(
      `the server answered HTTP ${response.status} ${response.statusText}`.trimEnd(),
    );
  }
  return new Uint8Array(await response.arrayBuffer());
}

/** Names the flag when Deno denied the operation; else `fallback` with the error's message. */
function permissionAware(error: unknown, fallback: string): string {
  const message = error instanceof Error ? error.message : String(error);
  const flag = deniedPermissionFlag(message);
  if (flag !== undefined) return deniedReason(message, flag);
  return fallback === "" ? "" : `${fallback}: ${message}`;
}
