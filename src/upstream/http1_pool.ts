/**
 * A pool of HTTP/1.1 connections to one upstream host, over our own client code on
 * `Deno.connect` (see DESIGN.md, "What we measured": `fetch` and `node:http` are two to
 * three times slower as an upstream client).
 *
 * Idle connections are reused last-in first-out, so a few hot sockets carry the load
 * and the rest age out under the idle timeout, or a little before the upstream's own
 * `Keep-Alive: timeout=N`. One timer per pool sweeps them.
 *
 * An idle connection is watched (see {@linkcode Http1Connection.watch}): a byte, an EOF
 * or a reset while it sits idle drops it, so a stray response is never read as the
 * next request's, and a connection the upstream closed is not reused. A request whose
 * reused connection still fails before any response byte (the upstream closed it just
 * as it was taken) is sent once more on a fresh connection when its body can be resent.
 *
 * @module
 */

import {
  type ConnectionPool,
  type PoolOptions,
  UpstreamConnectError,
  UpstreamOverflowError,
  type UpstreamRequest,
  type UpstreamResponse,
} from "./types.ts";
import { type ConnectionOwner, Http1Connection } from "./http1_connection.ts";
import { Http1Exchange } from "./http1_exchange.ts";

export { Http1Response } from "./http1_response.ts";

/**
 * An idle connection is closed this long before the upstream's `Keep-Alive: timeout`,
 * so that the upstream's close does not race the next request.
 */
const KEEP_ALIVE_MARGIN_MS = 500;

/**
 * Opens a socket to an upstream. The pool aborts `signal` when the connect timeout
 * passes; a connect function that ignores it still has its late socket closed.
 */
export type ConnectFunction = (
  hostname: string,
  port: number,
  signal?: AbortSignal,
) => Promise<Deno.Conn>;

/**
 * The default {@linkcode ConnectFunction}: plain TCP with `TCP_NODELAY`, without which
 * each small request waits ~40 ms on delayed ACKs.
 *
 * @param hostname host name or IP address
 * @param port TCP port
 * @param signal aborts the attempt
 * @returns the connected socket
 */
export async function connectTcp(
  hostname: string,
  port: number,
  signal?: AbortSignal,
): Promise<Deno.Conn> {
  const conn = await Deno.connect({ hostname, port, signal });
  conn.setNoDelay(true);
  return conn;
}

/**
 * A pool of keep-alive HTTP/1.1 connections to one host.
 *
 * Responses are {@linkcode Http1Response}s: read the body to its end (or cancel it) to
 * free the connection. When `bufferedBody` is set the connection is already free.
 *
 * @example
 * ```ts
 * const pool = new Http1Pool({ hostname: "127.0.0.1", port: 8080 }, {
 *   maxRequestPerConn: 0,
 *   connectTimeoutMs: 1000,
 *   idleTimeoutMs: 60_000,
 *   maxConnections: 100,
 *   maxPendingRequests: 1000,
 * });
 * const res = await pool.request({
 *   method: "GET",
 *   path: "/",
 *   headers: new Headers({ host: "example.com" }),
 *   body: null,
 * });
 * console.log(res.status, await new Response(res.body).text());
 * pool.close();
 * ```
 */
export class Http1Pool implements ConnectionPool {
  #hostname: string;
  #port: number;
  #options: PoolOptions;
  #connect: ConnectFunction;
  #owner: ConnectionOwner;
  /** Idle connections, oldest first; reuse pops the newest. */
  #idle: Http1Connection[] = [];
  /** Every open connection, idle or busy. */
  #all = new Set<Http1Connection>();
  /** Connection slots taken: open connections plus connects under way. */
  #slots = 0;
  #maxConnections: number;
  #pending: Waiter[] = [];
  #timer: ReturnType<typeof setTimeout> | undefined = undefined;
  /** When {@linkcode #timer} fires (`Date.now()` scale). */
  #timerAt = Infinity;
  #closed = false;

