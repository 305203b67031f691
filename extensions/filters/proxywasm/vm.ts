/**
 * One proxy-wasm VM: a WebAssembly instance, the host functions it imports, and the
 * calls into it (root lifecycle, per-stream callbacks). A trap marks the VM broken; the
 * pool (see `plugin.ts`) replaces it.
 *
 * @module
 */

import type { FilterLogger, FilterMetrics, RequestStream, ResponseStream } from "../../../mod.ts";
import { type AbiVersion, abiVersionOf, BufferType, MapType, Result, StreamType } from "./abi.ts";
import type { ProxyWasmConfig } from "./config.ts";
import * as shared from "./shared.ts";

/** A guest call failed: a trap, `proc_exit`, or a call into a broken VM. */
export class WasmTrapError extends Error {
  /** Makes the error. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "WasmTrapError";
  }
}

class ProcExit extends Error {
  constructor(readonly code: number) {
    super(`proc_exit(${code})`);
    this.name = "ProcExit";
  }
}

/** A local response a guest asked for. */
export interface LocalResponse {
  status: number;
  headers: [string, string][];
  body: Uint8Array;
}

/** An http_call's answer, while its callback runs. */
interface CallResponse {
  headers: [string, string][];
  body: Uint8Array;
}

/** What the host knows of one stream context. */
export class StreamState {
  /** The request stream (kept for the response phase: its headers and path). */
  request: RequestStream | undefined;
  /** The response stream, in the sender phase. */
  response: ResponseStream | undefined;
  /** Per-stream values (the filters' shared metadata). */
  metadata: Map<string, unknown> | undefined;
  /** The buffered request body during `proxy_on_request_body`. */
  requestBody: Uint8Array | undefined;
  /** True once the guest changed the request body. */
  requestBodyChanged = false;
  /** The buffered response body during `proxy_on_response_body`. */
  responseBody: Uint8Array | undefined;
  /** True once the guest changed the response body. */
  responseBodyChanged = false;
  /** The local response asked for, if any. */
  local: LocalResponse | undefined;
  /** True when the guest closed the stream. */
  closed = false;
  /** True while a callback paused the stream and nothing resumed it. */
  paused = false;
  /** The http_call answer while its callback runs. */
  callResponse: CallResponse | undefined;
  #wake: (() => void) | undefined;

  /** Makes a stream state for context `id`. */
  constructor(readonly id: number) {}

  /** Resumes a paused stream. */
  resume(): void {
    this.paused = false;
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }

  /** Waits until the guest resumes, answers or closes the stream. */
  waitForResume(timeoutMs: number): Promise<void> {
    if (!this.paused || this.local !== undefined || this.closed) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#wake = undefined;
        reject(new WasmTrapError(`the stream stayed paused for ${timeoutMs} ms`));
      }, timeoutMs);
      this.#wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }
}

type Exports = Record<string, unknown> & { memory: WebAssembly.Memory };
type Fn = (...args: unknown[]) => unknown;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** What a VM is made with. */
export interface VmOptions {
  /** The filter's name (`plugin_name`). */
  name: string;
  /** The parsed config (root id, buffers, clusters). */
  config: ProxyWasmConfig;
  /** The filter's logger. */
  logger: FilterLogger;
  /**
   * The filter's metrics (`FactoryContext.metrics`): what the guest defines with
   * `proxy_define_metric` is served as `mosaic_custom_<name>{listener,filter}`.
   */
  metrics?: FilterMetrics;
}

/**
 * A guest metric as the filter's own metric: resolved once, at `proxy_define_metric`,
 * so an update is one addition on a plain object.
 */
interface MirroredMetric {
  /** `proxy_increment_metric`: counters and gauges. */
  add(n: number): void;
  /** `proxy_record_metric`: a counter adds (as Envoy), a gauge sets, a histogram records. */
  record(n: number): void;
}

/** The guest's name as a metric name: letters, digits and `_`, not starting with a digit. */
export function customMetricName(name: string): string {
  const clean = name.replace(/[^a-zA-Z0-9_]/g, "_");
  return /^[0-9]/.test(clean) || clean === "" ? `_${clean}` : clean;
}

function mirrorMetric(
  metrics: FilterMetrics,
  type: "counter" | "gauge" | "histogram",
  name: string,
): MirroredMetric {
  const metricName = customMetricName(name);
  if (type === "counter") {
    const c = metrics.counter(metricName);
    return { add: (n) => c.inc(n), record: (n) => c.inc(n) };
  }
  if (type === "gauge") {
    const g = metrics.gauge(metricName);
    return { add: (n) => g.inc(n), record: (n) => g.set(n) };
  }
  const h = metrics.histogram(metricName);
  return { add: () => {}, record: (n) => h.record(n) };
}

