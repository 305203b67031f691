/**
 * An API key filter, loaded by URL (`type: module`, MOSN's `.so` filter), that leaves the
 * decision to a plugin in another process (MOSN's multi-process framework): here the Go
 * plugin `go/main.go`, built on hashicorp/go-plugin. The module reaches the plugin through
 * `context.plugins`, the same caller the built-in `plugin` filter uses, and imports only
 * types from Mosaic.
 *
 * For every request it removes the headers it will copy (a client cannot send its own
 * `x-user`), calls the plugin with the request headers (lower-case names, plus `:method`
 * and `:path`), and applies the answer:
 *
 * - status 0: the answer's headers named in `copy` are set on the request, which goes on;
 * - status -1 (MOSN's checker convention): 403 with the answer's body;
 * - status 200–599: that status, with the answer's headers and body;
 * - a failed call (plugin down, timeout, another status): 503.
 *
 * ```yaml
 * stream_filters:
 *   - type: module
 *     module: ./key_filter.ts
 *     config:
 *       plugin: checker        # a name of the top-level `plugins:` map
 *       copy: [x-user]         # the default
 *       timeout_ms: 1000       # the default
 * ```
 *
 * @module
 */

import type {
  CreateStreamFilterFactory,
  PluginCaller,
  PluginResponse,
  ReceiverFilter,
  RequestStream,
} from "../../mod.ts";

/** The filter's config, checked once when it loads. */
interface KeyFilterConfig {
  plugin: string;
  copy: string[];
  timeoutMs: number;
}

/** The conventional export Mosaic looks the factory up by (MOSN's `CreateFilterFactory`). */
export const createStreamFilterFactory: CreateStreamFilterFactory = (config, context) => {
  const settings = parseConfig(config);
  const plugins = context.plugins;
  // One filter object serves every stream: it keeps no per-stream state.
  const filter: ReceiverFilter = { onReceive: (stream) => check(stream, settings, plugins) };
  return {
    createFilterChain(chain) {
      chain.addReceiver(filter, "before_route");
    },
  };
};

async function check(
  stream: RequestStream,
  settings: KeyFilterConfig,
  plugins: PluginCaller,
): Promise<"continue" | "stop"> {
  for (const name of settings.copy) stream.headers.delete(name);
  const header: Record<string, string> = { ":method": stream.method, ":path": stream.path };
  for (const [name, value] of stream.headers) header[name] = value;

  let answer: PluginResponse;
  try {
    answer = await plugins.call(settings.plugin, { header, type: "auth" }, {
      timeoutMs: settings.timeoutMs,
    });
  } catch (err) {
    return unavailable(stream, settings, err instanceof Error ? err.message : String(err));
  }

  if (answer.status === 0) {
    for (const name of settings.copy) {
      const value = answer.header[name];
      if (value) stream.headers.set(name, value);
    }
    return "continue";
  }
  if (answer.status === -1 || (answer.status >= 200 && answer.status <= 599)) {
    const headers = new Headers();
    for (const name in answer.header) {
      if (!name.startsWith(":")) headers.set(name, answer.header[name]);
    }
    stream.respond(answer.status === -1 ? 403 : answer.status, { headers, body: answer.body });
    return "stop";
  }
  return unavailable(stream, settings, `the plugin answered status ${answer.status}`);
}

function unavailable(
  stream: RequestStream,
  settings: KeyFilterConfig,
  error: string,
): "stop" {
  stream.logger.error(`Plugin ${settings.plugin} failed, answering 503: ${error}`, { error });
  stream.respond(503, { body: `plugin ${settings.plugin} unavailable\n` });
  return "stop";
}

/** Reads `{ plugin, copy?, timeout_ms? }`; a bad config stops the load with this message. */
function parseConfig(config: unknown): KeyFilterConfig {
  if (typeof config !== "object" || config === null || Array.isArray(config)) {
    throw new TypeError("key_filter: config must be a map with at least `plugin`");
  }
  const { plugin, copy = ["x-user"], timeout_ms: timeoutMs = 1000, ...rest } = config as Record<
    string,
    unknown
  >;
  const unknown = Object.keys(rest);
  if (unknown.length > 0) {
    throw new TypeError(`key_filter: unknown config field ${unknown.join(", ")}`);
  }
  if (typeof plugin !== "string" || plugin === "") {
    throw new TypeError("key_filter: config.plugin must name a plugin of `plugins:`");
  }
  if (!Array.isArray(copy) || !copy.every((name) => typeof name === "string" && name !== "")) {
    throw new TypeError("key_filter: config.copy must be a list of header names");
  }
  if (typeof timeoutMs !== "number" || !(timeoutMs > 0)) {
    throw new TypeError("key_filter: config.timeout_ms must be a positive number");
  }
  return { plugin, copy: copy.map((name) => name.toLowerCase()), timeoutMs };
}
