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

/**
 * The media types Deno 2.9 reads a remote module as TypeScript by (checked against
 * Deno 2.9.6: each one imports `export const x: number = 1` served as `/f.ts`). Deno also
 * goes by the URL's extension when a server sends no content type, `text/plain` or
 * `application/octet-stream`; anything else it reads as JavaScript.
 */
export const TYPESCRIPT_MEDIA_TYPES: readonly string[] = [
  "application/typescript",
  "text/typescript",
  "application/x-typescript",
  "video/mp2t",
  "video/vnd.dlna.mpeg-tts",
];

/** The types Deno leaves to the URL's extension. */
const BY_EXTENSION = ["text/plain", "application/octet-stream"];
const TYPESCRIPT_PATH = /\.(?:[mc]?ts|tsx)$/i;
const HEADERS_TIMEOUT_MS = 5_000;

/**
 * Explains a failed import of a remote TypeScript module by its content type: a server
 * that sends `.ts` as, say, `text/vnd.trolltech.linguist` (Python's `http.server` on
 * Debian) makes Deno read it as JavaScript, which fails on the first type annotation
 * (or, in a Worker, refuse it as an "Unknown module"). Fetches the module's headers to
 * see what the server sent; asks for no permission (an interactive run is never
 * prompted): without `--allow-net` for the host it says what to look at instead.
 *
 * @param url The module URL as configured.
 * @param reason Why the import failed, as worded, e.g. `syntax error: Missing initializer … at <url>:1:14`.
 * @returns The cause to report instead, or undefined when the URL is not a remote
 * TypeScript module or its content type is one Deno reads as TypeScript.
 */
export async function contentTypeProblem(
  url: string,
  reason: string,
): Promise<string | undefined> {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return undefined;
  }
  if (parsed.protocol !== "http:" && parsed.protocol !== "https:") return undefined;
  if (!TYPESCRIPT_PATH.test(parsed.pathname)) return undefined;
  const extension = parsed.pathname.slice(parsed.pathname.lastIndexOf("."));
  const working = `the content types Deno reads as TypeScript are ${
    TYPESCRIPT_MEDIA_TYPES.join(", ")
  }; with ${BY_EXTENSION.join(", ")} or none it goes by the ${extension} extension`;
  const state = await Deno.permissions.query({ name: "net", host: parsed.host });
  if (state.state !== "granted") {
    return `${reason}\nIf the server sends this ${extension} module with another content ` +
      `type, Deno does not read it as TypeScript (${working}); Mosaic could not look ` +
      `at the content type: run it with --allow-net=${parsed.host} to let it`;
  }
  let sent: string | null;
  try {
    const response = await fetch(url, {
      redirect: "follow",
      signal: AbortSignal.timeout(HEADERS_TIMEOUT_MS),
    });
    await response.body?.cancel();
    if (!response.ok) return undefined;
    sent = response.headers.get("content-type");
  } catch {
    return undefined;
  }
  const essence = sent === null ? "" : sent.split(";")[0].trim().toLowerCase();
  if (
    essence === "" || TYPESCRIPT_MEDIA_TYPES.includes(essence) || BY_EXTENSION.includes(essence) ||
    (essence === "text/tsx" && /\.tsx$/i.test(parsed.pathname))
  ) {
    return undefined;
  }
  const detail = firstLine(
    reason.replace(/^(?:syntax error|the module threw while it was evaluated): /, ""),
  );
  return `the server sent this ${extension} module with Content-Type: ${sent}, which Deno ` +
    `does not read as TypeScript, so it failed (${detail}); ` +
    `serve it as application/typescript (${working})`;
}

/** A syntax error in one line: its first line, and where it is when that comes later. */
function firstLine(text: string): string {
  const lines = text.split("\n");
  if (/ at \S+:\d+:\d+$/.test(lines[0])) return lines[0];
  const at = lines.find((line) => /^\s*at \S+:\d+:\d+$/.test(line));
  return at === undefined ? lines[0] : `${lines[0]} ${at.trim()}`;
}