/** One instance of a plugin's module, started (root context configured). */
export class WasmVm {
  /** The module's ABI version. */
  readonly abi: AbiVersion;
  /** True after a trap: the pool replaces the VM, and every further call fails. */
  broken = false;
  #exports: Exports;
  #options: VmOptions;
  #rootId: number;
  #nextId: number;
  #streams = new Map<number, StreamState>();
  #current: StreamState | undefined;
  #bytes: Uint8Array | undefined;
  #view: DataView | undefined;
  #tick: ReturnType<typeof setInterval> | undefined;
  #calls = new Map<number, StreamState | undefined>();
  #nextToken = 1;
  #stdout = "";
  #stderr = "";
  /** The filter's metrics by guest metric id (`shared.defineMetric`'s). */
  #mirrors: (MirroredMetric | undefined)[] = [];

  /**
   * Instantiates and starts the VM: `_initialize` or `_start`, the root context,
   * `proxy_on_vm_start` and `proxy_on_configure`.
   *
   * @throws {Error} when the guest refuses to start or rejects its configuration.
   */
  constructor(module: WebAssembly.Module, options: VmOptions) {
    this.#options = options;
    this.#rootId = options.config.rootContextId;
    this.#nextId = this.#rootId + 1;
    const instance = new WebAssembly.Instance(module, this.#imports(module));
    this.#exports = instance.exports as Exports;
    this.abi = abiVersionOf(Object.keys(this.#exports)) ?? "0.2.1";
    const start = this.#exports._initialize ?? this.#exports._start;
    if (typeof start === "function") {
      try {
        start();
      } catch (error) {
        if (!(error instanceof ProcExit && error.code === 0)) throw error;
      }
    }
    const { config } = options;
    this.#call("proxy_on_context_create", this.#rootId, 0);
    if (this.#call("proxy_on_vm_start", this.#rootId, config.vmConfiguration.length) === 0) {
      throw new Error("the module refused to start (proxy_on_vm_start returned false)");
    }
    if (
      this.#call("proxy_on_configure", this.#rootId, config.pluginConfiguration.length) === 0
    ) {
      throw new Error("the module rejected its configuration (proxy_on_configure returned false)");
    }
  }

  /** True when the module exports `name`. */
  has(name: string): boolean {
    return typeof this.#exports[name] === "function";
  }

  /** Creates a stream context. */
  createStream(): StreamState {
    const state = new StreamState(this.#nextId++);
    this.#streams.set(state.id, state);
    this.#current = state;
    this.#call("proxy_on_context_create", state.id, this.#rootId);
    return state;
  }

  /** Calls a per-stream callback with `state` as the effective context. */
  onStream(state: StreamState, name: string, ...args: number[]): number {
    this.#current = state;
    const eos = this.abi === "0.1.0" && name.endsWith("_headers") ? args.slice(0, 1) : args;
    return Number(this.#call(name, state.id, ...eos) ?? 0);
  }

  /** Ends a stream context: `proxy_on_done`, `proxy_on_log`, `proxy_on_delete`. */
  finishStream(state: StreamState): void {
    if (!this.#streams.delete(state.id) || this.broken) return;
    this.#current = state;
    try {
      this.#call("proxy_on_done", state.id);
      this.#call("proxy_on_log", state.id);
      this.#call("proxy_on_delete", state.id);
    } finally {
      this.#current = undefined;
    }
  }

  /** Stops the VM's timers; the instance is dropped. */
  close(): void {
    if (this.#tick !== undefined) clearInterval(this.#tick);
    this.#tick = undefined;
    this.#streams.clear();
  }

  /** Calls an export (absent ones are no-ops) and marks the VM broken on a trap. */
  #call(name: string, ...args: (number | bigint)[]): unknown {
    if (this.broken) throw new WasmTrapError(`the VM of "${this.#options.name}" is broken`);
    const fn = this.#exports[name];
    if (typeof fn !== "function") return undefined;
    try {
      return (fn as Fn)(...args);
    } catch (error) {
      this.broken = true;
      this.close();
      const what = error instanceof ProcExit ? error.message : String(error);
      throw new WasmTrapError(`${name} trapped: ${what}`, { cause: error });
    }
  }

  // ---- memory ----------------------------------------------------------------------

  #u8(): Uint8Array {
    const buffer = this.#exports.memory.buffer;
    if (this.#bytes === undefined || this.#bytes.buffer !== buffer) {
      this.#bytes = new Uint8Array(buffer);
      this.#view = new DataView(buffer);
    }
    return this.#bytes;
  }

  #dv(): DataView {
    this.#u8();
    return this.#view!;
  }

  #read(ptr: number, len: number): Uint8Array<ArrayBuffer> {
    return this.#u8().slice(ptr, ptr + len);
  }

  #string(ptr: number, len: number): string {
    return decoder.decode(this.#u8().subarray(ptr, ptr + len));
  }

  #u32(ptr: number, value: number): void {
    this.#dv().setUint32(ptr, value, true);
  }

  /** Copies `data` into guest memory (its allocator) and writes pointer and size out. */
  #give(data: Uint8Array, ptrPtr: number, sizePtr: number): number {
    const alloc = (this.#exports.proxy_on_memory_allocate ?? this.#exports.malloc) as Fn;
    const ptr = Number(alloc(data.length === 0 ? 1 : data.length));
    if (ptr === 0 && data.length > 0) return Result.InvalidMemoryAccess;
    this.#u8().set(data, ptr);
    this.#u32(ptrPtr, ptr);
    this.#u32(sizePtr, data.length);
    return Result.Ok;
  }

  // ---- header maps -----------------------------------------------------------------

  #pairs(type: number): [string, string][] | undefined {
    const s = this.#current;
    switch (type) {
      case MapType.RequestHeaders: {
        const r = s?.request;
        if (r === undefined) return undefined;
        return [
          [":method", r.method],
          [":path", r.path],
          [":authority", r.headers.get("host") ?? ""],
          [":scheme", "http"],
          ...[...r.headers].filter(([k]) => k !== "host"),
        ];
      }
      case MapType.ResponseHeaders: {
        const r = s?.response;
        if (r === undefined) return undefined;
        return [[":status", String(r.status)], ...r.headers];
      }
      case MapType.HttpCallResponseHeaders:
        return s?.callResponse?.headers ?? this.#calling?.headers;
      case MapType.RequestTrailers:
      case MapType.ResponseTrailers:
      case MapType.HttpCallResponseTrailers:
        return [];
      default:
        return undefined;
    }
  }

  /** The http_call response whose callback runs when no stream is current. */
  #calling: CallResponse | undefined;

  #headerGet(type: number, key: string): string | undefined {
    const lower = key.toLowerCase();
    if (type === MapType.RequestHeaders) {
      const r = this.#current?.request;
      if (r === undefined) return undefined;
      // Pseudo-headers straight from the stream: the pairs would copy every header.
      switch (lower) {
        case ":method":
          return r.method;
        case ":path":
          return r.path;
        case ":authority":
          return r.headers.get("host") ?? "";
        case ":scheme":
          return "http";
      }
      return lower.startsWith(":") ? undefined : r.headers.get(lower) ?? undefined;
    }
    if (type === MapType.ResponseHeaders) {
      const r = this.#current?.response;
      if (r === undefined) return undefined;
      if (lower === ":status") return String(r.status);
      return lower.startsWith(":") ? undefined : r.headers.get(lower) ?? undefined;
    }
    return this.#pairs(type)?.find(([k]) => k === lower)?.[1];
  }

