/**
 * The host side of Envoy's Lua handle API: what each `host(op, …)` call of the prelude
 * does to the stream, and how the host serves a script's yields (bodies, HTTP calls).
 *
 * @module
 */

import type { FilterLogger, RequestStream, RequestView, ResponseStream } from "../../../mod.ts";
import { type LuaVm, Yield } from "./vm.ts";

/** What one call of `envoy_on_request` / `envoy_on_response` acts on. */
export interface CallContext {
  /** The request: mutable in the request phase, a view in the response phase. */
  readonly request: RequestStream | RequestView;
  /** The response, in the response phase. */
  readonly response: ResponseStream | undefined;
  /** Per-stream values (Envoy's dynamic metadata lives here, by filter name). */
  readonly metadata: Map<string, unknown>;
  /** What `handle:metadata()` returns. */
  readonly routeMetadata: Readonly<Record<string, unknown>>;
  /** The route's name, if any. */
  readonly routeName: string | undefined;
  /** The running filter's logger. */
  readonly logger: FilterLogger;
}

/** The host call numbers (`host(op, …)` in the prelude). */
const Op = {
  get: 1,
  getAtIndex: 2,
  getNumValues: 3,
  add: 4,
  replace: 5,
  remove: 6,
  pairs: 7,
  setBody: 8,
  respond: 9,
  log: 10,
  base64: 11,
  timestamp: 12,
  protocol: 13,
  remoteAddress: 14,
  dynamicGet: 15,
  dynamicSet: 16,
  dynamicPairs: 17,
  metadata: 18,
  routeName: 19,
} as const;

/** Makes the dispatcher of a filter's host calls; `fallback` logs outside a stream. */
export function hostDispatch(fallback: FilterLogger) {
  return function dispatch(vm: LuaVm, T: number, op: number): number {
    const c = vm.context as CallContext | undefined;
    if (op === Op.log) {
      log(c?.logger ?? fallback, vm.toNumber(T, 2), vm.toUtf8(T, 3) ?? "");
      return 0;
    }
    if (op === Op.base64) {
      vm.pushLatin1(T, btoa(vm.toLatin1(T, 2) ?? ""));
      return 1;
    }
    if (op === Op.timestamp) {
      const micro = vm.toNumber(T, 2) === 1;
      vm.pushInteger(
        T,
        micro ? (performance.timeOrigin + performance.now()) * 1000 : Date.now(),
      );
      return 1;
    }
    if (c === undefined) throw new Error("this call needs a stream; it cannot run at load");
    switch (op) {
      case Op.get: {
        const value = getHeader(c, vm.toNumber(T, 2), name(vm, T));
        if (value === null) vm.pushNil(T);
        else vm.pushLatin1(T, value);
        return 1;
      }
      case Op.getAtIndex: {
        const value = valuesOf(c, vm.toNumber(T, 2), name(vm, T))[vm.toNumber(T, 4)];
        if (value === undefined) vm.pushNil(T);
        else vm.pushLatin1(T, value);
        return 1;
      }
      case Op.getNumValues:
        vm.pushInteger(T, valuesOf(c, vm.toNumber(T, 2), name(vm, T)).length);
        return 1;
      case Op.add:
      case Op.replace:
        setHeader(c, vm.toNumber(T, 2), name(vm, T), vm.toLatin1(T, 4)!, op === Op.add);
        return 0;
      case Op.remove: {
        const key = name(vm, T);
        if (key.startsWith(":")) throw new Error(`cannot remove pseudo-header ${key}`);
        headersOf(c, vm.toNumber(T, 2)).delete(key);
        return 0;
      }
      case Op.pairs:
        vm.pushLatin1(T, serializeHeaders(c, vm.toNumber(T, 2)));
        return 1;
      case Op.setBody: {
        const body = vm.toBytes(T, 3)!;
        if (vm.toNumber(T, 2) === 0) writable(c).setBody(body);
        else c.response!.setBody(body);
        return 0;
      }
      case Op.respond:
        respond(writable(c), vm.toLatin1(T, 2)!, vm.toBytes(T, 3)!);
        return 0;
      case Op.protocol:
        vm.pushLatin1(T, downstreamProtocol(c.request));
        return 1;
      case Op.remoteAddress: {
        const { hostname, port } = c.request.remoteAddr;
        vm.pushLatin1(T, hostname.includes(":") ? `[${hostname}]:${port}` : `${hostname}:${port}`);
        return 1;
      }
      case Op.dynamicGet: {
        const value = c.metadata.get(vm.toUtf8(T, 2)!);
        if (value === undefined) vm.pushNil(T);
        else vm.pushJs(T, value);
        return 1;
      }
      case Op.dynamicSet: {
        const ns = vm.toUtf8(T, 2)!;
        const current = c.metadata.get(ns);
        const table = isRecord(current) ? current : {};
        table[vm.toUtf8(T, 3)!] = vm.toJs(T, 4);
        c.metadata.set(ns, table);
        return 0;
      }
      case Op.dynamicPairs:
        vm.pushJs(T, c.metadata);
        return 1;
      case Op.metadata:
        vm.pushJs(T, c.routeMetadata);
        return 1;
      case Op.routeName:
        if (c.routeName === undefined) vm.pushNil(T);
        else vm.pushLatin1(T, c.routeName);
        return 1;
    }
    throw new Error(`unknown host call ${op}`);
  };
}

