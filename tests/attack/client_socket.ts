/**
 * A raw-socket HTTP client for attack tests: sends bytes exactly as given (no client
 * library fixes them up), optionally in timed pieces or half-closed, and reads what comes
 * back until the peer closes or a time limit passes.
 *
 * @module
 */

const encoder = new TextEncoder();
const latin1 = (bytes: Uint8Array) => String.fromCharCode(...bytes);

/** What the client saw. */
export interface RawResult {
  /** Everything received, decoded one char per byte. */
  text: string;
  /** The peer closed the connection (EOF or reset) before the time limit. */
  closed: boolean;
  /** Milliseconds from connect to close or time limit. */
  elapsed: number;
}

/** Options of {@linkcode rawExchange}. */
export interface RawOptions {
  /** Give up reading after this long. @default {3000} */
  readMs?: number;
  /** Half-close (shutdown write) after sending. */
  halfClose?: boolean;
  /** Pause this long between pieces when `send` is a list. @default {0} */
  pauseMs?: number;
  /** Stop reading once the received text matches. */
  until?: RegExp;
}

/**
 * Connects to `address`, sends `send` (a string is sent as Latin-1; a list is sent piece
 * by piece), and collects the answer.
 *
 * @param address `host:port`.
 * @param send The bytes.
 * @param options Timing and half-close.
 * @returns What came back.
 */
export async function rawExchange(
  address: string,
  send: string | string[],
  options: RawOptions = {},
): Promise<RawResult> {
  const [hostname, port] = splitAddress(address);
  const conn = await Deno.connect({ hostname, port });
  const started = Date.now();
  const pieces = typeof send === "string" ? [send] : send;
  const reading = readAll(conn, options.readMs ?? 3000, options.until);
  try {
    for (let i = 0; i < pieces.length; i++) {
      if (i > 0 && options.pauseMs) await new Promise((r) => setTimeout(r, options.pauseMs));
      if (pieces[i] !== "") await conn.write(toLatin1(pieces[i]));
    }
    if (options.halfClose) await conn.closeWrite();
  } catch {
    // the peer closed early; what it sent is still read
  }
  const { text, closed } = await reading;
  try {
    conn.close();
  } catch {
    // closed
  }
  return { text, closed, elapsed: Date.now() - started };
}

async function readAll(
  conn: Deno.Conn,
  ms: number,
  until: RegExp | undefined,
): Promise<{ text: string; closed: boolean }> {
  let text = "";
  let closed = false;
  const timer = setTimeout(() => {
    try {
      conn.close();
    } catch {
      // closed
    }
  }, ms);
  const buffer = new Uint8Array(64 * 1024);
  try {
    for (;;) {
      const n = await conn.read(buffer);
      if (n === null) {
        closed = true;
        break;
      }
      text += latin1(buffer.subarray(0, n));
      if (until !== undefined && until.test(text)) break;
    }
  } catch (error) {
    // our timer closed it (BadResource/Interrupted), or the peer reset it
    if (error instanceof Deno.errors.ConnectionReset) closed = true;
  } finally {
    clearTimeout(timer);
  }
  return { text, closed };
}

/** The status lines in `text`, in order. */
export function statusLines(text: string): string[] {
  return [...text.matchAll(/HTTP\/1\.[01] \d{3}[^\r\n]*/g)].map((m) => m[0]);
}

/** Encodes one byte per char (chars above 0xFF are refused). */
export function toLatin1(text: string): Uint8Array {
  const out = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c > 0xff) return encoder.encode(text);
    out[i] = c;
  }
  return out;
}

function splitAddress(address: string): [string, number] {
  const colon = address.lastIndexOf(":");
  return [address.slice(0, colon), Number(address.slice(colon + 1))];
}
