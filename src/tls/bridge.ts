/**
 * A TLS listener terminated by `node:tls` in front of a loopback `Deno.serve`: the way to
 * get what Deno's own TLS server lacks (seen on Deno 2.9.6):
 * - client certificates required and verified against a CA (`require_client_cert`);
 * - certificates replaced in place, for new connections, without rebinding the port
 *   ({@linkcode TlsBridgeServer.setMaterial});
 * - a hook for failed handshakes, such as plain-text HTTP sent to the TLS port.
 *
 * Each accepted TLS connection is piped to the inner server over its own loopback TCP
 * connection; the inner handler finds the real client (address, certificate) by that
 * connection's local port, and answers 403 to a connection it does not know, so a local
 * process connecting to the inner port directly gets nothing. The extra hop costs
 * throughput (on 2 cores, HTTP/1.1 keep-alive: ~16-20k req/s against ~58k for `Deno.serve`
 * TLS; h2 multiplexed: ~41k against ~45k), so use it only when those features are needed.
 *
 * The h2 pipe reads the frame headers going by ({@linkcode H2Guard}): a client that floods
 * control frames, or sends a frame above the max frame size, gets a GOAWAY and is closed
 * ({@linkcode TlsBridgeOptions.onH2Violation} says so). A stream the client cancels is no
 * error: its handler's failure is swallowed.
 *
 * @module
 */

import { connect as netConnect, type Socket } from "node:net";
import { createServer, type TLSSocket } from "node:tls";
import type { TlsContextConfig } from "../config/types.ts";
import type { TlsMaterial } from "../filter/api.ts";
import { ConfigError } from "../config/errors.ts";
import { NodeTlsConn } from "./node_conn.ts";
import { checkAlpn } from "./server.ts";
import { checkTlsVersions } from "./versions.ts";
import {
  goawayFrame,
  H2Guard,
  type H2Limits,
  type H2Violation,
  isClientCancel,
} from "../server/h2_guard.ts";

/** The client certificate of a mutually authenticated connection. */
export interface ClientCertificate {
  /** The subject, e.g. `CN=mosaic-client`. */
  subject: string;
  /** The issuer, e.g. `CN=Mosaic Test CA`. */
  issuer: string;
  /** SHA-256 fingerprint, colon-separated hex. */
  fingerprint256: string;
  /** Not valid after this date, as the certificate says. */
  validTo: string;
}

/** What the handler learns about a request besides the request itself. */
export interface TlsBridgeServeInfo {
  /** The client's address (not the loopback hop's). */
  remoteAddr: Deno.NetAddr;
  /** Resolves when the response was sent, as in `Deno.serve`. */
  completed: Promise<void>;
  /** The verified client certificate, when the listener requires one. */
  clientCertificate: ClientCertificate | undefined;
  /** The SNI name the client sent, if any. */
  serverName: string | undefined;
}

/** Handles one request, as a `Deno.serve` handler does. */
export type TlsBridgeHandler = (
  request: Request,
  info: TlsBridgeServeInfo,
) => Response | Promise<Response>;

/** A failed TLS handshake, for one log line. */
export interface TlsClientFailure {
  /** The client's address. */
  remoteAddr: Deno.NetAddr;
  /** What happened, in words: e.g. `plain-text data on the TLS port`. */
  reason: string;
  /** The TLS library's error. */
  error: Error;
}

