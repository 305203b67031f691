/**
 * An HTTPS listener: a filter chain's `tls_context` served by `Deno.serve` itself
 * (`direct`) or by the `node:tls` bridge (`bridge`); `tls_mode.ts` says which and why.
 *
 * Rotation (new material for new connections):
 * - bridge: the TLS context is replaced in place (`setSecureContext`). The socket never
 *   changes and open connections keep going: no connection is refused, no request fails.
 * - direct: Deno binds the certificate to the listening socket, so new material means a
 *   new socket. The successor is bound to the same port first (`reusePort`, which needs
 *   `--unstable-net`); the old server then answers HTTP/1.1 with `Connection: close` for a
 *   grace period, so busy keep-alive clients move over, and shuts down. No connection is
 *   refused, but a connection the old server accepted just before its shutdown is closed
 *   before its first request is read: in the e2e loop (4 workers, ~3k req/s, 4 rotations)
 *   1 to 7 requests of ~20k failed that way. Deno.serve offers no way to stop accepting
 *   while keeping connections, so this cannot be closed from here.
 *
 * Plain text sent to the port: the bridge logs one line per failed handshake; Deno.serve
 * answers with a TLS alert and reports nothing, so nothing is logged on the direct path.
 *
 * @module
 */

import type { TlsContextConfig } from "../config/types.ts";
import type { TlsMaterial } from "../filter/api.ts";
import type { ListenerContext } from "../proxy/stream.ts";
import { fromFetchRequest, toFetchResponse } from "../proxy/downstream.ts";
import { handleStream } from "../proxy/stream.ts";
import { serveTlsBridge, type TlsBridgeServer } from "../tls/bridge.ts";
import { reasonOf } from "../tls/errors.ts";
import { recordListenerCertificates } from "../tls/expiry.ts";
import type { BoundCertificateProvider } from "../tls/material.ts";
import { MaterialRefresher } from "../tls/refresh.ts";
import { checkServerTlsSupported } from "../tls/server.ts";
import { HttpListener } from "./http_listener.ts";
import { Http1Server, type Http1Timeouts } from "./http1/server.ts";
import { canReusePort, type TlsServeMode } from "./tls_mode.ts";

/** Options of {@linkcode TlsHttpListener.start}. */
export interface TlsHttpListenerOptions {
  hostname: string;
  port: number;
  /** The listener's `tls_context`. */
  tls: TlsContextConfig;
  /** Certificate, key and (for client certificates) CA. */
  material: TlsMaterial;
  /** How to serve; `chooseTlsServeMode` picks it. */
  mode: TlsServeMode;
  /** Share the port with other workers (direct: needs `--unstable-net`). */
  reusePort?: boolean;
  /**
   * The HTTP/1.1 server's timeouts. The bridge serves HTTP/1.1 with Mosaic's own server,
   * which has them; `direct` (Deno.serve) has none.
   */
  timeouts?: Http1Timeouts;
}

/** A running HTTPS listener, with the surface of {@linkcode HttpListener}. */
export class TlsHttpListener {
  /** How this listener is served. */
  readonly mode: TlsServeMode;
  #context: ListenerContext;
  #options: TlsHttpListenerOptions;
  #material: TlsMaterial;
  #direct: HttpListener | undefined;
  #bridge: TlsBridgeServer | undefined;
  #addr: Deno.NetAddr;
  #bridgeInFlight = 0;
  /** Serves the bridge's HTTP/1.1 connections. */
  #http1: Http1Server | undefined;
  /** Direct servers replaced by a rotation and still draining. */
  #draining = new Set<Promise<void>>();
  #rotating: Promise<void> = Promise.resolve();
  #drainTimeoutMs = 30_000;
  #refresher: MaterialRefresher | undefined;

  private constructor(
    options: TlsHttpListenerOptions,
    context: ListenerContext,
    direct: HttpListener | undefined,
    bridge: TlsBridgeServer | undefined,
  ) {
    this.mode = options.mode;
    this.#options = options;
    this.#material = options.material;
    this.#context = context;
    this.#direct = direct;
    this.#bridge = bridge;
    this.#addr = (direct?.addr ?? bridge?.addr)!;
  }

