/**
 * The TLS parts of one config load, prepared before anything binds: a listener's
 * certificate material from its provider (and how the listener will be served), and a
 * cluster's way of connecting to its hosts over TLS.
 *
 * @module
 */

import type { Logger } from "@logtape/logtape";
import { ConfigError } from "../config/errors.ts";
import type { ClusterConfig, ListenerConfig, TlsContextConfig } from "../config/types.ts";
import type { TlsMaterial } from "../filter/api.ts";
import { countingTlsConnect, makeTlsConnect, type TlsConnect } from "../tls/client.ts";
import { threadStats } from "../stats/scopes.ts";
import { reasonOf } from "../tls/errors.ts";
import {
  type BoundCertificateProvider,
  createTlsProvider,
  type TlsMaterialContext,
} from "../tls/material.ts";
import { readPemSync } from "../tls/pem.ts";
import type { Http2TlsOptions } from "../upstream/http2_pool.ts";
import type { ListenerContext } from "../proxy/stream.ts";
import { TlsHttpListener } from "./tls_listener.ts";
import { chooseTlsServeMode, servePreferenceFromEnv, type TlsServeChoice } from "./tls_mode.ts";

/** A listener's TLS as one config load prepared it. */
export interface ListenerTls {
  /** Where the material came from; refreshed from on its interval. */
  provider: BoundCertificateProvider;
  /** The material to serve new connections with. */
  material: TlsMaterial;
  /** How the listener is served, and why. */
  choice: TlsServeChoice;
}

/** The listener as it runs now, when a reload prepares its next TLS. */
export interface RunningTls {
  /** The `tls_context` it was started or last reloaded with. */
  tls: TlsContextConfig;
  /** The material it serves new connections with. */
  material: TlsMaterial;
}

/**
 * Creates a listener's certificate provider and fetches its material.
 *
 * A provider failure stops start-up (the error names the provider and the
 * `tls_context`'s file, line and path). On a reload (SIGHUP) of a listener whose
 * `tls_context` did not change, a failed fetch keeps the running certificate and logs
 * why, so a certificate source that is down does not block the rest of the reload.
 *
 * @param listener The listener, with `tls` set.
 * @param context The plugin caller and config file, for the provider.
 * @param running The running listener's TLS, on a reload.
 * @param log Where a kept certificate is reported.
 * @returns The provider, the material and the serving mode.
 * @throws {ConfigError} when the provider is unknown, or the listener is not an HTTP one.
 * @throws {CertificateProviderError} when the provider fails and no running certificate
 * may stand in.
 */
export async function prepareListenerTls(
  listener: ListenerConfig,
  context: TlsMaterialContext,
  running: RunningTls | undefined,
  log: Logger,
): Promise<ListenerTls> {
  const tls = listener.tls!;
  if (listener.network.type !== "proxy") {
    throw new ConfigError(
      { ...tls.position, path: `${tls.position.path}.status` },
      "TLS is served on proxy listeners only; this listener uses tcp_proxy",
    );
  }
  const provider = await createTlsProvider(tls, context);
  let material: TlsMaterial;
  try {
    material = await provider.fetch();
  } catch (error) {
    if (running === undefined || !sameTlsContext(running.tls, tls)) throw error;
    log.error("Listener {listener} keeps its certificate: {reason}", {
      listener: listener.name,
      reason: reasonOf(error),
    });
    material = running.material;
  }
  const preference = tls.serveMode ?? servePreferenceFromEnv();
  return { provider, material, choice: chooseTlsServeMode(tls, { preference }) };
}

/** How a cluster's pools reach its hosts over TLS. */
export type ClusterTls =
  | { protocol: "Http1"; connect: TlsConnect }
  | { protocol: "Http2"; options: Http2TlsOptions };

/**
 * Prepares a cluster's TLS: a connect function for HTTP/1.1 pools (SNI, `ca_cert`,
 * `insecure_skip`, a client certificate for mTLS), or the TLS options of an HTTP/2 pool
 * (`ca_cert`, `server_name`; h2 is chosen by ALPN). A `tls_context.type` other than
 * `file` fetches the material (client certificate, CA) from that provider once.
 *
 * @param cluster The cluster, with `tls` set.
 * @param protocol What its pools speak (a proxy's `upstream_protocol` may make it h2).
 * @param context The plugin caller and config file, for a provider.
 * @returns What the cluster's pools connect with.
 * @throws {ConfigError} when a PEM cannot be read, or an HTTP/2 cluster asks for what
 * its pool cannot do (a client certificate, `insecure_skip`).
 * @throws {CertificateProviderError} when a provider fails.
 */