/** Options of {@linkcode serveTlsBridge}. */
export interface TlsBridgeOptions {
  /** Bind address. @default {"0.0.0.0"} */
  hostname?: string;
  /** Bind port; 0 lets the OS choose. */
  port: number;
  /**
   * Share the port with other workers (`SO_REUSEPORT`; node:net needs no unstable flag).
   *
   * @default {false}
   */
  reusePort?: boolean;
  /** The listener's `tls_context`: `require_client_cert`, `alpn`, versions, position. */
  tls: TlsContextConfig;
  /** Certificate, key and (for client certificates) the CA. */
  material: TlsMaterial;
  /** Called with the bound address. */
  onListen?: (addr: Deno.NetAddr) => void;
  /** Called once per failed handshake. */
  onTlsError?: (failure: TlsClientFailure) => void;
  /** Called once per completed handshake (for the listener's `ssl_handshake`). */
  onHandshake?: () => void;
  /**
   * Takes the connections that did not choose h2 by ALPN (http/1.1, or no ALPN), for
   * Mosaic's own HTTP/1.1 server (timeouts, strict framing); absent: they go to the
   * inner `Deno.serve` like h2.
   */
  http1?: (conn: NodeTlsConn, remoteAddr: Deno.NetAddr) => void;
  /** The h2 flood limits; defaults: those of {@linkcode H2Guard}. */
  h2Limits?: Partial<H2Limits>;
  /** Called once when an h2 connection broke a flood limit and was closed. */
  onH2Violation?: (remoteAddr: Deno.NetAddr, violation: H2Violation) => void;
  /** Close a connection whose handshake takes longer. @default {10000} */
  handshakeTimeoutMs?: number;
}

/** A running bridge. */
export interface TlsBridgeServer {
  /** The bound address of the TLS listener. */
  readonly addr: Deno.NetAddr;
  /** The inner loopback server's address (for diagnostics: it answers 403 to strangers). */
  readonly innerAddr: Deno.NetAddr;
  /** Resolves when the server has shut down. */
  readonly finished: Promise<void>;
  /**
   * Serves new connections with other material; open connections keep theirs. No
   * connection is refused: the listening socket stays open.
   *
   * @throws {Error} when the material is unusable (the old one stays in force).
   */
  setMaterial(material: TlsMaterial): void;
  /** Stops accepting, lets in-flight requests finish, then closes every connection. */
  shutdown(): Promise<void>;
}

interface Session {
  remoteAddr: Deno.NetAddr;
  clientCertificate: ClientCertificate | undefined;
  serverName: string | undefined;
}

/**
 * Serves HTTP/1.1 and HTTP/2 (by ALPN) over TLS terminated by `node:tls`.
 *
 * @param options Where to listen, the `tls_context` and its material.
 * @param handler Answers requests.
 * @returns The running server, once it listens.
 * @throws {ConfigError} when `require_client_cert` is set but no CA is given, or `alpn`
 * names protocols other than `h2` and `http/1.1`.
 * @example
 * ```ts
 * const server = await serveTlsBridge(
 *   { port: 8443, tls, material: { cert, key, ca } },
 *   (_req, info) => new Response(`hello ${info.clientCertificate?.subject}`),
 * );
 * server.setMaterial(newMaterial); // rotation: new connections get the new certificate
 * await server.shutdown();
 * ```
 */
