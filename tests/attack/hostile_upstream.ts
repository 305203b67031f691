/**
 * A hostile HTTP/1.1 upstream: a raw `Deno.listen` server on 127.0.0.1, port 0, that
 * plays one scripted misbehaviour per connection. Every honest answer echoes the
 * request (`ok GET /path`), so a response that reaches the wrong request shows.
 *
 * Used by the pool corpus (`upstream_corpus_test.ts`) and the proxy's end-to-end pool
 * test (`tests/e2e/core/pool_test.ts`). Run on its own to try a scenario by hand:
 * `deno run --allow-net tests/attack/hostile_upstream.ts stray_response` prints the port.
 *
 * @module
 */

import { delay, type RawConn, type RawRequest, RawServer } from "../unit/upstream/_raw_server.ts";

/** The honest answer to `request`: 200 with body `ok METHOD PATH[ BODY]`. */
export function honest(request: RawRequest, body: string, extra = ""): string {
  const text = `ok ${request.method} ${request.path}${body === "" ? "" : " " + body}`;
  return `HTTP/1.1 200 OK\r\ncontent-length: ${text.length}\r\n${extra}\r\n${text}`;
}

/** A response no client asked for. */
export const STRAY = "HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nstray";

/** What a scenario does on one connection; `index` counts connections from 0. */
export type Script = (conn: RawConn, index: number, upstream: HostileUpstream) => Promise<void>;

const decoder = new TextDecoder();

/** Reads the next request and its body; null when the client closed. */
async function next(
  conn: RawConn,
  upstream: HostileUpstream,
): Promise<{ request: RawRequest; body: string } | null> {
  const request = await conn.readRequest();
  if (request === null) return null;
  const body = decoder.decode(await conn.readBodyBytes(request));
  upstream.seen.push(`${request.method} ${request.path}${body === "" ? "" : " " + body}`);
  return { request, body };
}

/** Answers requests honestly until the client closes (at most 1,000). */
async function serveHonestly(
  conn: RawConn,
  upstream: HostileUpstream,
  extra = "",
): Promise<void> {
  for (let i = 0; i < 1000; i++) {
    const got = await next(conn, upstream);
    if (got === null) return;
    await conn.write(honest(got.request, got.body, extra));
  }
}

/** Answers the first request with `head` (raw bytes), then behaves. */
function firstAnswer(head: string): Script {
  return async (conn, index, upstream) => {
    if (index > 0) return await serveHonestly(conn, upstream);
    const got = await next(conn, upstream);
    if (got === null) return;
    await conn.write(head);
    await serveHonestly(conn, upstream);
  };
}

