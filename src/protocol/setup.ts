/**
 * What the runtime builds for protocol codecs from one config: the codec of every
 * listener whose proxy speaks one, and of every cluster those proxies route to (whose
 * hosts then get multiplexing codec pools instead of HTTP pools).
 *
 * @module
 */

import type { MosaicConfig, ProtocolCodecConfig } from "../config/types.ts";
import { ConfigError } from "../config/errors.ts";
import type { ProtocolCodec } from "./api.ts";
import { createCodec } from "./registry.ts";

/** The codecs of one config. */
export interface ConfigCodecs {
  /** By listener name. */
  listeners: Map<string, { codec: ProtocolCodec; maxFrameBytes: number }>;
  /** By cluster name: the codec its hosts speak. */
  clusters: Map<string, { codec: ProtocolCodec; maxFrameBytes: number }>;
}

/**
 * Makes the codecs `config` needs: one per distinct codec config.
 *
 * @throws {ConfigError} naming the listener when a codec is unknown or fails to load, or
 * when one cluster is routed to by proxies of two protocols
 */
export async function prepareCodecs(config: MosaicConfig): Promise<ConfigCodecs> {
  const made = new Map<string, ProtocolCodec>();
  const listeners: ConfigCodecs["listeners"] = new Map();
  const clusters: ConfigCodecs["clusters"] = new Map();
  for (const listener of config.listeners) {
    const network = listener.network;
    if (network.type !== "proxy" || network.codec === undefined) continue;
    const source = network.codec;
    const key = codecKey(source);
    let codec = made.get(key);
    if (codec === undefined) {
      try {
        codec = await createCodec(source, config.file);
      } catch (error) {
        throw new ConfigError(
          {
            file: listener.position.file,
            line: listener.position.line,
            path: `${listener.position.path} (listener ${JSON.stringify(listener.name)})`,
          },
          (error as Error).message,
          { cause: error },
        );
      }
      made.set(key, codec);
    }
    const entry = { codec, maxFrameBytes: source.maxFrameBytes };
    listeners.set(listener.name, entry);
    for (const virtualHost of config.routers.get(network.routerConfigName)?.virtualHosts ?? []) {
      for (const route of virtualHost.routes) {
        const names = [
          ...(route.route?.clusterName !== undefined ? [route.route.clusterName] : []),
          ...(route.route?.weightedClusters ?? []).map((w) => w.name),
        ];
        for (const name of names) {
          const other = clusters.get(name);
          if (other !== undefined && other.codec.name !== codec.name) {
            throw new ConfigError(
              {
                file: listener.position.file,
                line: listener.position.line,
                path: `${listener.position.path} (listener ${JSON.stringify(listener.name)})`,
              },
              `cluster ${
                JSON.stringify(name)
              } is routed to by ${other.codec.name} and ${codec.name} proxies; a cluster speaks one protocol`,
            );
          }
          clusters.set(name, entry);
        }
      }
    }
  }
  return { listeners, clusters };
}

function codecKey(source: ProtocolCodecConfig): string {
  return JSON.stringify([source.name, source.module ?? "", source.export ?? "", source.config]);
}
