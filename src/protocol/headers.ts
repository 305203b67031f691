/**
 * A frame's header map as the lifecycle's `Headers`, and back.
 *
 * `Headers` lowercases names, trims values and refuses control characters and
 * characters above U+00FF; a frame's map keeps names' case and may hold anything. So a
 * frame's entries become `Headers` fields where they fit exactly, the original spelling of
 * each name is kept to be restored on the wire, and entries that do not fit are carried
 * aside untouched (invisible to routes and filters, but forwarded).
 *
 * The lifecycle adds fields meant for HTTP upstreams (`host`, `x-forwarded-*`,
 * `x-request-id`, and `content-length` when a filter replaces a body); they are not
 * forwarded into a frame unless the client sent them.
 *
 * @module
 */

import type { ProtocolFrame } from "./api.ts";

/** What a frame's headers became, to be turned back into a frame's map. */
export interface FrameHeaders {
  /** The frame the headers came from. */
  readonly frame: ProtocolFrame;
  /** Lowercased name → the name as sent. */
  readonly names: Map<string, string>;
  /** Entries `Headers` cannot hold exactly, forwarded as they came. */
  readonly aside: [string, string][];
  /** For requests: the body stream handed to the lifecycle (unchanged means `frame.body`). */
  body?: ReadableStream<Uint8Array> | null;
}

/** Fields the lifecycle adds for HTTP upstreams, dropped from frames unless sent by the client. */
const ADDED_BY_PROXY = [
  "host",
  "x-forwarded-for",
  "x-forwarded-proto",
  "x-forwarded-host",
  "x-request-id",
  "x-envoy-external-address",
  // HTTP framing: set when a filter replaces a body; a frame carries its own lengths.
  "content-length",
  "transfer-encoding",
];

const ORIGINS = new WeakMap<Headers, FrameHeaders>();

/**
 * Makes the `Headers` of a frame; {@linkcode frameOf} finds the frame again from them.
 */
export function headersOfFrame(frame: ProtocolFrame): Headers {
  const headers = new Headers();
  const names = new Map<string, string>();
  const aside: [string, string][] = [];
  for (const entry of frame.headers) {
    const [name, value] = entry;
    const lower = name.toLowerCase();
    if (names.has(lower) || !fits(headers, lower, value)) {
      aside.push(entry);
      continue;
    }
    names.set(lower, name);
  }
  ORIGINS.set(headers, { frame, names, aside });
  return headers;
}

function fits(headers: Headers, lower: string, value: string): boolean {
  try {
    headers.set(lower, value);
  } catch {
    return false;
  }
  if (headers.get(lower) === value) return true;
  headers.delete(lower);
  return false;
}

/** The frame (and name spellings) a `Headers` was made from, if any. */
export function frameOf(headers: Headers): FrameHeaders | undefined {
  return ORIGINS.get(headers);
}

/** Remembers the frame a response's `Headers` came from (the upstream pool's response). */
export function rememberFrame(headers: Headers, origin: FrameHeaders): void {
  ORIGINS.set(headers, origin);
}

/**
 * The header map to encode from `headers` (as routes and filters left them), spelled as
 * the frame `origin` spelled them.
 */
export function frameHeaders(
  headers: Headers,
  origin: FrameHeaders | undefined,
): [string, string][] {
  const out: [string, string][] = [];
  const names = origin?.names;
  for (const [lower, value] of headers) {
    const name = names?.get(lower);
    if (name === undefined && ADDED_BY_PROXY.includes(lower)) continue;
    out.push([name ?? lower, value]);
  }
  if (origin !== undefined) { for (const entry of origin.aside) out.push(entry); }
  return out;
}
