/**
 * A plain (no TLS) HTTP listener: `Deno.listen` accepting into Mosaic's own HTTP/1.1
 * server ({@linkcode Http1Server}), with h2c by prior knowledge piped to an inner
 * `Deno.serve` ({@linkcode H2cServer}).
 *
 * Why not `Deno.serve` itself (Deno 2.9.6): it has no header read or idle timeout, loses
 * the unread rest of a request body when the handler answers early (denoland/deno#36624),
 * builds a URL from the Host header (so `Host: a/admin` lands in the path) and invents
 * `localhost:PORT` for a request without Host. A server over `Deno.listen` has none of
 * that and measured as fast.
 *
 * @module
 */

import type { ListenerContext } from "../proxy/stream.ts";
import type { ByteConn } from "./http1/connection.ts";
import { H2cServer } from "./http1/h2c.ts";
import { Http1Server, type Http1Timeouts } from "./http1/server.ts";

/** Options of a {@linkcode PlainHttpListener}. */
export interface PlainHttpListenerOptions extends Http1Timeouts {
  hostname: string;
  port: number;
  /** The proxy's `downstream_protocol`: `Http1` refuses h2c, `Http2` refuses HTTP/1.x. */
  protocol: "Http1" | "Http2" | "Auto";
  /** Share the port with other workers (`SO_REUSEPORT`; needs `--unstable-net`). */
  reusePort?: boolean;
}

/** A running plain HTTP listener. */
export class PlainHttpListener {
  /** What new requests are handled with. */
  context: ListenerContext;
  readonly server: Http1Server;
  #listener: Deno.TcpListener;
  #h2c: H2cServer;
  #accepting: Promise<void>;

  /**
   * Binds and starts accepting.
   *
   * @throws {Deno.errors.AddrInUse} and other bind errors.
   */
  constructor(options: PlainHttpListenerOptions, context: ListenerContext) {
    this.context = context;
    this.#h2c = new H2cServer(this);
    this.server = new Http1Server(this, {
      ...options,
      h2c: (conn, remoteAddr, first) => this.#h2c.open(conn, remoteAddr, first, this.server),
    });
    this.#listener = Deno.listen({
      hostname: options.hostname,
      port: options.port,
      reusePort: options.reusePort,
    });
    this.#accepting = this.#accept();
  }

  /** The bound address (useful with port 0). */
  get addr(): Deno.NetAddr {
    return this.#listener.addr;
  }

  async #accept(): Promise<void> {
    const server = this.server;
    for (;;) {
      let conn: Deno.TcpConn;
      try {
        conn = await this.#listener.accept();
      } catch (error) {
        if (error instanceof Deno.errors.BadResource || server.draining) return; // closed
        // EMFILE and the like: back off a little rather than spin.
        this.context.logger.warn("Listener {listener} cannot accept: {error}", {
          listener: this.context.name,
          error,
        });
        await new Promise((resolve) => setTimeout(resolve, 100));
        continue;
      }
      conn.setNoDelay(true);
      server.serve(conn as ByteConn, conn.remoteAddr);
    }
  }

  /**
   * Stops accepting, closes idle connections, lets requests in flight finish (their
   * responses say `Connection: close`), and cuts what is left after `drainTimeoutMs`,
   * with one warning saying how many requests were cut.
   */
  async shutdown(drainTimeoutMs: number): Promise<void> {
    try {
      this.#listener.close();
    } catch {
      // already closed
    }
    await this.#accepting;
    // The inner h2c server sends GOAWAY and waits for its streams; the drain cuts its
    // tunnels at the timeout, so it cannot wait longer than that.
    const h2c = this.#h2c.shutdown().catch(() => {});
    const cut = await this.server.drain(drainTimeoutMs);
    await Promise.race([h2c, new Promise((resolve) => setTimeout(resolve, 100))]);
    if (cut > 0) {
      this.context.logger.warn(
        "Listener {listener}: drain timeout of {ms} ms passed; cut {cut} request(s) in flight",
        { listener: this.context.name, ms: drainTimeoutMs, cut },
      );
    }
  }
}
