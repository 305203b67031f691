/**
 * The protocol codec registry: names → codec creators. Built-ins are listed as data in
 * `extensions/builtin.ts` and registered from `main.ts` through {@linkcode registerProtocol},
 * the same function a user's code calls; a codec by URL is a module exporting
 * `createProtocolCodec`.
 *
 * @module
 */

import type { CreateProtocolCodec, ProtocolCodec } from "./api.ts";

const registry = new Map<string, CreateProtocolCodec>();

/** Names the proxy's own protocols take; no codec may register under them. */
const RESERVED = new Set(["Http1", "Http2", "Auto", "X", "module"]);

/**
 * Registers a protocol codec under a name usable as `downstream_protocol`.
 *
 * @param name The protocol's name (`bolt`).
 * @param create Makes the codec from `extend_config.config`.
 * @throws {Error} when the name is taken or reserved.
 * @example
 * ```ts
 * import { registerProtocol } from "@mosaic/proxy";
 * import { createProtocolCodec } from "./my_codec.ts";
 * registerProtocol("myproto", createProtocolCodec);
 * ```
 */
export function registerProtocol(name: string, create: CreateProtocolCodec): void {
  if (RESERVED.has(name)) {
    throw new Error(`Cannot register protocol "${name}": the name is reserved`);
  }
  if (registry.has(name)) {
    throw new Error(`Cannot register protocol "${name}": the name is already registered`);
  }
  registry.set(name, create);
}

/** Returns the creator registered under `name`, if any. */
export function getProtocol(name: string): CreateProtocolCodec | undefined {
  return registry.get(name);
}

/** The registered protocol names, for error messages. */
export function protocolNames(): string[] {
  return [...registry.keys()];
}

/** Where a codec comes from: a registered name, or a module by URL. */
export interface CodecSource {
  /** The protocol's name. */
  name: string;
  /** A module URL (or a path relative to the config file) exporting the creator. */
  module?: string;
  /** The export to call; default `createProtocolCodec`. */
  export?: string;
  /** Passed to the creator. */
  config?: unknown;
}

/** The conventional export of a codec module. */
export const CODEC_EXPORT = "createProtocolCodec";

/**
 * Makes the codec a listener or cluster speaks.
 *
 * @param source The name, and the module when the codec is loaded by URL.
 * @param configFile The config file's path or URL, against which a relative module resolves.
 * @throws {Error} naming the protocol when it is unknown, its module fails to load, or
 * the creator fails.
 */
export async function createCodec(
  source: CodecSource,
  configFile: string | undefined,
): Promise<ProtocolCodec> {
  let create: CreateProtocolCodec | undefined;
  if (source.module !== undefined) {
    const base = configFile === undefined
      ? `file://${Deno.cwd()}/`
      : new URL(configFile, `file://${Deno.cwd()}/`).href;
    const url = new URL(source.module, base).href;
    const name = source.export ?? CODEC_EXPORT;
    let module: Record<string, unknown>;
    try {
      module = await import(url);
    } catch (cause) {
      throw new Error(
        `Cannot load protocol "${source.name}" from ${url}: ${(cause as Error).message}`,
        { cause },
      );
    }
    if (typeof module[name] !== "function") {
      throw new Error(
        `Cannot load protocol "${source.name}" from ${url}: it has no function export "${name}"`,
      );
    }
    create = module[name] as CreateProtocolCodec;
  } else {
    create = registry.get(source.name);
    if (create === undefined) {
      throw new Error(
        `Unknown protocol "${source.name}"; registered protocols: ${
          protocolNames().map((n) => JSON.stringify(n)).join(", ") || "none"
        } (or give extend_config.module)`,
      );
    }
  }
  try {
    return await create(source.config ?? {});
  } catch (cause) {
    throw new Error(
      `Cannot create protocol "${source.name}": ${(cause as Error).message}`,
      { cause },
    );
  }
}
