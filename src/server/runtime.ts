/**
 * The running proxy: listeners, and the routers, clusters and filters they use, built
 * from one config. A reload builds the whole next generation first; only when every
 * part of it loaded does it take over, listener by listener, for new requests.
 *
 * @module
 */

import type { ListenerConfig, MosaicConfig } from "../config/types.ts";
import type { PluginCaller } from "../filter/api.ts";
import { buildFilterEntries, type ModuleResolver } from "../filter/build.ts";
import { AccessLogWriter, compileAccessLogFormat } from "../log/access_log.ts";
import { logger } from "../log/logger.ts";
import type { ListenerContext } from "../proxy/stream.ts";
import { requestPolicyOf } from "../proxy/policy.ts";
import { Router } from "../router/router.ts";
import { ClusterManager } from "../upstream/cluster.ts";
import { threadStats } from "../stats/scopes.ts";
import { Http1Pool } from "../upstream/http1_pool.ts";
import { Http2Pool } from "../upstream/http2_pool.ts";
import type { ConnectionPool } from "../upstream/types.ts";
import { ConfigError } from "../config/errors.ts";
import { RpcListener, type RpcListenerContext } from "../protocol/listener.ts";
import { MultiplexPool } from "../protocol/pool.ts";
import { type ConfigCodecs, prepareCodecs } from "../protocol/setup.ts";
import { PlainHttpListener } from "./plain_listener.ts";
import { type TcpProxyContext, TcpProxyListener } from "./tcp_proxy.ts";
import { TlsHttpListener } from "./tls_listener.ts";
import {
  type ClusterTls,
  type ListenerTls,
  prepareClusterTls,
  prepareListenerTls,
  startTlsListener,
  updateTlsListener,
} from "./tls_setup.ts";

/** What the runtime needs besides the config. */
export interface RuntimeOptions {
  plugins: PluginCaller;
  resolveModule: ModuleResolver;
  /**
   * Bind every listener with `SO_REUSEPORT`, so the runtimes of `workers: N` share each
   * port and the kernel spreads connections over them (needs `--unstable-net`).
   *
   * @default {false}
   */
  reusePort?: boolean;
  /**
   * The index of the worker this runtime runs in, printed by the access log's `%worker%`.
   *
   * @default {0}
   */
  worker?: number;
}

/**
 * A next generation built by {@linkcode Runtime.prepare}: nothing of it serves until
 * {@linkcode Runtime.commit}; {@linkcode Runtime.discard} drops it.
 */
export interface PreparedGeneration {
  /** The config it was built from. */
  readonly config: MosaicConfig;
}

type Listener = PlainHttpListener | TcpProxyListener | TlsHttpListener | RpcListener;

/** One config's worth of built parts. */
interface Generation {
  config: MosaicConfig;
  clusters: ClusterManager;
  contexts: Map<string, ListenerContext | TcpProxyContext>;
  /** Protocol codecs of listeners and clusters (Bolt, …), by name. */
  codecs: ConfigCodecs;
  /** TLS of the listeners that have it, by listener name. */
  tls: Map<string, ListenerTls>;
  writers: AccessLogWriter[];
  factories: { destroy?(): void | Promise<void> }[];
}

/** The proxy's listeners and what they run on. */
export class Runtime {
  #listeners = new Map<string, { config: ListenerConfig; listener: Listener }>();
  #current: Generation | undefined;
  #log = logger("runtime");

  private constructor(readonly options: RuntimeOptions) {}

  /** Builds everything from `config` and starts its listeners. */
  static async start(config: MosaicConfig, options: RuntimeOptions): Promise<Runtime> {
    const runtime = new Runtime(options);
    const generation = await runtime.#build(config);
    try {
      await runtime.#activate(generation);
    } catch (error) {
      await runtime.shutdown(0);
      throw error;
    }
    return runtime;
  }