/** Serves a script's yields: its body, or an HTTP call to a configured cluster. */
export function yieldHandler(clusters: ReadonlyMap<string, string>) {
  return function onYield(
    vm: LuaVm,
    T: number,
    op: number,
    base: number,
    context: unknown,
  ): Promise<(T: number) => number> | undefined {
    const c = context as CallContext;
    if (op === Yield.body) {
      const stream = vm.toNumber(T, base + 1) === 0 ? writable(c) : c.response!;
      return stream.body().then((bytes) => (T: number) => {
        vm.pushBytes(T, bytes);
        return 1;
      });
    }
    if (op === Yield.httpCall) {
      const cluster = vm.toUtf8(T, base + 1)!;
      const headers = vm.toLatin1(T, base + 2)!;
      const body = vm.toBytes(T, base + 3) as Uint8Array<ArrayBuffer>;
      const timeout = vm.toNumber(T, base + 4);
      const asynchronous = vm.typeOf(T, base + 5) === 1 && vm.toJs(T, base + 5) === true;
      const call = httpCall(clusters, cluster, headers, body, timeout);
      if (asynchronous) {
        call.catch((error) => c.logger.warn(`httpCall to ${cluster} failed: ${error}`));
        return Promise.resolve(() => 0);
      }
      return call.then(
        ({ headers, body }) => (T: number) => {
          vm.pushLatin1(T, headers);
          vm.pushBytes(T, body);
          return 2;
        },
        (error) => (T: number) => {
          vm.pushNil(T);
          vm.pushNil(T);
          vm.pushUtf8(T, `httpCall to cluster ${cluster} failed: ${error.message ?? error}`);
          return 3;
        },
      );
    }
    return undefined;
  };
}

async function httpCall(
  clusters: ReadonlyMap<string, string>,
  cluster: string,
  serialized: string,
  body: Uint8Array<ArrayBuffer>,
  timeoutMs: number,
): Promise<{ headers: string; body: Uint8Array }> {
  const address = clusters.get(cluster);
  if (address === undefined) {
    throw new Error(
      `cluster ${JSON.stringify(cluster)} is not in the filter's http_call_clusters (known: ${
        [...clusters.keys()].join(", ") || "none"
      })`,
    );
  }
  const headers = new Headers();
  let method = "GET", path = "/";
  const parts = serialized.split("\0");
  for (let i = 0; i + 1 < parts.length; i += 2) {
    const [k, v] = [parts[i].toLowerCase(), parts[i + 1]];
    if (k === ":method") method = v;
    else if (k === ":path") path = v;
    else if (!k.startsWith(":")) headers.append(k, v);
  }
  const response = await fetch(`http://${address}${path}`, {
    method,
    headers,
    body: method === "GET" || method === "HEAD" ? undefined : body,
    signal: timeoutMs > 0 ? AbortSignal.timeout(timeoutMs) : undefined,
  });
  const bytes = new Uint8Array(await response.arrayBuffer());
  let out = `:status\0${response.status}\0`;
  for (const [k, v] of response.headers) out += `${k}\0${v}\0`;
  return { headers: out, body: bytes };
}