export async function serveTlsBridge(
  options: TlsBridgeOptions,
  handler: TlsBridgeHandler,
): Promise<TlsBridgeServer> {
  const { tls } = options;
  checkTlsVersions(tls);
  checkAlpn(tls, ["h2", "http/1.1"], "the TLS listener serves only h2 and http/1.1", false);
  const requireClientCert = tls.requireClientCert;
  if (requireClientCert && options.material.ca === undefined) {
    throw new ConfigError(
      { ...tls.position, path: `${tls.position.path}.ca_cert` },
      "require_client_cert needs ca_cert: the CA that signs accepted client certificates",
    );
  }
  const alpn = tls.alpn.length > 0 ? [...tls.alpn] : ["h2", "http/1.1"];
  const sessions = new Map<number, Session>();
  const sockets = new Set<Socket>();

  const inner = Deno.serve({
    hostname: "127.0.0.1",
    port: 0,
    onListen() {},
    onError(error) {
      // A stream the client cancelled fails its response body with an AbortError.
      if (!isClientCancel(error)) console.error(error);
      return new Response("internal error\n", { status: 500 });
    },
  }, async (request, info) => {
    const session = sessions.get(info.remoteAddr.port);
    if (session === undefined) {
      return new Response("Connect through the TLS listener\n", { status: 403 });
    }
    try {
      return await handler(request, {
        remoteAddr: session.remoteAddr,
        completed: info.completed,
        clientCertificate: session.clientCertificate,
        serverName: session.serverName,
      });
    } catch (error) {
      // The client reset the stream or left: nobody reads the answer.
      if (request.signal.aborted) return new Response(null, { status: 499 });
      throw error;
    }
  });
  const innerPort = inner.addr.port;

  const secureOptions = (material: TlsMaterial) => ({
    cert: material.cert,
    key: material.key,
    ca: material.ca === undefined ? undefined : [material.ca],
  });
  const server = createServer({
    ...secureOptions(options.material),
    requestCert: requireClientCert,
    rejectUnauthorized: requireClientCert,
    ALPNProtocols: alpn,
    handshakeTimeout: options.handshakeTimeoutMs ?? 10_000,
  }, (socket: TLSSocket) => bridge(socket));

  const onHandshake = options.onHandshake;

  function bridge(socket: TLSSocket): void {
    onHandshake?.();
    socket.setNoDelay(true);
    sockets.add(socket);
    if (options.http1 !== undefined && socket.alpnProtocol !== "h2") {
      socket.once("close", () => sockets.delete(socket));
      socket.on("error", () => {});
      options.http1(new NodeTlsConn(socket), addrOf(socket));
      return;
    }
    const upstream = netConnect({ host: "127.0.0.1", port: innerPort });
    upstream.setNoDelay(true);
    sockets.add(upstream);
    let key = -1;
    upstream.once("connect", () => {
      key = upstream.localPort ?? -1;
      sessions.set(key, {
        remoteAddr: addrOf(socket),
        clientCertificate: requireClientCert ? certificateOf(socket) : undefined,
        serverName: serverNameOf(socket),
      });
      if (socket.alpnProtocol === "h2") {
        pipeGuarded(socket, upstream, new H2Guard(options.h2Limits), (violation) => {
          options.onH2Violation?.(addrOf(socket), violation);
        });
      } else {
        // HTTP/1.1 to the inner server (no `http1` option): nothing to guard.
        socket.pipe(upstream);
        upstream.pipe(socket);
      }
    });
    const done = () => {
      if (key !== -1) sessions.delete(key);
      socket.destroy();
      upstream.destroy();
    };
    socket.once("close", () => {
      sockets.delete(socket);
      done();
    });
    upstream.once("close", () => {
      sockets.delete(upstream);
      done();
    });
    // A reset on either side just ends the pair; "close" follows and cleans up.
    socket.on("error", () => {});
    upstream.on("error", () => {});
  }

  server.on("tlsClientError", (error: Error, socket: TLSSocket) => {
    // A failed TLS socket has lost its peer address; the raw TCP socket under it
    // (`_parent`, node's own field) still has it.
    const raw = (socket as { _parent?: Socket })._parent;
    options.onTlsError?.({
      remoteAddr: addrOf(socket.remoteAddress === undefined && raw ? raw : socket),
      reason: describeFailure(error, socket),
      error,
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    const listen = { port: options.port, host: options.hostname ?? "0.0.0.0" };
    server.listen(options.reusePort ? { ...listen, reusePort: true } : listen, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const bound = server.address();
  const addr: Deno.NetAddr = {
    transport: "tcp",
    hostname: typeof bound === "object" && bound !== null ? bound.address : "",
    port: typeof bound === "object" && bound !== null ? bound.port : 0,
  };
  options.onListen?.(addr);

  let shutdown: Promise<void> | undefined;
  return {
    addr,
    innerAddr: inner.addr,
    finished: inner.finished,
    setMaterial(material: TlsMaterial) {
      if (requireClientCert && material.ca === undefined) {
        throw new Error(
          "The new material has no CA, and the listener requires client certificates",
        );
      }
      server.setSecureContext(secureOptions(material));
    },
    shutdown() {
      shutdown ??= (async () => {
        await new Promise<void>((resolve) => server.close(() => resolve()));
        await inner.shutdown();
        for (const socket of sockets) socket.destroy();
      })();
      return shutdown;
    },
  };
}

/**
 * Pipes an h2 client to the inner server both ways, the client's frame headers through
 * `guard`: once it reports a violation nothing more is forwarded; the client gets a
 * GOAWAY when the server's bytes stand at a frame boundary and its socket is not backed
 * up, and both sockets are closed.
 */
function pipeGuarded(
  socket: TLSSocket,
  upstream: Socket,
  guard: H2Guard,
  onViolation: (violation: H2Violation) => void,
): void {
  let stopped = false;
  socket.on("data", (chunk: Uint8Array) => {
    if (stopped) return;
    const violation = guard.inbound(chunk);
    if (violation === null) {
      if (!upstream.write(chunk)) socket.pause();
      return;
    }
    stopped = true;
    onViolation(violation);
    // Destroying the client socket ends the pair (its "close" destroys `upstream`).
    if (guard.outboundAtBoundary && !socket.writableNeedDrain) {
      const timer = setTimeout(() => socket.destroy(), 1000);
      socket.end(goawayFrame(guard.lastStreamId, violation.errorCode), () => {
        clearTimeout(timer);
        socket.destroy();
      });
    } else {
      socket.destroy();
    }
  });
  upstream.on("drain", () => socket.resume());
  upstream.on("data", (chunk: Uint8Array) => {
    if (stopped) return;
    guard.outbound(chunk);
    if (!socket.write(chunk)) upstream.pause();
  });
  socket.on("drain", () => upstream.resume());
  socket.once("end", () => upstream.end());
  upstream.once("end", () => socket.end());
}

function addrOf(socket: Socket): Deno.NetAddr {
  return { transport: "tcp", hostname: socket.remoteAddress ?? "", port: socket.remotePort ?? 0 };
}

function serverNameOf(socket: TLSSocket): string | undefined {
  const name = (socket as { servername?: unknown }).servername;
  return typeof name === "string" && name !== "" ? name : undefined;
}

function certificateOf(socket: TLSSocket): ClientCertificate | undefined {
  const cert = socket.getPeerCertificate();
  if (cert === null || typeof cert !== "object" || Object.keys(cert).length === 0) {
    return undefined;
  }
  return {
    subject: nameOf(cert.subject),
    issuer: nameOf(cert.issuer),
    fingerprint256: cert.fingerprint256 ?? "",
    validTo: cert.valid_to ?? "",
  };
}

function nameOf(name: unknown): string {
  if (name === null || typeof name !== "object") return String(name ?? "");
  return Object.entries(name as Record<string, unknown>).map(([k, v]) => `${k}=${v}`).join(", ");
}

function describeFailure(error: Error, socket: TLSSocket): string {
  const code = (error as { code?: unknown }).code;
  // node:tls closes a verified-but-untrusted client after the handshake and reports only a
  // hang-up; the socket still says why it was not authorized.
  const authorizationError = (socket as { authorizationError?: unknown }).authorizationError;
  if (typeof authorizationError === "string" && authorizationError !== "") {
    return `client certificate rejected: ${authorizationError}`;
  }
  if (
    code === "ERR_SSL_WRONG_VERSION_NUMBER" ||
    /InvalidContentType|http request/i.test(error.message)
  ) {
    return "plain-text data on the TLS port (an http:// request to an https:// listener?)";
  }
  if (code === "ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE") {
    return "the client sent no certificate, and the listener requires one";
  }
  if (code === "ERR_TLS_HANDSHAKE_TIMEOUT") return "the TLS handshake timed out";
  return `TLS handshake failed: ${error.message}`;
}