export async function prepareClusterTls(
  cluster: ClusterConfig,
  protocol: "Http1" | "Http2",
  context: TlsMaterialContext,
): Promise<ClusterTls> {
  const tls = cluster.tls!;
  const material = tls.type === "file"
    ? undefined
    : await (await createTlsProvider(tls, context)).fetch();
  if (protocol === "Http2") {
    const unsupported = tls.insecureSkip
      ? "insecure_skip"
      : tls.certChain !== undefined
      ? "cert_chain"
      : material !== undefined
      ? "type"
      : undefined;
    if (unsupported !== undefined) {
      throw new ConfigError(
        { ...tls.position, path: `${tls.position.path}.${unsupported}` },
        "an HTTP/2 cluster over TLS takes ca_cert and server_name only (node:http2 pool); " +
          "use protocol Http1 for client certificates or insecure_skip",
      );
    }
    const ca = tls.caCert === undefined ? undefined : readPemSync(tls, "ca_cert", tls.caCert);
    return {
      protocol: "Http2",
      options: { caCerts: ca === undefined ? undefined : [ca], serverName: tls.serverName },
    };
  }
  if (tls.alpn.includes("h2")) {
    // The pool speaks HTTP/1.1 only; offering h2 would let the server pick what it cannot read.
    throw new ConfigError(
      { ...tls.position, path: `${tls.position.path}.alpn` },
      `an HTTP/1.1 cluster cannot offer h2 by ALPN (got ${JSON.stringify(tls.alpn)}); ` +
        "set the cluster's protocol to Http2 for h2 over TLS",
    );
  }
  return {
    protocol: "Http1",
    connect: countingTlsConnect(makeTlsConnect(tls, material), threadStats.cluster(cluster.name)),
  };
}

/**
 * Starts a TLS listener with what a config load prepared, and keeps its certificate
 * current from the provider.
 *
 * @param listener The listener.
 * @param tls Its prepared TLS.
 * @param context What requests are handled with.
 * @param drainTimeoutMs How long a server replaced by a rotation may drain.
 * @param options `reusePort`: share the port with other workers.
 * @returns The running listener.
 */
export async function startTlsListener(
  listener: ListenerConfig,
  tls: ListenerTls,
  context: ListenerContext,
  drainTimeoutMs: number,
  options: { reusePort?: boolean } = {},
): Promise<TlsHttpListener> {
  const running = await TlsHttpListener.start({
    hostname: listener.hostname,
    port: listener.port,
    tls: listener.tls!,
    material: tls.material,
    mode: tls.choice.mode,
    reusePort: options.reusePort,
    timeouts: {
      headerTimeoutMs: listener.headerReadTimeoutMs,
      idleTimeoutMs: listener.idleTimeoutMs,
      bodyTimeoutMs: listener.bodyReadTimeoutMs,
    },
  }, context);
  running.drainTimeoutMs = drainTimeoutMs;
  running.refreshFrom(tls.provider);
  context.logger.info("TLS on listener {listener}: {mode} ({reason})", {
    listener: listener.name,
    mode: tls.choice.mode === "direct" ? "Deno.serve" : "node:tls bridge",
    reason: tls.choice.reason,
  });
  return running;
}

/**
 * Puts a reload's TLS in force on a running listener: new connections get the new
 * material (nothing changes when it is the same), and refreshes come from the new
 * provider. A certificate that cannot be put in force is logged; the old one stays.
 *
 * @param running The running listener.
 * @param tls The reload's TLS for it.
 * @param drainTimeoutMs How long a server replaced by a rotation may drain.
 */
export async function updateTlsListener(
  running: TlsHttpListener,
  tls: ListenerTls,
  drainTimeoutMs: number,
): Promise<void> {
  running.drainTimeoutMs = drainTimeoutMs;
  try {
    if (await running.setMaterial(tls.material)) {
      running.context.logger.info("Listener {listener} serves a new certificate (reload)", {
        listener: running.context.name,
      });
    }
  } catch (error) {
    running.context.logger.error("Listener {listener} keeps its certificate: {reason}", {
      listener: running.context.name,
      reason: reasonOf(error),
    });
  }
  running.refreshFrom(tls.provider);
}

/** True when two `tls_context`s say the same, wherever they stand in the file. */
export function sameTlsContext(a: TlsContextConfig, b: TlsContextConfig): boolean {
  const { position: _a, ...restA } = a;
  const { position: _b, ...restB } = b;
  return JSON.stringify(restA) === JSON.stringify(restB);
}
