/**
 * The per-stream proxy-wasm filter: the request callbacks run as a receiver filter in
 * `before_route` (where MOSN runs its proxywasm filter), the response callbacks as a
 * sender filter. Bodies are buffered once and handed to the body callbacks whole
 * (end_of_stream set). A stream the guest pauses waits for `proxy_continue_stream`,
 * a local response or `proxy_close_stream`.
 *
 * @module
 */

import type {
  FilterStatus,
  ReceiverFilter,
  RequestStream,
  ResponseStream,
  SenderFilter,
} from "../../../mod.ts";
import { isDataPause, isPause } from "./abi.ts";
import type { Plugin } from "./plugin.ts";
import type { LocalResponse, StreamState, WasmVm } from "./vm.ts";

/** Finds the plugin for a stream's effective config. */
export type PluginFor = (config: unknown) => Plugin | Promise<Plugin>;

const NO_BODY = new Set(["GET", "HEAD", "OPTIONS", "TRACE", "DELETE", "CONNECT"]);

/** True when the request may have a body (h2 may send one without content-length). */
function hasBody(method: string, headers: Headers): boolean {
  const length = headers.get("content-length");
  if (length !== null) return length !== "0";
  return headers.has("transfer-encoding") || !NO_BODY.has(method);
}

function respondLocal(s: RequestStream, local: LocalResponse): void {
  s.respond(local.status, { headers: local.headers, body: local.body });
}

const CLOSED: LocalResponse = {
  status: 503,
  headers: [],
  body: new TextEncoder().encode("stream closed by wasm filter\n"),
};

/** One stream's filter: receiver and sender at once. */
export class ProxyWasmFilter implements ReceiverFilter, SenderFilter {
  #pluginFor: PluginFor;
  #vm: WasmVm | undefined;
  #state: StreamState | undefined;
  #timeoutMs = 30_000;

  /** Makes the filter of one stream. */
  constructor(pluginFor: PluginFor) {
    this.#pluginFor = pluginFor;
  }

  #begin(plugin: Plugin): StreamState {
    const vm = plugin.acquire();
    this.#vm = vm;
    this.#timeoutMs = plugin.config.pauseTimeoutMs;
    const state = vm.createStream();
    this.#state = state;
    return state;
  }

  /** Runs `proxy_on_request_headers` and, when the request has a body, `_body`. */
  onReceive(s: RequestStream): FilterStatus | Promise<FilterStatus> {
    const plugin = this.#pluginFor(s.config);
    if (plugin instanceof Promise) return plugin.then((p) => this.#receive(s, p));
    return this.#receive(s, plugin);
  }

  #receive(s: RequestStream, plugin: Plugin): FilterStatus | Promise<FilterStatus> {
    const state = this.#begin(plugin);
    state.request = s;
    state.metadata = s.metadata;
    const body = hasBody(s.method, s.headers);
    const vm = this.#vm!;
    const count = [...s.headers.keys()].length + 3;
    state.paused = isPause(vm.onStream(state, "proxy_on_request_headers", count, body ? 0 : 1));
    if (state.local !== undefined) return respondLocal(s, state.local), "stop";
    if (state.closed) return respondLocal(s, CLOSED), "stop";
    if (!body && !state.paused) return "continue";
    return this.#receiveRest(s, plugin, body);
  }

  async #receiveRest(s: RequestStream, plugin: Plugin, body: boolean): Promise<FilterStatus> {
    const state = this.#state!;
    const vm = this.#vm!;
    if (body && vm.has("proxy_on_request_body")) {
      state.requestBody = await s.body({ maxBytes: plugin.config.maxBodyBytes });
      if (state.local === undefined && !state.closed && state.requestBody.length > 0) {
        const paused = isDataPause(
          vm.onStream(state, "proxy_on_request_body", state.requestBody.length, 1),
        );
        state.paused ||= paused;
      }
    }
    await state.waitForResume(this.#timeoutMs);
    if (state.local !== undefined) return respondLocal(s, state.local), "stop";
    if (state.closed) return respondLocal(s, CLOSED), "stop";
    if (state.requestBodyChanged && state.requestBody !== undefined) s.setBody(state.requestBody);
    state.requestBody = undefined;
    return "continue";
  }

  /** Runs `proxy_on_response_headers` and, when the module wants bodies, `_body`. */
  append(s: ResponseStream): FilterStatus | Promise<FilterStatus> {
    let state = this.#state;
    if (this.#vm?.broken) return "continue";
    if (state === undefined) {
      // An earlier filter answered before this one's receiver ran.
      const plugin = this.#pluginFor(s.config);
      if (plugin instanceof Promise) return plugin.then((p) => this.#append(s, this.#begin(p)));
      state = this.#begin(plugin);
    }
    return this.#append(s, state);
  }

  #append(s: ResponseStream, state: StreamState): FilterStatus | Promise<FilterStatus> {
    const vm = this.#vm!;
    state.response = s;
    state.metadata = s.metadata;
    state.local = undefined;
    const wantsBody = vm.has("proxy_on_response_body") && s.status !== 204 && s.status !== 304 &&
      s.request.method !== "HEAD";
    const count = [...s.headers.keys()].length + 1;
    state.paused = isPause(
      vm.onStream(state, "proxy_on_response_headers", count, wantsBody ? 0 : 1),
    );
    if (!wantsBody && !state.paused && state.local === undefined) return "continue";
    return this.#appendRest(s, state, wantsBody);
  }

  async #appendRest(
    s: ResponseStream,
    state: StreamState,
    wantsBody: boolean,
  ): Promise<FilterStatus> {
    const vm = this.#vm!;
    if (wantsBody && state.local === undefined) {
      state.responseBody = await s.body({ maxBytes: 16 * 1024 * 1024 });
      const paused = isDataPause(
        vm.onStream(state, "proxy_on_response_body", state.responseBody.length, 1),
      );
      state.paused ||= paused;
    }
    await state.waitForResume(this.#timeoutMs);
    const local = state.local ?? (state.closed ? CLOSED : undefined);
    if (local !== undefined) {
      s.status = local.status;
      for (const [k, v] of local.headers) s.headers.set(k, v);
      s.setBody(local.body);
    } else if (state.responseBodyChanged && state.responseBody !== undefined) {
      s.setBody(state.responseBody);
    }
    state.responseBody = undefined;
    return "continue";
  }

  /** Ends the context: `proxy_on_done`, `proxy_on_log`, `proxy_on_delete`. */
  onDestroy(): void {
    const state = this.#state;
    if (state === undefined) return;
    this.#state = undefined;
    state.resume();
    this.#vm?.finishStream(state);
  }
}
