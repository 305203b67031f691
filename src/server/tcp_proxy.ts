/**
 * The `tcp_proxy` network filter: every accepted connection is piped, byte for byte,
 * to a host of a cluster chosen by its load balancer.
 *
 * @module
 */

import type { Logger } from "@logtape/logtape";
import type { Cluster } from "../upstream/cluster.ts";

/** What a TCP proxy listener forwards to; swapped whole on reload. */
export interface TcpProxyContext {
  readonly name: string;
  readonly cluster: Cluster;
  readonly connectTimeoutMs: number;
  /** Close a connection with no bytes either way for this long; 0: never. */
  readonly idleTimeoutMs: number;
  readonly logger: Logger;
}

/** A running TCP proxy listener. */
export class TcpProxyListener {
  /** What new connections are forwarded with. */
  context: TcpProxyContext;
  #listener: Deno.TcpListener;
  #connections = new Set<Deno.Conn>();
  #accepting: Promise<void>;

  /** Binds and starts accepting; `reusePort` shares the port (needs `--unstable-net`). */
  constructor(
    options: { hostname: string; port: number; reusePort?: boolean },
    context: TcpProxyContext,
  ) {
    this.context = context;
    this.#listener = Deno.listen({
      hostname: options.hostname,
      port: options.port,
      reusePort: options.reusePort,
    });
    this.#accepting = this.#acceptLoop();
  }

  /** The bound address. */
  get addr(): Deno.NetAddr {
    return this.#listener.addr;
  }

  async #acceptLoop(): Promise<void> {
    for (;;) {
      let conn: Deno.Conn;
      try {
        conn = await this.#listener.accept();
      } catch {
        return; // The listener was closed.
      }
      this.#forward(conn, this.context).catch((error) => {
        this.context.logger.warn("TCP proxy {listener}: {error}", {
          listener: this.context.name,
          error,
        });
      });
    }
  }

  async #forward(downstream: Deno.Conn, ctx: TcpProxyContext): Promise<void> {
    this.#connections.add(downstream);
    let upstream: Deno.TcpConn | undefined;
    try {
      const host = ctx.cluster.choose();
      if (host === undefined) throw new Error(`cluster ${ctx.cluster.name} has no host`);
      upstream = await Deno.connect({
        hostname: host.hostname,
        port: host.port,
        signal: AbortSignal.timeout(ctx.connectTimeoutMs),
      });
      upstream.setNoDelay(true);
      this.#connections.add(upstream);
      const idle = new IdleTimer(ctx.idleTimeoutMs, () => {
        closeQuietly(downstream);
        closeQuietly(upstream!);
      });
      await Promise.all([
        pump(downstream, upstream, idle),
        pump(upstream, downstream, idle),
      ]);
      idle.stop();
    } finally {
      this.#connections.delete(downstream);
      closeQuietly(downstream);
      if (upstream !== undefined) {
        this.#connections.delete(upstream);
        closeQuietly(upstream);
      }
    }
  }

  /** Stops accepting; open connections get `drainTimeoutMs` to end, then are closed. */
  async shutdown(drainTimeoutMs: number): Promise<void> {
    this.#listener.close();
    await this.#accepting;
    const deadline = Date.now() + drainTimeoutMs;
    while (this.#connections.size > 0 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    if (this.#connections.size > 0) {
      // Each proxied connection counts its two sockets.
      const cut = Math.ceil(this.#connections.size / 2);
      this.context.logger.warn(
        `Listener "${this.context.name}": drain timeout of ${drainTimeoutMs} ms passed; ` +
          `cut ${cut} TCP connection(s) still open`,
      );
    }
    for (const conn of this.#connections) closeQuietly(conn);
  }
}

/** Copies `from` to `to` until EOF, then half-closes `to` so the peer sees the end. */
async function pump(from: Deno.Conn, to: Deno.Conn, idle: IdleTimer): Promise<void> {
  const buffer = new Uint8Array(64 * 1024);
  try {
    for (;;) {
      const n = await from.read(buffer);
      if (n === null) break;
      idle.touch();
      let offset = 0;
      while (offset < n) offset += await to.write(buffer.subarray(offset, n));
    }
    await to.closeWrite().catch(() => {});
  } catch {
    // A reset on either side ends both directions.
    closeQuietly(from);
    closeQuietly(to);
  }
}

/** Closes a connection after `timeoutMs` without traffic. */
class IdleTimer {
  #last = Date.now();
  #timer: ReturnType<typeof setInterval> | undefined;

  constructor(readonly timeoutMs: number, onIdle: () => void) {
    if (timeoutMs <= 0) return;
    this.#timer = setInterval(() => {
      if (Date.now() - this.#last >= timeoutMs) {
        this.stop();
        onIdle();
      }
    }, Math.max(10, Math.min(timeoutMs / 4, 1000)));
  }

  touch(): void {
    this.#last = Date.now();
  }

  stop(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
  }
}

function closeQuietly(conn: Deno.Conn): void {
  try {
    conn.close();
  } catch {
    // Already closed.
  }
}