  /** Addresses the listeners are bound to, by name. */
  get addresses(): Map<string, Deno.NetAddr> {
    return new Map([...this.#listeners].map(([name, l]) => [name, l.listener.addr]));
  }

  /**
   * Swaps in a new config. Everything is built first: a config that fails to build
   * throws, and the running one stays as it was.
   */
  async reload(config: MosaicConfig): Promise<void> {
    await this.commit(await this.prepare(config));
  }

  /**
   * Phase one of a reload: builds everything of `config` and puts nothing in force, so
   * that the workers of one proxy can all build before any of them switches.
   *
   * @throws {Error} when the config fails to build; the running one stays as it was.
   */
  async prepare(config: MosaicConfig): Promise<PreparedGeneration> {
    return await this.#build(config);
  }

  /** Phase two: puts a prepared generation in force; the previous one retires. */
  async commit(prepared: PreparedGeneration): Promise<void> {
    const next = prepared as Generation;
    const previous = this.#current;
    await this.#activate(next);
    if (previous !== undefined) this.#retire(previous, next.config.drainTimeoutMs);
  }

  /** Drops a prepared generation that will not be committed. */
  async discard(prepared: PreparedGeneration): Promise<void> {
    await this.#dispose(prepared as Generation);
  }

  /** Stops accepting, drains in-flight requests for up to `drainTimeoutMs`, closes all. */
  async shutdown(drainTimeoutMs: number): Promise<void> {
    const listeners = [...this.#listeners.values()];
    this.#listeners.clear();
    await Promise.all(listeners.map(({ listener }) => listener.shutdown(drainTimeoutMs)));
    if (this.#current !== undefined) await this.#dispose(this.#current);
    this.#current = undefined;
  }

  async #build(config: MosaicConfig): Promise<Generation> {
    const http2Clusters = clustersSpeakingHttp2(config);
    const codecs = await prepareCodecs(config);
    const tlsContext = { plugins: this.options.plugins, configFile: config.file };
    const clusterTls = new Map<string, ClusterTls>();
    for (const cluster of config.clusters.values()) {
      if (cluster.tls === undefined) continue;
      const protocol = http2Clusters.has(cluster.name) ? "Http2" : "Http1";
      clusterTls.set(cluster.name, await prepareClusterTls(cluster, protocol, tlsContext));
    }
    const clusters = new ClusterManager(config.clusters, (host, cluster) => {
      const options = {
        maxRequestPerConn: cluster.maxRequestPerConn,
        connectTimeoutMs: cluster.connectTimeoutMs,
        idleTimeoutMs: cluster.idleTimeoutMs,
        maxConnections: cluster.maxConnections,
        maxPendingRequests: cluster.maxPendingRequests,
        stats: threadStats.host(cluster.name, host.address),
      };
      const codec = codecs.clusters.get(cluster.name);
      if (codec !== undefined) {
        return new MultiplexPool(host, codec.codec, {
          connectTimeoutMs: cluster.connectTimeoutMs,
          maxFrameBytes: codec.maxFrameBytes,
        });
      }
      const tls = clusterTls.get(cluster.name);
      const pool: ConnectionPool = http2Clusters.has(cluster.name)
        ? new Http2Pool(host, options, tls?.protocol === "Http2" ? tls.options : undefined)
        : new Http1Pool(host, options, tls?.protocol === "Http1" ? tls.connect : undefined);
      return pool;
    });
    const generation: Generation = {
      config,
      clusters,
      contexts: new Map(),
      codecs,
      tls: new Map(),
      writers: [],
      factories: [],
    };
    try {
      const writers = new Map<string, AccessLogWriter>();
      for (const listener of config.listeners) {
        if (listener.tls !== undefined) {
          const running = this.#listeners.get(listener.name);
          const tls = await prepareListenerTls(
            listener,
            tlsContext,
            running?.listener instanceof TlsHttpListener
              ? { tls: running.config.tls!, material: running.listener.material }
              : undefined,
            logger("listener", listener.name),
          );
          generation.tls.set(listener.name, tls);
        }
        generation.contexts.set(
          listener.name,
          await this.#buildContext(config, listener, generation, writers),
        );
      }
      generation.writers = [...writers.values()];
    } catch (error) {
      await this.#dispose(generation);
      throw error;
    }
    return generation;
  }

  async #buildContext(
    config: MosaicConfig,
    listener: ListenerConfig,
    generation: Generation,
    writers: Map<string, AccessLogWriter>,
  ): Promise<ListenerContext | TcpProxyContext> {
    const log = logger("listener", listener.name);
    const network = listener.network;
    if (network.type === "tcp_proxy") {
      const cluster = generation.clusters.get(network.cluster)!;
      return {
        name: listener.name,
        cluster,
        connectTimeoutMs: cluster.config.connectTimeoutMs,
        idleTimeoutMs: network.idleTimeoutMs,
        logger: log,
      };
    }
    const filters = await buildFilterEntries(listener.streamFilters, {
      listener: listener.name,
      configFile: config.file,
      plugins: this.options.plugins,
      resolveModule: this.options.resolveModule,
    });
    generation.factories.push(...filters.map((f) => f.factory));
    const lines = listener.accessLogs.map((access) => {
      const format = compileAccessLogFormat(access.format, { worker: this.options.worker });
      let writer = writers.get(access.path);
      if (writer === undefined) {
        writer = new AccessLogWriter(access.path);
        writers.set(access.path, writer);
      }
      return { format, writer };
    });
    const router = new Router(config.routers.get(network.routerConfigName)!);
    const codec = generation.codecs.listeners.get(listener.name);
    return {
      ...codec,
      name: listener.name,
      scheme: listener.tls?.status ? "https" : "http",
      router,
      routesOverrideFilters: router.overridesFilterConfig,
      clusters: generation.clusters,
      filters,
      maxHeaderBytes: listener.maxHeaderBytes,
      request: requestPolicyOf(network),
      accessLog: lines.length === 0 ? undefined : (record) => {
        for (const { format, writer } of lines) writer.write(format(record));
      },
      logger: log,
      stats: threadStats.listener(listener.name),
    };
  }

  /** Points every listener at the new generation; opens new ones, closes dropped ones. */
  async #activate(next: Generation): Promise<void> {
    const drainTimeoutMs = next.config.drainTimeoutMs;
    const reusePort = this.options.reusePort ? true : undefined;
    for (const [name, running] of this.#listeners) {
      const config = next.config.listeners.find((l) => l.name === name);
      const tlsMode = next.tls.get(name)?.choice.mode;
      if (
        config === undefined || !sameSocket(config, running.config) ||
        (running.listener instanceof TlsHttpListener && running.listener.mode !== tlsMode)
      ) {
        this.#listeners.delete(name);
        running.listener.shutdown(next.config.drainTimeoutMs).catch(() => {});
      }
    }
    for (const config of next.config.listeners) {
      const context = next.contexts.get(config.name)!;
      const running = this.#listeners.get(config.name);
      const tls = next.tls.get(config.name);
      if (running !== undefined) {
        running.listener.context = context as RpcListenerContext & TcpProxyContext;
        running.config = config;
        if (running.listener instanceof PlainHttpListener) {
          running.listener.server.setTimeouts(timeoutsOf(config));
        } else if (running.listener instanceof TlsHttpListener) {
          running.listener.setTimeouts(timeoutsOf(config));
        }
        if (tls !== undefined && running.listener instanceof TlsHttpListener) {
          await updateTlsListener(running.listener, tls, drainTimeoutMs);
        }
        continue;
      }
      let listener: Listener;
      try {
        const codec = config.network.type === "proxy" ? config.network.codec : undefined;
        listener = codec !== undefined
          ? new RpcListener(
            { hostname: config.hostname, port: config.port, reusePort },
            context as RpcListenerContext,
          )
          : config.network.type === "tcp_proxy"
          ? new TcpProxyListener(
            { hostname: config.hostname, port: config.port, reusePort },
            context as TcpProxyContext,
          )
          : tls !== undefined
          ? await startTlsListener(config, tls, context as ListenerContext, drainTimeoutMs, {
            reusePort,
          })
          : new PlainHttpListener({
            hostname: config.hostname,
            port: config.port,
            reusePort,
            protocol: config.network.downstreamProtocol,
            ...timeoutsOf(config),
          }, context as ListenerContext);
      } catch (error) {
        throw bindError(config, error);
      }
      this.#listeners.set(config.name, { config, listener });
      this.#log.info(`Listener ${config.name} on ${listener.addr.hostname}:${listener.addr.port}`);
    }
    this.#current = next;
  }

  /** Disposes an old generation once its in-flight requests have had time to end. */
  #retire(old: Generation, drainTimeoutMs: number): void {
    const timer = setTimeout(() => this.#dispose(old), drainTimeoutMs);
    Deno.unrefTimer(timer);
  }

  async #dispose(generation: Generation): Promise<void> {
    generation.clusters.close();
    for (const writer of generation.writers) writer.close();
    for (const factory of generation.factories) {
      try {
        await factory.destroy?.();
      } catch (error) {
        this.#log.warn("A filter factory failed to stop: {error}", { error });
      }
    }
  }
}