  /** Sets (`mode` set/add) or removes (value undefined) a header of a writable map. */
  #headerWrite(type: number, key: string, value: string | undefined, mode: "set" | "add"): number {
    const s = this.#current;
    const lower = key.toLowerCase();
    try {
      if (type === MapType.RequestHeaders) {
        const r = s?.request;
        if (r === undefined || s?.response !== undefined) return Result.NotFound;
        if (lower === ":path") {
          if (value !== undefined) r.path = value;
        } else if (lower === ":authority") {
          if (value !== undefined) r.headers.set("host", value);
        } else if (lower.startsWith(":")) {
          return Result.Ok;
        } else if (value === undefined) r.headers.delete(lower);
        else if (mode === "add") r.headers.append(lower, value);
        else r.headers.set(lower, value);
        return Result.Ok;
      }
      if (type === MapType.ResponseHeaders) {
        const r = s?.response;
        if (r === undefined) return Result.NotFound;
        if (lower === ":status") {
          const status = Number(value);
          if (Number.isInteger(status) && status >= 200 && status <= 599) r.status = status;
        } else if (lower.startsWith(":")) {
          return Result.Ok;
        } else if (value === undefined) r.headers.delete(lower);
        else if (mode === "add") r.headers.append(lower, value);
        else r.headers.set(lower, value);
        return Result.Ok;
      }
    } catch {
      return Result.BadArgument;
    }
    // Trailers: the filter API has none, so writes have nowhere to go.
    return type === MapType.RequestTrailers || type === MapType.ResponseTrailers
      ? Result.Ok
      : Result.NotFound;
  }

  #setPairs(type: number, pairs: [string, string][]): number {
    const s = this.#current;
    const headers = type === MapType.RequestHeaders
      ? s?.request?.headers
      : type === MapType.ResponseHeaders
      ? s?.response?.headers
      : undefined;
    if (headers === undefined) return this.#headerWrite(type, "", undefined, "set");
    for (const key of [...headers.keys()]) {
      if (!(type === MapType.RequestHeaders && key === "host")) headers.delete(key);
    }
    for (const [k, v] of pairs) {
      const result = this.#headerWrite(type, k, v, "add");
      if (result !== Result.Ok) return result;
    }
    return Result.Ok;
  }

  // ---- buffers -----------------------------------------------------------------------

  #buffer(type: number): Uint8Array | undefined {
    const s = this.#current;
    switch (type) {
      case BufferType.RequestBody:
        return s?.requestBody;
      case BufferType.ResponseBody:
        return s?.responseBody;
      case BufferType.HttpCallResponseBody:
        return s?.callResponse?.body ?? this.#calling?.body;
      case BufferType.VmConfiguration:
        return this.#options.config.vmConfiguration;
      case BufferType.PluginConfiguration:
        return this.#options.config.pluginConfiguration;
      default:
        return undefined;
    }
  }

  #setBuffer(type: number, start: number, length: number, data: Uint8Array): number {
    const s = this.#current;
    const old = this.#buffer(type);
    if (s === undefined || old === undefined) return Result.NotFound;
    if (type !== BufferType.RequestBody && type !== BufferType.ResponseBody) {
      return Result.BadArgument;
    }
    const from = Math.min(start, old.length);
    const to = Math.min(from + length, old.length);
    const next = new Uint8Array(from + data.length + (old.length - to));
    next.set(old.subarray(0, from), 0);
    next.set(data, from);
    next.set(old.subarray(to), from + data.length);
    if (type === BufferType.RequestBody) {
      s.requestBody = next;
      s.requestBodyChanged = true;
    } else {
      s.responseBody = next;
      s.responseBodyChanged = true;
    }
    return Result.Ok;
  }

  // ---- properties --------------------------------------------------------------------

  #property(path: string[]): Uint8Array | undefined {
    const s = this.#current;
    const request = s?.request ?? s?.response?.request;
    const key = path.join(".");
    const text = (v: string | undefined | null) => v == null ? undefined : encoder.encode(v);
    const int = (v: number | undefined) => {
      if (v === undefined) return undefined;
      const bytes = new Uint8Array(8);
      new DataView(bytes.buffer).setBigInt64(0, BigInt(v), true);
      return bytes;
    };
    switch (key) {
      case "plugin_root_id":
      case "root_id":
        return text(this.#options.config.rootId);
      case "plugin_name":
        return text(this.#options.name);
      case "plugin_vm_id":
      case "vm_id":
        return text(this.#options.config.vmId);
      case "request.path":
        return text(request?.path);
      case "request.url_path":
        return text(request?.path.split("?")[0]);
      case "request.method":
        return text(request?.method);
      case "request.scheme":
        return text(request === undefined ? undefined : "http");
      case "request.host":
        return text(request?.headers.get("host"));
      case "request.id":
        return text(request?.headers.get("x-request-id"));
      case "request.useragent":
        return text(request?.headers.get("user-agent"));
      case "request.referer":
        return text(request?.headers.get("referer"));
      case "source.address":
        return request && text(`${request.remoteAddr.hostname}:${request.remoteAddr.port}`);
      case "source.port":
        return int(request?.remoteAddr.port);
      case "route_name":
      case "xds.route_name":
        return text((s?.request?.route ?? s?.response?.route)?.name);
      case "cluster_name":
      case "xds.cluster_name":
        return text((s?.request?.route ?? s?.response?.route)?.clusterName);
      case "upstream.address":
        return text((s?.request?.host ?? s?.response?.host)?.address);
      case "response.code":
        return int(s?.response?.status);
    }
    if (path[0] === "request" && path[1] === "headers" && path.length === 3) {
      return text(request?.headers.get(path[2]));
    }
    if (path[0] === "response" && path[1] === "headers" && path.length === 3) {
      return text(s?.response?.headers.get(path[2]));
    }
    const value = s?.metadata?.get(key);
    if (typeof value === "string") return encoder.encode(value);
    if (value instanceof Uint8Array) return value;
    return undefined;
  }

  // ---- http_call ---------------------------------------------------------------------

  #httpCall(
    cluster: string,
    headers: [string, string][],
    body: Uint8Array,
    timeoutMs: number,
  ): number | undefined {
    const base = this.#options.config.httpCallClusters.get(cluster) ??
      (/^[\w.-]+:\d+$/.test(cluster) ? `http://${cluster}` : undefined);
    if (base === undefined) return undefined;
    const get = (name: string) => headers.find(([k]) => k === name)?.[1];
    const method = get(":method") ?? "GET";
    const url = new URL(get(":path") ?? "/", base);
    const token = this.#nextToken++;
    const origin = this.#current;
    this.#calls.set(token, origin);
    const init: RequestInit = {
      method,
      headers: headers.filter(([k]) => !k.startsWith(":")),
      body: body.length === 0 || method === "GET" || method === "HEAD" ? undefined : body.slice(),
      signal: AbortSignal.timeout(timeoutMs > 0 ? timeoutMs : 30_000),
    };
    const authority = get(":authority");
    if (authority !== undefined && authority !== url.host) {
      (init.headers as [string, string][]).push(["host", authority]);
    }
    fetch(url, init).then(
      async (response) => ({
        headers: [[":status", String(response.status)], ...response.headers] as [string, string][],
        body: new Uint8Array(await response.arrayBuffer()),
      }),
      (error) => {
        this.#options.logger.warn("proxy_http_call failed", { cluster, error: String(error) });
        return undefined;
      },
    ).then((answer) => this.#deliverCall(token, answer));
    return token;
  }

  #deliverCall(token: number, answer: CallResponse | undefined): void {
    if (!this.#calls.has(token) || this.broken) return;
    const origin = this.#calls.get(token);
    this.#calls.delete(token);
    if (origin !== undefined && !this.#streams.has(origin.id)) return;
    const response = answer ?? { headers: [], body: new Uint8Array() };
    this.#current = origin;
    if (origin !== undefined) origin.callResponse = response;
    this.#calling = response;
    try {
      this.#call(
        "proxy_on_http_call_response",
        this.#rootId,
        token,
        answer === undefined ? 0 : response.headers.length,
        response.body.length,
        0,
      );
    } catch (error) {
      this.#options.logger.error("proxy_on_http_call_response trapped", {
        error: String(error),
      });
      if (origin !== undefined) {
        origin.local = { status: 500, headers: [], body: encoder.encode("wasm filter trapped\n") };
        origin.resume();
      }
    } finally {
      if (origin !== undefined) origin.callResponse = undefined;
      this.#calling = undefined;
    }
  }

  // ---- logging -----------------------------------------------------------------------

  #log(level: number, message: string): void {
    const logger = this.#options.logger;
    if (level < this.#options.config.logLevel) return;
    if (level <= 1) logger.debug(message);
    else if (level === 2) logger.info(message);
    else if (level === 3) logger.warn(message);
    else logger.error(message);
  }

  #stdio(fd: number, text: string): void {
    const buffered = (fd === 2 ? this.#stderr : this.#stdout) + text;
    const lines = buffered.split("\n");
    const rest = lines.pop() ?? "";
    for (const line of lines) if (line !== "") this.#log(fd === 2 ? 3 : 2, line);
    if (fd === 2) this.#stderr = rest.slice(-4096);
    else this.#stdout = rest.slice(-4096);
  }

  // ---- imports -----------------------------------------------------------------------

  #decodePairs(ptr: number, size: number): [string, string][] {
    if (size === 0) return [];
    const bytes = this.#read(ptr, size);
    const view = new DataView(bytes.buffer);
    const count = view.getUint32(0, true);
    const pairs: [string, string][] = [];
    let data = 4 + count * 8;
    for (let i = 0; i < count; i++) {
      const kl = view.getUint32(4 + i * 8, true);
      const vl = view.getUint32(8 + i * 8, true);
      const key = decoder.decode(bytes.subarray(data, data + kl));
      data += kl + 1;
      const value = decoder.decode(bytes.subarray(data, data + vl));
      data += vl + 1;
      pairs.push([key, value]);
    }
    return pairs;
  }

  #encodePairs(pairs: [string, string][]): Uint8Array {
    const encoded = pairs.map(([k, v]) => [encoder.encode(k), encoder.encode(v)]);
    let size = 4 + encoded.length * 8;
    for (const [k, v] of encoded) size += k.length + v.length + 2;
    const bytes = new Uint8Array(size);
    const view = new DataView(bytes.buffer);
    view.setUint32(0, encoded.length, true);
    let data = 4 + encoded.length * 8;
    encoded.forEach(([k, v], i) => {
      view.setUint32(4 + i * 8, k.length, true);
      view.setUint32(8 + i * 8, v.length, true);
      bytes.set(k, data);
      data += k.length + 1;
      bytes.set(v, data);
      data += v.length + 1;
    });
    return bytes;
  }

  #imports(module: WebAssembly.Module): WebAssembly.Imports {
    const env = this.#env();
    const wasi = this.#wasi();
    const imports: Record<string, Record<string, WebAssembly.ImportValue>> = {};
    for (const { module: from, name, kind } of WebAssembly.Module.imports(module)) {
      const table = imports[from] ??= {};
      if (kind !== "function") continue;
      const known = from === "env" ? env[name] : from.startsWith("wasi_") ? wasi[name] : undefined;
      if (known !== undefined) table[name] = known;
      else {
        // Unknown imports answer Unimplemented (ENOSYS for WASI) instead of failing the load.
        const answer = from.startsWith("wasi_") ? 52 : Result.Unimplemented;
        table[name] = () => answer;
      }
    }
    return imports;
  }

  #wasi(): Record<string, Fn> {
    const fdWrite = (fd: number, iovs: number, count: number, written: number) => {
      const dv = this.#dv();
      let total = 0;
      let text = "";
      for (let i = 0; i < count; i++) {
        const ptr = dv.getUint32(iovs + i * 8, true);
        const len = dv.getUint32(iovs + i * 8 + 4, true);
        text += this.#string(ptr, len);
        total += len;
      }
      if (fd === 1 || fd === 2) this.#stdio(fd, text);
      this.#u32(written, total);
      return 0;
    };
    const zeroPair = (a: number, b: number) => {
      this.#u32(a, 0);
      this.#u32(b, 0);
      return 0;
    };
    return {
      fd_write: fdWrite as Fn,
      proc_exit: ((code: number) => {
        throw new ProcExit(code);
      }) as Fn,
      clock_time_get: ((_id: number, _precision: bigint, out: number) => {
        this.#dv().setBigUint64(out, BigInt(Date.now()) * 1_000_000n, true);
        return 0;
      }) as Fn,
      random_get: ((ptr: number, len: number) => {
        const bytes = this.#u8().subarray(ptr, ptr + len);
        for (let i = 0; i < len; i += 65536) crypto.getRandomValues(bytes.subarray(i, i + 65536));
        return 0;
      }) as Fn,
      environ_sizes_get: zeroPair as Fn,
      environ_get: () => 0,
      args_sizes_get: zeroPair as Fn,
      args_get: () => 0,
      sched_yield: () => 0,
      fd_close: () => 0,
      fd_fdstat_get: () => 8,
      fd_prestat_get: () => 8,
      fd_seek: () => 8,
    };
  }

  #env(): Record<string, Fn> {
    const str = (p: number, l: number) => this.#string(p, l);
    const continueStream = (type: number) => {
      const s = this.#current;
      if (s === undefined) return Result.NotFound;
      if (type === StreamType.Request || type === StreamType.Response) s.resume();
      return Result.Ok;
    };
    const vmId = this.#options.config.vmId;
    const env: Record<string, Fn> = {
      proxy_log: ((level: number, p: number, l: number) => {
        this.#log(level, str(p, l));
        return Result.Ok;
      }) as Fn,
      proxy_get_log_level: ((out: number) => {
        this.#u32(out, this.#options.config.logLevel);
        return Result.Ok;
      }) as Fn,
      proxy_get_current_time_nanoseconds: ((out: number) => {
        this.#dv().setBigUint64(out, BigInt(Date.now()) * 1_000_000n, true);
        return Result.Ok;
      }) as Fn,
      proxy_set_tick_period_milliseconds: ((ms: number) => {
        if (this.#tick !== undefined) clearInterval(this.#tick);
        this.#tick = undefined;
        if (ms > 0) {
          const tick = setInterval(() => {
            this.#current = undefined;
            try {
              this.#call("proxy_on_tick", this.#rootId);
            } catch (error) {
              this.#options.logger.error("proxy_on_tick trapped", { error: String(error) });
            }
          }, ms);
          Deno.unrefTimer(tick);
          this.#tick = tick;
        }
        return Result.Ok;
      }) as Fn,
      proxy_get_configuration:
        ((ptrPtr: number, sizePtr: number) =>
          this.#give(this.#options.config.pluginConfiguration, ptrPtr, sizePtr)) as Fn,
      // header maps
      proxy_get_header_map_value:
        ((type: number, kp: number, kl: number, ptrPtr: number, sizePtr: number) => {
          const value = this.#headerGet(type, str(kp, kl));
          if (value === undefined) return Result.NotFound;
          return this.#give(encoder.encode(value), ptrPtr, sizePtr);
        }) as Fn,
      proxy_get_header_map_pairs: ((type: number, ptrPtr: number, sizePtr: number) => {
        const pairs = this.#pairs(type);
        if (pairs === undefined) return Result.NotFound;
        return this.#give(this.#encodePairs(pairs), ptrPtr, sizePtr);
      }) as Fn,
      proxy_set_header_map_pairs:
        ((type: number, p: number, l: number) =>
          this.#setPairs(type, this.#decodePairs(p, l))) as Fn,
      proxy_add_header_map_value:
        ((type: number, kp: number, kl: number, vp: number, vl: number) =>
          this.#headerWrite(type, str(kp, kl), str(vp, vl), "add")) as Fn,
      proxy_replace_header_map_value:
        ((type: number, kp: number, kl: number, vp: number, vl: number) =>
          this.#headerWrite(type, str(kp, kl), str(vp, vl), "set")) as Fn,
      proxy_remove_header_map_value:
        ((type: number, kp: number, kl: number) =>
          this.#headerWrite(type, str(kp, kl), undefined, "set")) as Fn,
      proxy_get_header_map_size: ((type: number, out: number) => {
        const pairs = this.#pairs(type);
        if (pairs === undefined) return Result.NotFound;
        this.#u32(out, this.#encodePairs(pairs).length);
        return Result.Ok;
      }) as Fn,
      // buffers
      proxy_get_buffer_bytes:
        ((type: number, start: number, length: number, ptrPtr: number, sizePtr: number) => {
          const buffer = this.#buffer(type);
          if (buffer === undefined) return Result.NotFound;
          return this.#give(buffer.subarray(start, start + length), ptrPtr, sizePtr);
        }) as Fn,
      proxy_get_buffer_status: ((type: number, lengthPtr: number, flagsPtr: number) => {
        const buffer = this.#buffer(type);
        if (buffer === undefined) return Result.NotFound;
        this.#u32(lengthPtr, buffer.length);
        this.#u32(flagsPtr, 1);
        return Result.Ok;
      }) as Fn,
      proxy_set_buffer_bytes:
        ((type: number, start: number, length: number, p: number, l: number) =>
          this.#setBuffer(type, start, length, this.#read(p, l))) as Fn,
      // stream control
      proxy_send_local_response: ((
        status: number,
        _dp: number,
        _dl: number,
        bp: number,
        bl: number,
        hp: number,
        hl: number,
      ) => {
        const s = this.#current;
        if (s === undefined) return Result.NotFound;
        s.local = { status, headers: this.#decodePairs(hp, hl), body: this.#read(bp, bl) };
        s.resume();
        return Result.Ok;
      }) as Fn,
      proxy_continue_stream: continueStream as Fn,
      proxy_continue_request: (() => continueStream(StreamType.Request)) as Fn,
      proxy_continue_response: (() => continueStream(StreamType.Response)) as Fn,
      proxy_close_stream: (() => {
        const s = this.#current;
        if (s === undefined) return Result.NotFound;
        s.closed = true;
        s.resume();
        return Result.Ok;
      }) as Fn,
      proxy_clear_route_cache: () => Result.Ok,
      proxy_set_effective_context: ((id: number) => {
        if (id === this.#rootId) {
          this.#current = undefined;
          return Result.Ok;
        }
        const s = this.#streams.get(id);
        if (s === undefined) return Result.BadArgument;
        this.#current = s;
        return Result.Ok;
      }) as Fn,
      proxy_done: () => Result.Ok,
      // properties
      proxy_get_property: ((p: number, l: number, ptrPtr: number, sizePtr: number) => {
        const value = this.#property(str(p, l).split("\0").filter((x) => x !== ""));
        if (value === undefined) return Result.NotFound;
        return this.#give(value, ptrPtr, sizePtr);
      }) as Fn,
      proxy_set_property: ((p: number, l: number, vp: number, vl: number) => {
        const s = this.#current;
        if (s?.metadata === undefined) return Result.NotFound;
        const key = str(p, l).split("\0").filter((x) => x !== "").join(".");
        s.metadata.set(key, str(vp, vl));
        return Result.Ok;
      }) as Fn,
      // http_call
      proxy_http_call: ((
        up: number,
        ul: number,
        hp: number,
        hl: number,
        bp: number,
        bl: number,
        _tp: number,
        _tl: number,
        timeout: number,
        tokenPtr: number,
      ) => {
        const token = this.#httpCall(
          str(up, ul),
          this.#decodePairs(hp, hl),
          this.#read(bp, bl),
          timeout,
        );
        if (token === undefined) return Result.BadArgument;
        this.#u32(tokenPtr, token);
        return Result.Ok;
      }) as Fn,
      // shared data
      proxy_get_shared_data:
        ((kp: number, kl: number, ptrPtr: number, sizePtr: number, casPtr: number) => {
          const value = shared.getSharedData(vmId, str(kp, kl));
          if (value === undefined) return Result.NotFound;
          this.#u32(casPtr, value.cas);
          return this.#give(value.value, ptrPtr, sizePtr);
        }) as Fn,
      proxy_set_shared_data:
        ((kp: number, kl: number, vp: number, vl: number, cas: number) =>
          shared.setSharedData(vmId, str(kp, kl), this.#read(vp, vl), cas)) as Fn,
      // shared queues
      proxy_register_shared_queue: ((np: number, nl: number, tokenPtr: number) => {
        const token = shared.registerQueue(vmId, str(np, nl), (t) => {
          if (this.broken) return;
          this.#current = undefined;
          try {
            this.#call("proxy_on_queue_ready", this.#rootId, t);
          } catch (error) {
            this.#options.logger.error("proxy_on_queue_ready trapped", { error: String(error) });
          }
        });
        this.#u32(tokenPtr, token);
        return Result.Ok;
      }) as Fn,
      proxy_resolve_shared_queue:
        ((vp: number, vl: number, np: number, nl: number, tokenPtr: number) => {
          const token = shared.resolveQueue(str(vp, vl), str(np, nl));
          if (token === undefined) return Result.NotFound;
          this.#u32(tokenPtr, token);
          return Result.Ok;
        }) as Fn,
      proxy_enqueue_shared_queue:
        ((token: number, p: number, l: number) => shared.enqueue(token, this.#read(p, l))) as Fn,
      proxy_dequeue_shared_queue: ((token: number, ptrPtr: number, sizePtr: number) => {
        const item = shared.dequeue(token);
        if (typeof item === "number") return item;
        return this.#give(item, ptrPtr, sizePtr);
      }) as Fn,
      // metrics
      proxy_define_metric: ((type: number, np: number, nl: number, idPtr: number) => {
        const name = str(np, nl);
        const id = shared.defineMetric(type, name);
        if (id === undefined) return Result.BadArgument;
        const metrics = this.#options.metrics;
        if (metrics !== undefined && this.#mirrors[id] === undefined) {
          try {
            this.#mirrors[id] = mirrorMetric(metrics, shared.metricById(id)!.type, name);
          } catch (error) {
            // The name is taken by a metric of another type: the guest still gets its id.
            this.#options.logger.warn("wasm metric {name} is not served: {reason}", {
              name,
              reason: (error as Error).message,
            });
          }
        }
        this.#u32(idPtr, id);
        return Result.Ok;
      }) as Fn,
      proxy_increment_metric: ((id: number, offset: bigint) => {
        const metric = shared.metricById(id);
        if (metric === undefined || metric.type === "histogram") return Result.NotFound;
        metric.value += BigInt(offset);
        this.#mirrors[id]?.add(Number(offset));
        return Result.Ok;
      }) as Fn,
      proxy_record_metric: ((id: number, value: bigint) => {
        const metric = shared.metricById(id);
        if (metric === undefined) return Result.NotFound;
        metric.value = BigInt(value);
        this.#mirrors[id]?.record(Number(BigInt.asUintN(64, BigInt(value))));
        return Result.Ok;
      }) as Fn,
      proxy_get_metric: ((id: number, out: number) => {
        const metric = shared.metricById(id);
        if (metric === undefined) return Result.NotFound;
        this.#dv().setBigUint64(out, BigInt.asUintN(64, metric.value), true);
        return Result.Ok;
      }) as Fn,
    };
    return env;
  }
}