  /**
   * Binds and starts serving.
   *
   * @param options Where to listen, the `tls_context`, its material and the mode.
   * @param context What requests are handled with.
   * @returns The listener, once it listens.
   * @throws {ConfigError} when the `tls_context` asks for what the mode cannot do.
   * @throws {Error} when the address cannot be bound or the material is unusable.
   */
  static async start(
    options: TlsHttpListenerOptions,
    context: ListenerContext,
  ): Promise<TlsHttpListener> {
    recordListenerCertificates(context.name, options.material.cert);
    if (options.mode === "direct") {
      checkServerTlsSupported(options.tls);
      const direct = openDirect(options, options.port, options.material, context);
      return new TlsHttpListener(options, context, direct, undefined);
    }
    // The bridge's handler reads the listener's context at request time, so a reload that
    // swaps it takes effect for new requests; `holder` is filled in right below.
    const holder: { listener?: TlsHttpListener } = {};
    const http1 = new Http1Server({
      get context() {
        return holder.listener?.context ?? context;
      },
    }, {
      ...(options.timeouts ??
        { headerTimeoutMs: 60_000, idleTimeoutMs: 75_000, bodyTimeoutMs: 60_000 }),
      protocol: "Http1",
    });
    const bridge = await serveTlsBridge({
      http1: (conn, remoteAddr) => http1.serve(conn, remoteAddr),
      hostname: options.hostname,
      port: options.port,
      tls: options.tls,
      material: options.material,
      reusePort: options.reusePort,
      onHandshake: () => (holder.listener?.context ?? context).stats.ssl_handshake++,
      onTlsError: (failure) => {
        const ctx = holder.listener?.context ?? context;
        ctx.stats.ssl_connection_error++;
        ctx.logger.warn("TLS handshake from {client} failed on listener {listener}: {reason}", {
          client: `${failure.remoteAddr.hostname}:${failure.remoteAddr.port}`,
          listener: ctx.name,
          reason: failure.reason,
        });
      },
      onH2Violation: (remoteAddr, violation) => {
        const ctx = holder.listener?.context ?? context;
        ctx.logger.warn(
          "Closed the HTTP/2 connection of {client} on listener {listener}: {reason}",
          {
            client: `${remoteAddr.hostname}:${remoteAddr.port}`,
            listener: ctx.name,
            frameType: violation.frameType,
            reason: violation.reason,
          },
        );
      },
    }, (request, info) => holder.listener!.#serveBridged(request, info));
    holder.listener = new TlsHttpListener(options, context, undefined, bridge);
    holder.listener.#http1 = http1;
    return holder.listener;
  }

  /** What new requests are handled with. */
  get context(): ListenerContext {
    return this.#context;
  }

  set context(context: ListenerContext) {
    this.#context = context;
    if (this.#direct !== undefined) this.#direct.context = context;
  }

  /** The bound address (useful with port 0). */
  get addr(): Deno.NetAddr {
    return this.#addr;
  }

  /** Changes the HTTP/1.1 server's timeouts (a reload); the direct path has none. */
  setTimeouts(timeouts: Http1Timeouts): void {
    this.#http1?.setTimeouts(timeouts);
  }

  /** Requests being handled now (on the current socket). */
  get inFlight(): number {
    return this.#direct?.inFlight ?? this.#bridgeInFlight;
  }

  /** The material new connections are served with. */
  get material(): TlsMaterial {
    return this.#material;
  }

  /**
   * How long a direct server replaced by a rotation may drain. Set by the runtime from
   * the config's drain timeout.
   */
  set drainTimeoutMs(ms: number) {
    this.#drainTimeoutMs = ms;
  }

  /**
   * Serves new connections with other material; open connections keep theirs. The same
   * certificate and key again change nothing. Calls are serialized.
   *
   * @param material The new certificate, key and CA.
   * @returns True once new connections get the new material; false when it was the same.
   * @throws {Error} when the material is unusable or, on the direct path, the process
   * cannot rebind the port (no `--unstable-net`); the old material then stays in force.
   */
  setMaterial(material: TlsMaterial): Promise<boolean> {
    const next = this.#rotating.then(() => this.#setMaterial(material));
    this.#rotating = next.then(() => {}, () => {});
    return next;
  }

  #setMaterial(material: TlsMaterial): boolean {
    const old = this.#material;
    if (old.cert === material.cert && old.key === material.key && old.ca === material.ca) {
      this.#material = material;
      return false;
    }
    if (this.#bridge !== undefined) {
      this.#bridge.setMaterial(material);
      this.#material = material;
      recordListenerCertificates(this.#context.name, material.cert);
      return true;
    }
    if (!canReusePort()) {
      throw new Error(
        `Listener ${this.#context.name} cannot take a new certificate without closing its ` +
          "port: rebinding needs `deno run --unstable-net` (reusePort)",
      );
    }
    const previous = this.#direct!;
    // Bind the successor first so the port never stops accepting; then let the old
    // server's keep-alive clients move over (Connection: close) before it shuts down.
    this.#direct = openDirect(this.#options, this.#addr.port, material, this.#context);
    this.#material = material;
    recordListenerCertificates(this.#context.name, material.cert);
    previous.retire();
    const drainTimeoutMs = this.#drainTimeoutMs;
    const drained = delay(Math.min(REBIND_GRACE_MS, drainTimeoutMs))
      .then(() => previous.shutdown(drainTimeoutMs));
    this.#draining.add(drained);
    const forget = () => this.#draining.delete(drained);
    drained.then(forget, forget);
    return true;
  }

  /**
   * Refetches from `provider` on its interval (`refreshAfterMs` of the material in force)
   * and puts what it fetched in force. A failed fetch or unusable material keeps the old
   * certificate and logs why. Replaces the provider of an earlier call (a reload).
   *
   * @param provider The provider of the current config.
   */
  refreshFrom(provider: BoundCertificateProvider): void {
    this.#refresher?.close();
    this.#refresher = new MaterialRefresher({
      provider,
      initial: this.#material,
      onUpdate: (material) => {
        this.setMaterial(material).then((changed) => {
          if (!changed) return;
          this.#context.logger.info("Listener {listener} serves a new certificate (refresh)", {
            listener: this.#context.name,
          });
        }, (error) => this.#keepCertificate(error));
      },
      onError: (error) => this.#keepCertificate(error),
    });
  }

