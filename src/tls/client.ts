/**
 * TLS to upstream hosts: a cluster's `tls_context` made into a connect function for its
 * connection pool.
 *
 * Two ways to connect, both handshaking before they return so that a verification
 * failure surfaces at connect time with its reason:
 * - the common case (verify the server, no client certificate): `Deno.connect`,
 *   `setNoDelay(true)`, then `Deno.startTls` with the SNI name and CA;
 * - a client certificate (mTLS) or `insecure_skip`: `node:tls`, because Deno's own client
 *   cannot skip verification per connection, and `Deno.connectTls` (its only call that
 *   sends a client certificate) returns a connection without `setNoDelay`.
 *
 * @module
 */

import { connect as nodeTlsConnect, type TLSSocket } from "node:tls";
import { ConfigError } from "../config/errors.ts";
import type { TlsContextConfig } from "../config/types.ts";
import type { TlsMaterial } from "../filter/api.ts";
import { UpstreamConnectError } from "../upstream/types.ts";
import { reasonOf } from "./errors.ts";
import { NodeTlsConn } from "./node_conn.ts";
import { readPemSync } from "./pem.ts";
import { checkTlsVersions } from "./versions.ts";

/** Opens a TLS connection to an upstream host; the handshake is done when it resolves. */
export type TlsConnect = (hostname: string, port: number) => Promise<Deno.TlsConn>;

/** Why an upstream TLS handshake failed, in a word a log line can use. */
export type TlsFailureKind = "unknown_ca" | "wrong_name" | "expired" | "handshake";

/**
 * A TLS handshake with an upstream failed. It is an {@linkcode UpstreamConnectError}, so
 * the proxy answers 502; the message says why, e.g. `TLS handshake with
 * 127.0.0.1:8443 (server name "api.internal") failed: the certificate is not signed by a
 * trusted CA (invalid peer certificate: UnknownIssuer)`.
 */
export class UpstreamTlsError extends UpstreamConnectError {
  /** The failure in a word. */
  readonly kind: TlsFailureKind;

  /**
   * Makes the error.
   *
   * @param kind The failure in a word.
   * @param message The whole message.
   * @param options `cause`: the TLS library's error.
   */
  constructor(kind: TlsFailureKind, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "UpstreamTlsError";
    this.kind = kind;
  }
}

/**
 * Makes the connect function of a cluster with a `tls_context`.
 *
 * - `ca_cert`: trusted in addition to the default roots (Deno path) or instead of them
 *   (node path, as in Node).
 * - `server_name`: sent as SNI and checked against the certificate; default: the host.
 * - `cert_chain`/`private_key`, or `material`: a client certificate for mTLS.
 * - `insecure_skip`: no verification of the upstream's certificate at all.
 * - `alpn`: offered protocols, e.g. `["h2", "http/1.1"]`; read the choice from
 *   `(await conn.handshake()).alpnProtocol`.
 *
 * @param tls The cluster's `tls_context`.
 * @param material Certificate material from a provider; when given, its `cert`/`key` are
 * the client certificate and its `ca`, if any, replaces `ca_cert`.
 * @returns A function that connects, sets no-delay, and completes the handshake.
 * @throws {ConfigError} when a PEM value cannot be read, only one of `cert_chain` and
 * `private_key` is given, or `min_version`/`max_version` cannot be honoured.
 * @example
 * ```ts
 * const connect = makeTlsConnect(cluster.tls!);
 * const conn = await connect("10.0.0.5", 8443); // throws UpstreamTlsError on a bad cert
 * ```
 */
export function makeTlsConnect(tls: TlsContextConfig, material?: TlsMaterial): TlsConnect {
  checkTlsVersions(tls);
  const ca = material?.ca ??
    (tls.caCert === undefined ? undefined : readPemSync(tls, "ca_cert", tls.caCert));
  let cert = material?.cert;
  let key = material?.key;
  if (material === undefined && (tls.certChain !== undefined || tls.privateKey !== undefined)) {
    if (tls.certChain === undefined || tls.privateKey === undefined) {
      const missing = tls.certChain === undefined ? "cert_chain" : "private_key";
      throw new ConfigError(
        { ...tls.position, path: `${tls.position.path}.${missing}` },
        "a client certificate needs both cert_chain and private_key",
      );
    }
    cert = readPemSync(tls, "cert_chain", tls.certChain);
    key = readPemSync(tls, "private_key", tls.privateKey);
  }
  const alpn = tls.alpn.length > 0 ? [...tls.alpn] : undefined;
  const serverName = tls.serverName === "" ? undefined : tls.serverName;
  if (cert !== undefined || tls.insecureSkip) {
    return (hostname, port) =>
      connectNode({
        hostname,
        port,
        serverName,
        ca,
        cert,
        key,
        alpn,
        verify: !tls.insecureSkip,
      });
  }
  const caCerts = ca === undefined ? undefined : [ca];
  return async (hostname, port) => {
    const name = serverName ?? hostname;
    let tcp: Deno.TcpConn;
    try {
      tcp = await Deno.connect({ hostname, port });
    } catch (error) {
      throw new UpstreamConnectError(`Cannot connect to ${hostname}:${port}: ${reasonOf(error)}`, {
        cause: error,
      });
    }
    tcp.setNoDelay(true);
    let conn: Deno.TlsConn | undefined;
    try {
      conn = await Deno.startTls(tcp, { hostname: name, caCerts, alpnProtocols: alpn });
      await conn.handshake();
      return conn;
    } catch (error) {
      if (conn !== undefined) conn.close();
      else tcp.close();
      throw tlsError(hostname, port, serverName, error);
    }
  };
}

