/**
 * `plugin`: the generic agent for an out-of-process plugin (MOSN's plugin filter, which
 * MOSN writes by hand for each plugin). It calls the plugin once per configured phase
 * with the headers (and the body, when configured) in one message, and applies the
 * answer:
 *
 * - status -1 (MOSN's checker convention): answer 403 and stop;
 * - status >= 100: answer with that status, the returned headers and body;
 * - otherwise: set the returned headers on the request (an empty value deletes one),
 *   replace the body with a returned non-empty body, and go on.
 *
 * When the call fails (timeout, error, plugin down or disabled), `failure_mode: closed`
 * (the default) answers 503 and `open` goes on as if the filter were absent.
 *
 * ```yaml
 * stream_filters:
 *   - type: plugin
 *     config:
 *       plugin: checker          # a name of the top-level `plugins:` map
 *       timeout: 1s              # a Go duration; default 1s
 *       failure_mode: closed     # closed (503) | open (continue)
 *       phase: before_route      # before_route | after_route | after_choose_host
 *       response: false          # also call the plugin with the response (before_send)
 *       body: false              # send the body too
 * plugins:
 *   checker: { command: [python3, checker.py], network: unix }
 * ```
 *
 * The request message carries the headers (lower-case names) plus `:method` and `:path`,
 * and `type` is the phase name; in `before_send` the headers are the response's plus
 * `:status`. Returned header names starting with `:` are ignored.
 *
 * A route's `per_filter_config` may override `plugin`, `timeout`, `failure_mode` and
 * `body`; `phase` and `response` are fixed by the listener's config.
 *
 * Status: alpha. Safe against untrusted downstreams as far as the plugin is.
 *
 * @module
 */

import type {
  CreateStreamFilterFactory,
  PluginCaller,
  PluginResponse,
  ReceiverFilter,
  RequestStream,
  ResponseStream,
  SenderFilter,
} from "../../../mod.ts";
import { parsePluginFilterConfig, type PluginFilterSettings } from "./config.ts";

export { parseDurationMs, parsePluginFilterConfig, PluginFilterConfigError } from "./config.ts";
export type { PluginFilterSettings } from "./config.ts";

const parsed = new WeakSet<object>();

/** Parses a `plugin` filter config (or a `per_filter_config` override), once at load. */
function parseConfig(
  config: unknown,
  context?: { source: "config" | "per_filter_config" },
): PluginFilterSettings {
  const settings = parsePluginFilterConfig(config, context?.source ?? "config");
  parsed.add(settings);
  return settings;
}

function settingsOf(config: unknown, where: "config" | "per_filter_config") {
  return parsed.has(config as object)
    ? config as PluginFilterSettings
    : parseConfig(config, { source: where });
}

/** Creates the `plugin` filter's factory. */
export const createStreamFilterFactory: CreateStreamFilterFactory = (config, context) => {
  const settings = settingsOf(config, "config");
  const plugins = context.plugins;

  // The loader parsed every override at load; an embedder that skipped it gets them
  // parsed here, once each.
  const late = new WeakMap<object, PluginFilterSettings>();
  function effective(streamConfig: unknown): PluginFilterSettings {
    if (streamConfig === undefined || streamConfig === settings) return settings;
    if (parsed.has(streamConfig as object)) return streamConfig as PluginFilterSettings;
    if (typeof streamConfig !== "object" || streamConfig === null) {
      return settingsOf(streamConfig, "per_filter_config");
    }
    let s = late.get(streamConfig);
    if (s === undefined) {
      s = settingsOf(streamConfig, "per_filter_config");
      late.set(streamConfig, s);
    }
    return s;
  }

  // One filter object serves every stream: it keeps no per-stream state.
  const receiver: ReceiverFilter = {
    onReceive: (stream) => onRequest(stream, effective(stream.config), plugins),
  };
  const sender: SenderFilter = {
    append: (stream) => onResponse(stream, effective(stream.config), plugins),
  };
  return {
    createFilterChain(chain) {
      chain.addReceiver(receiver, settings.phase);
      if (settings.response) chain.addSender(sender);
    },
  };
};
createStreamFilterFactory.parseConfig = parseConfig;