/**
 * Clusters whose pools speak HTTP/2: those that say `protocol: Http2`, and, as in MOSN,
 * every cluster routed to by a proxy whose `upstream_protocol` is `Http2`.
 */
function clustersSpeakingHttp2(config: MosaicConfig): Set<string> {
  const names = new Set<string>();
  for (const cluster of config.clusters.values()) {
    if (cluster.protocol === "Http2") names.add(cluster.name);
  }
  for (const listener of config.listeners) {
    const network = listener.network;
    if (network.type !== "proxy" || network.upstreamProtocol !== "Http2") continue;
    for (const virtualHost of config.routers.get(network.routerConfigName)?.virtualHosts ?? []) {
      for (const route of virtualHost.routes) {
        if (route.route?.clusterName !== undefined) names.add(route.route.clusterName);
        for (const weighted of route.route?.weightedClusters ?? []) names.add(weighted.name);
      }
    }
  }
  return names;
}

function sameSocket(a: ListenerConfig, b: ListenerConfig): boolean {
  return a.hostname === b.hostname && a.port === b.port && a.network.type === b.network.type &&
    (a.tls?.status ?? false) === (b.tls?.status ?? false) &&
    (a.network.type !== "proxy" || b.network.type !== "proxy" ||
      (a.network.downstreamProtocol === b.network.downstreamProtocol &&
        a.network.codec?.name === b.network.codec?.name));
}