function name(vm: LuaVm, T: number): string {
  return vm.toLatin1(T, 3)!.toLowerCase();
}

function writable(c: CallContext): RequestStream {
  if (c.response !== undefined) throw new Error("the request cannot be changed on the response");
  return c.request as RequestStream;
}

function headersOf(c: CallContext, which: number): Headers {
  return which === 0 ? c.request.headers : c.response!.headers;
}

function getHeader(c: CallContext, which: number, key: string): string | null {
  if (key.charCodeAt(0) === 58 /* : */) {
    if (which === 1) return key === ":status" ? String(c.response!.status) : null;
    if (key === ":path") return c.request.path;
    if (key === ":method") return c.request.method;
    if (key === ":authority") return c.request.headers.get("host");
    return null;
  }
  return headersOf(c, which).get(key);
}

function valuesOf(c: CallContext, which: number, key: string): string[] {
  if (key === "set-cookie") return headersOf(c, which).getSetCookie();
  const value = getHeader(c, which, key);
  return value === null ? [] : key.startsWith(":") ? [value] : value.split(", ");
}

function setHeader(c: CallContext, which: number, key: string, value: string, add: boolean) {
  if (key.startsWith(":")) {
    if (which === 1 && key === ":status") {
      const status = Number(value);
      if (!Number.isInteger(status) || status < 200 || status > 599) {
        throw new Error(`:status must be an HTTP status from 200 to 599, got ${value}`);
      }
      c.response!.status = status;
    } else if (which === 0 && key === ":path") writable(c).path = value;
    else if (which === 0 && key === ":authority") c.request.headers.set("host", value);
    else throw new Error(`cannot set pseudo-header ${key}`);
    return;
  }
  if (add) headersOf(c, which).append(key, value);
  else headersOf(c, which).set(key, value);
}

function serializeHeaders(c: CallContext, which: number): string {
  let out = which === 0
    ? `:authority\0${
      c.request.headers.get("host") ?? ""
    }\0:path\0${c.request.path}\0:method\0${c.request.method}\0`
    : `:status\0${c.response!.status}\0`;
  for (const [k, v] of headersOf(c, which)) out += `${k}\0${v}\0`;
  return out;
}

function respond(s: RequestStream, serialized: string, body: Uint8Array): void {
  const headers = new Headers();
  let status: number | undefined;
  const parts = serialized.split("\0");
  for (let i = 0; i + 1 < parts.length; i += 2) {
    if (parts[i] === ":status") status = Number(parts[i + 1]);
    else if (!parts[i].startsWith(":")) headers.append(parts[i], parts[i + 1]);
  }
  if (status === undefined || !Number.isInteger(status) || status < 200 || status > 599) {
    throw new Error("respond() needs a :status header from 200 to 599");
  }
  s.respond(status, { headers, body });
}

function log(logger: FilterLogger, level: number, message: string): void {
  if (level <= 1) logger.debug(message);
  else if (level === 2) logger.info(message);
  else if (level === 3) logger.warn(message);
  else logger.error(message);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value) &&
    !(value instanceof Map);
}

/**
 * The downstream protocol as Envoy's `streamInfo():protocol()` names it ("HTTP/1.0",
 * "HTTP/1.1", "HTTP/2", "HTTP/3"), from the stream's `protocol`; "HTTP/1.1" where the
 * runtime cannot tell.
 */
export function downstreamProtocol(request: RequestView): string {
  const protocol = request.protocol;
  if (typeof protocol !== "string") return "HTTP/1.1";
  const upper = protocol.toUpperCase();
  if (upper === "HTTP/2.0" || upper === "H2" || upper === "H2C") return "HTTP/2";
  if (upper === "HTTP/3.0" || upper === "H3") return "HTTP/3";
  return upper.startsWith("HTTP/") ? upper : protocol;
}
