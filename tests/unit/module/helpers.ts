/**
 * Shared pieces of the module loader tests: temp modules, filter configs, a static
 * module server on a port the OS picks.
 *
 * @module
 */

import type { SandboxConfig, StreamFilterConfig } from "../../../src/config/types.ts";
import type { FactoryContext, PluginCaller } from "../../../src/filter/api.ts";
import { loadFilterModule } from "../../../src/module/loader.ts";
import { createInProcessProxy, type InProcessProxy } from "../../../src/proxy/in_process.ts";

/** A filter config for `module`, as the config loader would make it. */
export function moduleFilter(
  module: string,
  extra: Partial<StreamFilterConfig> = {},
): StreamFilterConfig {
  return {
    type: "module",
    name: "mod",
    config: {},
    failureMode: "closed",
    module,
    export: "createStreamFilterFactory",
    position: { file: "/etc/mosaic/config.yaml", line: 12, path: "servers[0].listeners[0]" },
    ...extra,
  };
}

/** A sandbox config with a timeout, as the config loader would make it. */
export function sandbox(
  permissions: Record<string, unknown> = {},
  timeoutMs = 5000,
): SandboxConfig {
  return { isolation: "worker", permissions, timeoutMs };
}

/** A factory context whose logger keeps its lines. */
export function factoryContext(lines: string[] = [], plugins?: PluginCaller): FactoryContext {
  const keep = (level: string) => (message: string) => lines.push(`${level} ${message}`);
  return {
    name: "mod",
    listener: "test",
    configFile: "/etc/mosaic/config.yaml",
    logger: { debug: keep("debug"), info: keep("info"), warn: keep("warn"), error: keep("error") },
    plugins: plugins ?? { call: (name) => Promise.reject(new Error(`no plugin ${name}`)) },
  };
}

/** A temp directory that removes itself. */
export async function tempDir(): Promise<{ path: string } & AsyncDisposable> {
  const path = await Deno.makeTempDir({ prefix: "mosaic-module-" });
  return {
    path,
    [Symbol.asyncDispose]: () => Deno.remove(path, { recursive: true }),
  };
}

/** Writes `source` to `dir/name` and returns its file URL. */
export async function writeModule(dir: string, name: string, source: string): Promise<string> {
  const path = `${dir}/${name}`;
  await Deno.writeTextFile(path, source);
  return new URL(`file://${path}`).href;
}

/** A local HTTP server for modules: path → [status, body]. */
export function serveModules(
  routes: Record<string, [number, string]>,
): { base: string; requests: string[] } & AsyncDisposable {
  const requests: string[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (request) => {
    const url = new URL(request.url);
    requests.push(url.pathname + url.search);
    const route = routes[url.pathname];
    if (route === undefined) return new Response("not found", { status: 404 });
    return new Response(route[1], {
      status: route[0],
      headers: { "content-type": "application/typescript" },
    });
  });
  return {
    base: `http://127.0.0.1:${server.addr.port}`,
    requests,
    [Symbol.asyncDispose]: () => server.shutdown(),
  };
}

/** A loopback port nothing listens on (bound, then released). */
export function closedPort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

/** A module whose filter adds header `x-from` = `tag` and passes. */
export function taggingModule(tag: string): string {
  return `
import type { CreateStreamFilterFactory } from "../../../mod.ts";
export const createStreamFilterFactory: CreateStreamFilterFactory = () => ({
  createFilterChain(chain) {
    chain.addReceiver({ onReceive(s) { s.headers.set("x-from", ${
    JSON.stringify(tag)
  }); return "continue"; } }, "before_route");
  },
});
`;
}

/** Plugins that echo the request's header, with status 7 for `checker` and -1 otherwise. */
export const echoPlugins: PluginCaller = {
  call: (name, request) =>
    Promise.resolve({
      header: request.header ?? {},
      trailer: {},
      body: new Uint8Array(),
      status: name === "checker" ? 7 : -1,
    }),
};

/** Options of {@linkcode withModuleProxy}. */
export interface ModuleProxyOptions {
  /** The filter's name. */
  name: string;
  /** The module URL. */
  module: string;
  /** @default {"closed"} */
  failureMode?: "open" | "closed";
  /** The filter's sandbox. */
  sandbox: SandboxConfig;
  /** Whether the upstream's answer names the request path too. */
  upstreamPath?: boolean;
}

/**
 * Runs `body` against an in-process proxy whose one filter is the sandboxed module, with
 * {@linkcode echoPlugins}, and an upstream that answers with the request as JSON; closes
 * the proxy after.
 */
export async function withModuleProxy(
  options: ModuleProxyOptions,
  body: (proxy: InProcessProxy) => Promise<void>,
): Promise<void> {
  const proxy = await createInProcessProxy({
    streamFilters: [{
      type: "module",
      name: options.name,
      module: options.module,
      failureMode: options.failureMode ?? "closed",
      sandbox: options.sandbox,
    }],
    resolveModule: loadFilterModule,
    plugins: echoPlugins,
    upstream: async (request) => {
      const headers = Object.fromEntries(request.headers);
      return Response.json(
        options.upstreamPath
          ? { path: new URL(request.url).pathname, headers, body: await request.text() }
          : { headers, body: await request.text() },
      );
    },
  });
  try {
    await body(proxy);
  } finally {
    await proxy.close();
  }
}