/** The scripted misbehaviours, by name. */
export const SCRIPTS: Record<string, Script> = {
  /** Honest on every connection: the control row. */
  honest: (conn, _index, upstream) => serveHonestly(conn, upstream),

  /** Answers the first request, then 300 ms later sends a second, unsolicited response. */
  stray_response: async (conn, index, upstream) => {
    if (index > 0) return await serveHonestly(conn, upstream);
    const got = await next(conn, upstream);
    if (got === null) return;
    await conn.write(honest(got.request, got.body));
    await delay(300);
    await conn.write(STRAY);
    await serveHonestly(conn, upstream);
  },

  /** Answers the first request with a stray response glued to its end. */
  stray_glued: firstAnswer(
    "HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nfirst" + STRAY,
  ),

  /** Answers the first request, then 100 ms later sends garbage that is no response. */
  stray_garbage: async (conn, index, upstream) => {
    if (index > 0) return await serveHonestly(conn, upstream);
    const got = await next(conn, upstream);
    if (got === null) return;
    await conn.write(honest(got.request, got.body));
    await delay(100);
    await conn.write("\x00\x01 not http\r\n");
    // close soon, so that a client that took the garbage for a head fails rather than hangs
    await delay(1000);
  },

  /** Answers one request per connection as keep-alive, then closes 100 ms later. */
  close_while_idle: async (conn, _index, upstream) => {
    const got = await next(conn, upstream);
    if (got === null) return;
    await conn.write(honest(got.request, got.body));
    await delay(100);
  },

  /** Answers one request per connection; reads the next one and closes without answer. */
  close_on_reuse: async (conn, _index, upstream) => {
    const got = await next(conn, upstream);
    if (got === null) return;
    await conn.write(honest(got.request, got.body));
    const again = await conn.readRequest();
    if (again !== null) upstream.seen.push(`${again.method} ${again.path} (dropped)`);
  },

  /** Says `Keep-Alive: timeout=1` and closes an idle connection after exactly 1 s. */
  keep_alive_timeout_1: async (conn, _index, upstream) => {
    for (let i = 0; i < 1000; i++) {
      const reading = next(conn, upstream);
      let timer: ReturnType<typeof setTimeout> | undefined;
      const timeout = new Promise<"timeout">((resolve) => {
        timer = setTimeout(() => resolve("timeout"), 1000);
      });
      const got = await Promise.race([reading, timeout]);
      clearTimeout(timer);
      if (got === "timeout") {
        upstream.events.push("upstream closed an idle connection at 1 s");
        conn.close();
        await reading.catch(() => {});
        return;
      }
      if (got === null) {
        upstream.events.push("client closed an idle connection");
        return;
      }
      await conn.write(honest(got.request, got.body, "keep-alive: timeout=1\r\n"));
    }
  },

  /** Frames the first answer with both Transfer-Encoding: chunked and Content-Length. */
  te_and_cl: firstAnswer(
    "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\ncontent-length: 4\r\n\r\n" +
      "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
  ),

  /** Answers the first request with 101 Switching Protocols, unasked. */
  unsolicited_101: firstAnswer(
    "HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: upgrade\r\n\r\n",
  ),

  /** Answers the first request with status 600. */
  status_600: firstAnswer("HTTP/1.1 600 X\r\ncontent-length: 2\r\n\r\nno"),

  /** Answers the first request with a two-digit status. */
  status_42: firstAnswer("HTTP/1.1 42 X\r\ncontent-length: 2\r\n\r\nno"),

  /** Sends 100 Continue and 103 Early Hints, in their own packets, before each answer. */
  interim: async (conn, _index, upstream) => {
    for (let i = 0; i < 1000; i++) {
      const got = await next(conn, upstream);
      if (got === null) return;
      await conn.write("HTTP/1.1 100 Continue\r\n\r\n");
      await delay(10);
      await conn.write("HTTP/1.1 103 Early Hints\r\nlink: </a.css>; rel=preload\r\n\r\n");
      await delay(10);
      await conn.write(honest(got.request, got.body));
    }
  },
};

/** A running hostile upstream. */
export class HostileUpstream {
  /** Request lines (and bodies) the upstream read, in order, over all connections. */
  readonly seen: string[] = [];
  /** Notable things the script did or saw. */
  readonly events: string[] = [];
  readonly #server: RawServer;

  /**
   * Starts playing `script` (a name from {@linkcode SCRIPTS} or a function).
   *
   * @param script what to do on each connection
   */
  constructor(script: string | Script) {
    const play = typeof script === "string" ? SCRIPTS[script] : script;
    if (play === undefined) throw new Error(`No hostile script ${script}`);
    this.#server = new RawServer((conn, index) => play(conn, index, this));
  }

  /** The listening port. */
  get port(): number {
    return this.#server.port;
  }

  /** `127.0.0.1:PORT`. */
  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  /** Connections accepted so far. */
  get accepted(): number {
    return this.#server.accepted;
  }

  /** Stops listening and ends every connection. */
  close(): Promise<void> {
    return this.#server.close();
  }
}

if (import.meta.main) {
  const upstream = new HostileUpstream(Deno.args[0] ?? "honest");
  console.log(upstream.port);
  Deno.addSignalListener("SIGTERM", () => upstream.close().then(() => Deno.exit(0)));
}