interface NodeConnectOptions {
  hostname: string;
  port: number;
  serverName: string | undefined;
  ca: string | undefined;
  cert: string | undefined;
  key: string | undefined;
  alpn: string[] | undefined;
  verify: boolean;
}

function connectNode(o: NodeConnectOptions): Promise<Deno.TlsConn> {
  const name = o.serverName ?? o.hostname;
  return new Promise((resolve, reject) => {
    const socket: TLSSocket = nodeTlsConnect({
      host: o.hostname,
      port: o.port,
      // Node refuses an IP address as SNI; the certificate is still checked against it.
      servername: isIp(name) ? undefined : name,
      ca: o.ca === undefined ? undefined : [o.ca],
      cert: o.cert,
      key: o.key,
      ALPNProtocols: o.alpn,
      rejectUnauthorized: o.verify,
      // insecure_skip skips the name check too, not only the chain.
      ...(o.verify ? {} : { checkServerIdentity: () => undefined }),
    });
    socket.setNoDelay(true);
    const onError = (error: Error) => {
      socket.destroy();
      reject(tlsError(o.hostname, o.port, o.serverName, error));
    };
    socket.once("error", onError);
    socket.once("secureConnect", () => {
      socket.off("error", onError);
      resolve(new NodeTlsConn(socket));
    });
  });
}

function tlsError(
  hostname: string,
  port: number,
  serverName: string | undefined,
  error: unknown,
): UpstreamConnectError {
  const detail = reasonOf(error);
  const code = (error as { code?: unknown } | null)?.code;
  const where = `${hostname}:${port}` +
    (serverName === undefined ? "" : ` (server name ${JSON.stringify(serverName)})`);
  if (code === "ECONNREFUSED" || error instanceof Deno.errors.ConnectionRefused) {
    return new UpstreamConnectError(`Cannot connect to ${where}: ${detail}`, { cause: error });
  }
  const kind = classify(detail, typeof code === "string" ? code : "");
  const why = kind === "unknown_ca"
    ? "the certificate is not signed by a trusted CA"
    : kind === "wrong_name"
    ? `the certificate is not valid for ${JSON.stringify(serverName ?? hostname)}`
    : kind === "expired"
    ? "the certificate has expired or is not yet valid"
    : "the handshake failed";
  return new UpstreamTlsError(kind, `TLS handshake with ${where} failed: ${why} (${detail})`, {
    cause: error,
  });
}

function classify(detail: string, code: string): TlsFailureKind {
  if (
    /UnknownIssuer|UNABLE_TO_(GET_ISSUER|VERIFY_LEAF)|SELF_SIGNED/.test(detail + " " + code)
  ) {
    return "unknown_ca";
  }
  if (/not valid for name|NotValidForName|ALTNAME_INVALID|does not match/.test(detail + code)) {
    return "wrong_name";
  }
  if (/Expired|NotValidYet|CERT_HAS_EXPIRED|CERT_NOT_YET_VALID/.test(detail + " " + code)) {
    return "expired";
  }
  return "handshake";
}

function isIp(name: string): boolean {
  return /^\d{1,3}(\.\d{1,3}){3}$/.test(name) || name.includes(":");
}

/** The two counters of a cluster's upstream TLS (`ClusterStats`' fields). */
export interface TlsConnectCounters {
  /** Handshakes completed. */
  ssl_handshake: number;
  /** Handshakes that failed (the TCP connect did, but not the TLS on it). */
  ssl_connection_error: number;
}

/**
 * Counts the handshakes of `connect` in `stats` (a cluster's `ssl_handshake` and
 * `ssl_connection_error`): one addition per connection, nothing per request.
 *
 * @param connect What {@linkcode makeTlsConnect} made.
 * @param stats The cluster's stats, resolved once.
 * @returns A connect function that counts.
 */
export function countingTlsConnect(connect: TlsConnect, stats: TlsConnectCounters): TlsConnect {
  return async (hostname, port) => {
    try {
      const conn = await connect(hostname, port);
      stats.ssl_handshake++;
      return conn;
    } catch (error) {
      if (error instanceof UpstreamTlsError) stats.ssl_connection_error++;
      throw error;
    }
  };
}