  /**
   * Makes a pool; no connection is opened until the first request.
   *
   * @param target the upstream host
   * @param options limits and timeouts; `maxConnections` of 0 means unlimited
   * @param connect opens a socket, {@linkcode connectTcp} by default; pass a
   *   `Deno.connectTls` wrapper for TLS upstreams
   */
  constructor(
    target: { hostname: string; port: number },
    options: PoolOptions,
    connect: ConnectFunction = connectTcp,
  ) {
    this.#hostname = target.hostname;
    this.#port = target.port;
    this.#options = options;
    this.#connect = connect;
    this.#maxConnections = options.maxConnections > 0 ? options.maxConnections : Infinity;
    const label = target.hostname.includes(":")
      ? `[${target.hostname}]:${target.port}`
      : `${target.hostname}:${target.port}`;
    this.#owner = {
      label,
      release: (conn) => this.#release(conn),
      discard: (conn) => this.#discard(conn),
      idleEnded: (conn) => this.#idleEnded(conn),
    };
  }

  /** Connections currently open, idle and busy. */
  get size(): number {
    return this.#all.size;
  }

  /**
   * Sends a request on an idle connection, a new one, or the next one freed.
   *
   * @param request the request; its headers should carry Host
   * @returns the response, its body streaming
   * @throws {UpstreamConnectError} when no connection could be made
   * @throws {UpstreamOverflowError} when all connections are busy and the queue is full
   * @throws {UpstreamResetError} when the upstream closed or sent garbage before a full head
   */
  async request(request: UpstreamRequest): Promise<UpstreamResponse> {
    if (this.#closed) {
      throw new UpstreamConnectError(`The pool for upstream ${this.#owner.label} is closed`);
    }
    request.signal?.throwIfAborted();
    let conn = this.#idle.pop();
    if (conn !== undefined) conn.take();
    else conn = await this.#acquire(request.signal);
    const exchange = new Http1Exchange(this.#owner, conn, request);
    try {
      return await exchange.run();
    } catch (err) {
      if (!exchange.stale) throw err;
    }
    // The upstream closed the idle connection as we reused it. The request was safe to
    // send again, so retry once on a fresh connection, in the stale one's slot.
    this.#all.delete(conn);
    const fresh = await this.#open();
    return await new Http1Exchange(this.#owner, fresh, request).run();
  }

  /** Closes every connection and fails queued requests; later requests fail. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#timerAt = Infinity;
    for (const conn of this.#all) conn.close();
    const stats = this.#options.stats;
    if (stats !== undefined) { for (let i = this.#all.size; i > 0; i--) stats.disconnected(); }
    this.#all.clear();
    this.#idle.length = 0;
    const waiters = this.#pending.splice(0);
    for (const waiter of waiters) {
      waiter.fail(
        new UpstreamConnectError(`The pool for upstream ${this.#owner.label} was closed`),
      );
    }
  }

  /** Takes a connection slot, or waits in the queue for one. */
  #acquire(signal: AbortSignal | undefined): Promise<Http1Connection> {
    if (this.#slots < this.#maxConnections) {
      this.#slots++;
      return this.#open();
    }
    if (this.#pending.length >= this.#options.maxPendingRequests) {
      throw new UpstreamOverflowError(
        `Upstream ${this.#owner.label} has ${this.#slots} busy connections and ` +
          `${this.#pending.length} queued requests, its limits`,
      );
    }
    const waiter = new Waiter(this.#pending, signal);
    this.#pending.push(waiter);
    return waiter.promise;
  }

  /** Connects in a slot already taken; frees the slot when the connect fails. */
  async #open(): Promise<Http1Connection> {
    let socket: Deno.Conn;
    try {
      const ms = this.#options.connectTimeoutMs;
      socket = ms > 0
        ? await this.#connectWithin(ms)
        : await this.#connect(this.#hostname, this.#port);
    } catch (err) {
      this.#slots--;
      this.#options.stats?.connectFailed();
      this.#dispatch();
      if (err instanceof UpstreamConnectError) throw err;
      throw new UpstreamConnectError(
        `Cannot connect to upstream ${this.#owner.label}: ${describe(err)}`,
        { cause: err },
      );
    }
    if (this.#closed) {
      socket.close();
      this.#slots--;
      throw new UpstreamConnectError(`The pool for upstream ${this.#owner.label} was closed`);
    }
    const conn = new Http1Connection(socket, this.#owner);
    this.#all.add(conn);
    this.#options.stats?.connected();
    return conn;
  }

  #connectWithin(ms: number): Promise<Deno.Conn> {
    const controller = new AbortController();
    const attempt = this.#connect(this.#hostname, this.#port, controller.signal);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        controller.abort();
        reject(
          new UpstreamConnectError(
            `Connecting to upstream ${this.#owner.label} timed out after ${ms}ms`,
          ),
        );
        // a socket that arrives after the deadline is not used
        attempt.then((socket) => socket.close(), ignore);
      }, ms);
      attempt.then((socket) => {
        clearTimeout(timer);
        resolve(socket);
      }, (err) => {
        clearTimeout(timer);
        reject(err);
      });
    });
  }

  /** A freed slot goes to the first queued request, which connects in it. */
  #dispatch(): void {
    if (this.#closed || this.#pending.length === 0 || this.#slots >= this.#maxConnections) {
      return;
    }
    const waiter = this.#pending.shift()!;
    this.#slots++;
    this.#open().then(
      (conn) => waiter.give(conn) || this.#release(conn),
      (err) => waiter.fail(err),
    );
  }

  #release(conn: Http1Connection): void {
    const max = this.#options.maxRequestPerConn;
    // Keep-Alive: timeout=N from the last response; 0 (or too short to use) means none
    const keepAlive = conn.keepAliveTimeoutMs;
    const ttl = keepAlive >= 0 ? keepAlive - KEEP_ALIVE_MARGIN_MS : Infinity;
    if (this.#closed || conn.closed || (max > 0 && conn.requests >= max) || ttl <= 0) {
      this.#discard(conn);
      return;
    }
    // the read that watches the connection, and that the next exchange takes over
    conn.watch();
    while (this.#pending.length > 0) {
      if (this.#pending.shift()!.give(conn)) return;
    }
    const now = Date.now();
    const idleTimeout = this.#options.idleTimeoutMs;
    const expiresAt = now + (idleTimeout > 0 && idleTimeout < ttl ? idleTimeout : ttl);
    conn.idleSince = now;
    conn.expiresAt = expiresAt;
    conn.park();
    this.#idle.push(conn);
    if (expiresAt < this.#timerAt) this.#schedule(expiresAt, now);
  }

  #discard(conn: Http1Connection): void {
    conn.close();
    if (!this.#all.delete(conn)) return;
    this.#options.stats?.disconnected();
    // only busy connections and ones already taken off the idle list get here
    this.#slots--;
    this.#dispatch();
  }

  /** An idle connection's watched read completed: stray bytes, EOF or a reset. */
  #idleEnded(conn: Http1Connection): void {
    const i = this.#idle.lastIndexOf(conn);
    if (i !== -1) this.#idle.splice(i, 1);
    this.#discard(conn);
  }

  /** Sets the sweep timer to fire at `at` (never later than a timer already set). */
  #schedule(at: number, now: number): void {
    if (at === Infinity) return;
    clearTimeout(this.#timer);
    this.#timerAt = at;
    this.#timer = setTimeout(this.#sweep, Math.max(1, at - now));
    // idle connections must not keep the process alive
    Deno.unrefTimer(this.#timer);
  }

  /** Closes idle connections past their expiry; the rest stay in order. */
  #sweep = (): void => {
    this.#timer = undefined;
    this.#timerAt = Infinity;
    const now = Date.now();
    const idle = this.#idle;
    let kept = 0;
    let next = Infinity;
    let gone: Http1Connection[] | undefined;
    for (let i = 0; i < idle.length; i++) {
      const conn = idle[i];
      if (conn.expiresAt <= now) {
        (gone ??= []).push(conn);
      } else {
        idle[kept++] = conn;
        if (conn.expiresAt < next) next = conn.expiresAt;
      }
    }
    idle.length = kept;
    if (gone !== undefined) { for (const conn of gone) this.#discard(conn); }
    if (next < this.#timerAt) this.#schedule(next, now);
  };
}

/** A request queued for a connection. */
class Waiter {
  readonly promise: Promise<Http1Connection>;
  #resolve!: (conn: Http1Connection) => void;
  #reject!: (err: unknown) => void;
  #queue: Waiter[];
  #signal: AbortSignal | undefined;
  #settled = false;

  constructor(queue: Waiter[], signal: AbortSignal | undefined) {
    this.promise = new Promise((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
    this.#queue = queue;
    this.#signal = signal;
    signal?.addEventListener("abort", this);
  }

  /**
   * Hands a connection over.
   *
   * @returns false when the request already gave up, so the caller keeps the connection
   */
  give(conn: Http1Connection): boolean {
    if (this.#settled) return false;
    this.#settle();
    this.#resolve(conn);
    return true;
  }

  /** Fails the queued request. */
  fail(err: unknown): void {
    if (this.#settled) return;
    this.#settle();
    this.#reject(err);
  }

  /** Abort listener: leaves the queue. */
  handleEvent(): void {
    const i = this.#queue.indexOf(this);
    if (i !== -1) this.#queue.splice(i, 1);
    this.fail(this.#signal!.reason);
  }

  #settle(): void {
    this.#settled = true;
    this.#signal?.removeEventListener("abort", this);
  }
}

function describe(err: unknown): string {
  if (err instanceof Deno.errors.ConnectionRefused) return "connection refused";
  return err instanceof Error ? err.message : String(err);
}

function ignore(): void {}