  #keepCertificate(error: unknown): void {
    this.#context.logger.error("Listener {listener} keeps its certificate: {reason}", {
      listener: this.#context.name,
      reason: reasonOf(error),
    });
  }

  /**
   * Stops accepting, lets in-flight requests finish, and resolves when they did or when
   * `drainTimeoutMs` passed.
   */
  async shutdown(drainTimeoutMs: number): Promise<void> {
    this.#refresher?.close();
    await this.#rotating;
    if (this.#direct !== undefined) {
      await Promise.all([this.#direct.shutdown(drainTimeoutMs), ...this.#draining]);
      return;
    }
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, drainTimeoutMs);
    });
    // The HTTP/1.1 connections drain on their own (Connection: close, idle ones at once,
    // the rest cut at the timeout); the bridge stops accepting and ends the h2 ones.
    const [cut] = await Promise.all([
      this.#http1?.drain(drainTimeoutMs) ?? 0,
      Promise.race([this.#bridge!.shutdown(), timeout]),
    ]);
    clearTimeout(timer);
    if (cut > 0) {
      this.#context.logger.warn(
        "Listener {listener}: drain timeout of {ms} ms passed; cut {cut} request(s) in flight",
        { listener: this.#context.name, ms: drainTimeoutMs, cut },
      );
    }
  }

  #serveBridged(
    request: Request,
    info: { remoteAddr: Deno.NetAddr; completed: Promise<void> },
  ): Promise<Response> {
    this.#bridgeInFlight++;
    const done = () => this.#bridgeInFlight--;
    const protocol = request.headers.has("host") ? "HTTP/1.1" : "HTTP/2";
    const response = handleStream(this.#context, fromFetchRequest(request, protocol), {
      remoteAddr: info.remoteAddr,
      protocol,
      completed: info.completed,
    }).then(toFetchResponse);
    response.then(done, done);
    return response;
  }
}

/**
 * How long a server replaced by a rotation keeps accepting beside its successor while
 * telling HTTP/1.1 clients to reconnect, before it shuts down.
 */
const REBIND_GRACE_MS = 1000;

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function openDirect(
  options: TlsHttpListenerOptions,
  port: number,
  material: TlsMaterial,
  context: ListenerContext,
): HttpListener {
  return new HttpListener({
    hostname: options.hostname,
    port,
    tls: { cert: material.cert, key: material.key },
    // Only a listener bound with reusePort can get a successor on its port.
    reusePort: options.reusePort || canReusePort() ? true : undefined,
  }, context);
}