/** The HTTP server's timeouts of a listener. */
function timeoutsOf(config: ListenerConfig) {
  return {
    headerTimeoutMs: config.headerReadTimeoutMs,
    idleTimeoutMs: config.idleTimeoutMs,
    bodyTimeoutMs: config.bodyReadTimeoutMs,
  };
}

/**
 * A listener that cannot bind, named by the config's file, line, path and name:
 * `config.yaml:12: servers[0].listeners[0] (listener "ingress"): cannot listen on
 * 127.0.0.1:2046: address already in use`.
 */
function bindError(config: ListenerConfig, error: unknown): unknown {
  if (error instanceof ConfigError) return error;
  const code = (error as { code?: unknown } | null)?.code;
  let reason: string;
  if (error instanceof Deno.errors.AddrInUse || code === "EADDRINUSE") {
    reason = "address already in use";
  } else if (error instanceof Deno.errors.AddrNotAvailable || code === "EADDRNOTAVAIL") {
    reason = "address not available on this machine";
  } else if (error instanceof Deno.errors.PermissionDenied || code === "EACCES") {
    reason = `permission denied (${error instanceof Error ? error.message : String(error)})`;
  } else {
    return error;
  }
  const position = config.position;
  const host = config.hostname.includes(":") ? `[${config.hostname}]` : config.hostname;
  return new ConfigError(
    {
      file: position.file,
      line: position.line,
      path: `${position.path} (listener ${JSON.stringify(config.name)})`,
    },
    `cannot listen on ${host}:${config.port}: ${reason}`,
    { cause: error },
  );
}