function headerMap(headers: Headers): Record<string, string> {
  const map: Record<string, string> = {};
  for (const [name, value] of headers) map[name] = value;
  return map;
}

/** Sets returned headers: an empty value deletes, `:`-names are skipped. */
function applyHeaders(target: Headers, returned: Record<string, string>): void {
  for (const name in returned) {
    if (name.startsWith(":")) continue;
    const value = returned[name];
    if (value === "") target.delete(name);
    else target.set(name, value);
  }
}

function returnedHeaders(returned: Record<string, string>): Headers {
  const headers = new Headers();
  applyHeaders(headers, returned);
  return headers;
}

function checkStatus(status: number): void {
  if ((status >= 100 && status < 200) || status > 599) {
    throw new RangeError(`the plugin answered status ${status}, which is not a final status`);
  }
}

async function onRequest(
  stream: RequestStream,
  s: PluginFilterSettings,
  plugins: PluginCaller,
): Promise<"continue" | "stop"> {
  let answer: PluginResponse;
  try {
    const header = headerMap(stream.headers);
    header[":method"] = stream.method;
    header[":path"] = stream.path;
    const body = s.body ? await stream.body() : undefined;
    answer = await plugins.call(s.plugin, { header, body, type: stream.phase }, {
      timeoutMs: s.timeoutMs,
    });
    checkStatus(answer.status);
  } catch (err) {
    return requestFailed(stream, s, err);
  }
  try {
    if (answer.status === -1 || answer.status >= 100) {
      stream.respond(answer.status === -1 ? 403 : answer.status, {
        headers: returnedHeaders(answer.header),
        body: answer.body,
      });
      return "stop";
    }
    applyHeaders(stream.headers, answer.header);
    if (answer.body.length > 0) stream.setBody(answer.body);
    return "continue";
  } catch (err) {
    return requestFailed(stream, s, err);
  }
}

function requestFailed(
  stream: RequestStream,
  s: PluginFilterSettings,
  err: unknown,
): "continue" | "stop" {
  const error = err instanceof Error ? err.message : String(err);
  if (s.failureMode === "open") {
    stream.logger.warn(`Plugin call failed, going on (failure_mode open): ${error}`, { error });
    return "continue";
  }
  stream.logger.error(`Plugin call failed, answering 503: ${error}`, { error });
  stream.respond(503, { body: `plugin ${s.plugin} unavailable\n` });
  return "stop";
}

async function onResponse(
  stream: ResponseStream,
  s: PluginFilterSettings,
  plugins: PluginCaller,
): Promise<"continue"> {
  let answer: PluginResponse;
  try {
    const header = headerMap(stream.headers);
    header[":status"] = String(stream.status);
    const body = s.body ? await stream.body() : undefined;
    answer = await plugins.call(s.plugin, { header, body, type: "before_send" }, {
      timeoutMs: s.timeoutMs,
    });
    checkStatus(answer.status);
    if (answer.status === -1 || answer.status >= 100) {
      stream.status = answer.status === -1 ? 403 : answer.status;
      applyHeaders(stream.headers, answer.header);
      stream.setBody(answer.body);
    } else {
      applyHeaders(stream.headers, answer.header);
      if (answer.body.length > 0) stream.setBody(answer.body);
    }
  } catch (err) {
    const error = err instanceof Error ? err.message : String(err);
    if (s.failureMode === "open") {
      stream.logger.warn(`Plugin call failed, going on (failure_mode open): ${error}`, { error });
    } else {
      stream.logger.error(`Plugin call failed, answering 503: ${error}`, { error });
      stream.status = 503;
      stream.setBody(`plugin ${s.plugin} unavailable\n`);
    }
  }
  return "continue";
}
