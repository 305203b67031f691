/**
 * Mosaic's HTTP/1.1 server: serves connections it is given (accepted by a plain listener,
 * or TLS sockets from the bridge) and watches their deadlines with one coarse sweep timer
 * for all of them, instead of a timer per request.
 *
 * @module
 */

import type { ListenerContext } from "../../proxy/stream.ts";
import {
  type ByteConn,
  ClientConnection,
  type ConnectionServer,
  type Watched,
} from "./connection.ts";

/** The timeouts of a listener, in ms; 0 turns one off. */
export interface Http1Timeouts {
  /** A request head must be complete this long after its first byte (or accept): 408. */
  headerTimeoutMs: number;
  /** A kept-alive connection with no request for this long is closed. */
  idleTimeoutMs: number;
  /** A request body that sends nothing for this long is cut. */
  bodyTimeoutMs: number;
}

/** Options of {@linkcode Http1Server}. */
export interface Http1ServerOptions extends Http1Timeouts {
  /** What the listener serves: `Http2` refuses HTTP/1.x, `Http1` the h2c preface. */
  protocol?: "Http1" | "Http2" | "Auto";
  /** Takes connections that sent the HTTP/2 preface; absent: the preface is refused. */
  h2c?: (conn: ByteConn, remoteAddr: Deno.NetAddr, first: Uint8Array) => void;
}

/** The slowest sweep; shorter timeouts sweep more often, so each is kept to about a quarter. */
const MAX_SWEEP_MS = 1000;
const MIN_SWEEP_MS = 25;

/** An HTTP/1.1 server over connections handed to it. */
export class Http1Server implements ConnectionServer {
  headerTimeoutMs: number;
  idleTimeoutMs: number;
  bodyTimeoutMs: number;
  readonly protocol: "Http1" | "Http2" | "Auto";
  readonly h2c: ((conn: ByteConn, remoteAddr: Deno.NetAddr, first: Uint8Array) => void) | null;
  draining = false;
  #holder: { readonly context: ListenerContext };
  #watched = new Set<Watched>();
  #timer: ReturnType<typeof setInterval> | undefined;
  #sweepMs = MAX_SWEEP_MS;
  #emptied: (() => void) | undefined;

  /**
   * @param holder Gives the context new requests are handled with (a reload swaps it).
   * @param options Timeouts and protocols.
   */
  constructor(holder: { readonly context: ListenerContext }, options: Http1ServerOptions) {
    this.#holder = holder;
    this.protocol = options.protocol ?? "Auto";
    this.h2c = options.h2c ?? null;
    this.headerTimeoutMs = options.headerTimeoutMs;
    this.idleTimeoutMs = options.idleTimeoutMs;
    this.bodyTimeoutMs = options.bodyTimeoutMs;
    this.setTimeouts(options);
  }

  /** What new requests are handled with. */
  get context(): ListenerContext {
    return this.#holder.context;
  }

  /** Connections open now (h2c tunnels included). */
  get connections(): number {
    return this.#watched.size;
  }

  /** Changes the timeouts (a reload); waits already under way keep their deadline. */
  setTimeouts(timeouts: Http1Timeouts): void {
    this.headerTimeoutMs = timeouts.headerTimeoutMs;
    this.idleTimeoutMs = timeouts.idleTimeoutMs;
    this.bodyTimeoutMs = timeouts.bodyTimeoutMs;
    const shortest = Math.min(
      ...[timeouts.headerTimeoutMs, timeouts.idleTimeoutMs, timeouts.bodyTimeoutMs, 4000]
        .filter((ms) => ms > 0),
    );
    this.#sweepMs = Math.max(MIN_SWEEP_MS, Math.min(MAX_SWEEP_MS, Math.floor(shortest / 4)));
    if (this.#timer !== undefined) {
      clearInterval(this.#timer);
      this.#timer = undefined;
      this.#startSweep();
    }
  }

  /**
   * Serves HTTP/1.1 on `conn` until it closes.
   *
   * @param conn The connection (TCP, or TLS adapted to a byte stream).
   * @param remoteAddr The client's address.
   */
  serve(conn: ByteConn, remoteAddr: Deno.NetAddr): void {
    const client = new ClientConnection(conn, remoteAddr, this);
    if (this.draining) {
      client.close();
      return;
    }
    this.watch(client);
    client.run();
  }

  /** Adds something to the sweep (a connection, an h2c tunnel). */
  watch(item: Watched): void {
    this.#watched.add(item);
    this.#startSweep();
  }

  /** @internal ConnectionServer: a connection ended. */
  ended(item: Watched): void {
    this.#watched.delete(item);
    if (this.#watched.size === 0) {
      this.#stopSweep();
      this.#emptied?.();
    }
  }

  /**
   * Drains: idle connections close at once, busy ones after their response (which says
   * `Connection: close`); whatever is left after `drainTimeoutMs` is cut.
   *
   * @param drainTimeoutMs How long requests in flight may take.
   * @returns How many requests were in flight when they were cut.
   */
  async drain(drainTimeoutMs: number): Promise<number> {
    this.draining = true;
    for (const item of [...this.#watched]) item.drainIdle();
    if (this.#watched.size > 0) {
      const emptied = new Promise<void>((resolve) => this.#emptied = resolve);
      let timer: ReturnType<typeof setTimeout> | undefined;
      const timeout = new Promise<void>((resolve) => timer = setTimeout(resolve, drainTimeoutMs));
      await Promise.race([emptied, timeout]);
      clearTimeout(timer);
    }
    let cut = 0;
    for (const item of [...this.#watched]) {
      if (item.busy) cut++;
      item.close();
    }
    this.#stopSweep();
    return cut;
  }

  #startSweep(): void {
    if (this.#timer !== undefined) return;
    this.#timer = setInterval(() => this.#sweep(), this.#sweepMs);
  }

  #stopSweep(): void {
    if (this.#timer === undefined) return;
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  #sweep(): void {
    const now = Date.now();
    for (const item of this.#watched) {
      if (item.deadline <= now) item.expire();
    }
  }
}
