/**
 * The messages between a sandboxed filter's host-side proxy and its guest (the filter
 * side, in a Worker or a child process: the same messages for both, carried by
 * `postMessage` or by frames over pipes). One call of `onReceive` or `append` is one
 * `receive`/`send` message and one `done`/`failed` answer; the body and plugin calls are
 * asked for by the guest only when the filter makes them. Field names are short and
 * values flat because every request pays for their copy.
 *
 * @module
 */

import type { ReceivePhase } from "../../contract/filter.ts";

/** A bit per place a stream's filter instances were added in the guest. */
export const SHAPE_BEFORE_ROUTE = 1;
/** The stream has a receiver in `after_route`. */
export const SHAPE_AFTER_ROUTE = 2;
/** The stream has a receiver in `after_choose_host`. */
export const SHAPE_AFTER_CHOOSE_HOST = 4;
/** The stream has a sender. */
export const SHAPE_SENDER = 8;
/** Some instance of the stream has `onDestroy`: the host must send `destroy`. */
export const SHAPE_DESTROY = 16;

/** An error thrown in the guest, as far as it survives the trip. */
export interface RemoteError {
  /** The error's `name`, e.g. `NotCapable`. */
  name: string;
  /** The error's message. */
  message: string;
  /** The stack in the guest, if there was one. */
  stack?: string;
}

/** `[name, clusterName, virtualHost, perFilterConfig of this filter]`. */
export type RouteTuple = [string | undefined, string | undefined, string, unknown];
/** `[address, cluster, weight]`. */
export type HostTuple = [string, string, number];
/** Changes a filter made to the stream's metadata: `[key, value]` set, keys deleted. */
export interface MetadataDiff {
  /** Keys set, with their final values. */
  set: [string, unknown][];
  /** Keys deleted. */
  del: string[];
}

/** What the guest is told once it loaded the module: make the factory. */
export interface InitMessage {
  /** The message kind. */
  t: "init";
  /** The filter's config, passed to the factory. */
  config: unknown;
  /** The filter's name. */
  name: string;
  /** The listener the filter is declared on. */
  listener: string;
  /** The config file's path. */
  configFile: string;
}

/** Fields every filter call carries. */
export interface CallBase {
  /** Call id, unique per guest. */
  id: number;
  /** Stream id, unique per factory. */
  sid: number;
  /** Entries of the stream's metadata, when it has any. */
  meta: [string, unknown][] | undefined;
  /** True when the effective config is the factory's own (not sent again). */
  same: boolean;
  /** The effective config when `same` is false. */
  config: unknown;
  /** The matched route, if any. */
  route: RouteTuple | undefined;
  /** The chosen host, if any. */
  host: HostTuple | undefined;
}

/** Runs the stream's receivers of one phase. */
export interface ReceiveMessage extends CallBase {
  /** The message kind. */
  t: "receive";
  /** The phase to run. */
  phase: ReceivePhase;
  /** The request method. */
  method: string;
  /** The request path with its query. */
  path: string;
  /** The request headers. */
  headers: [string, string][];
  /** `[hostname, port]` of the client. */
  remote: [string, number];
  /** True when a filter already responded. */
  responded: boolean;
}

/** Runs the stream's senders. */
export interface SendMessage extends CallBase {
  /** The message kind. */
  t: "send";
  /** The response status. */
  status: number;
  /** The response headers. */
  headers: [string, string][];
  /** True for a response the proxy or a filter made. */
  local: boolean;
  /** The request: `[method, path, headers, hostname, port]`. */
  request: [string, string, [string, string][], string, number];
}

/** Answers a guest's request (a body read or a plugin call). */
export interface ReplyMessage {
  /** The message kind. */
  t: "reply";
  /** The id of the guest's request. */
  id: number;
  /** True when `value` holds the answer, false when `error` does. */
  ok: boolean;
  /** The body bytes or the plugin's response. */
  value?: unknown;
  /** Why the request failed. */
  error?: RemoteError;
}

/** Everything the host sends. */
export type HostMessage =
  | InitMessage
  | ReceiveMessage
  | SendMessage
  | ReplyMessage
  | { t: "destroy"; sid: number }
  | { t: "ping"; id: number }
  | { t: "close"; id: number };

/** The module was imported: what it exports. */
export interface LoadedMessage {
  /** The message kind. */
  t: "loaded";
  /** The names the module exports. */
  exports: string[];
  /** `typeof` of the configured export. */
  kind: string;
}

/** A call finished. Every change field is left out when nothing changed. */
export interface DoneMessage {
  /** The message kind. */
  t: "done";
  /** The call's id. */
  id: number;
  /** The filter status. */
  status: string;
  /** Set on the stream's first call: where its instances were added (SHAPE_* bits). */
  shape?: number;
  /** The whole new header set, when the filter changed any header. */
  headers?: [string, string][];
  /** The new request path. */
  path?: string;
  /** The new body. */
  body?: Uint8Array;
  /** A local response: `[status, headers, body]`. */
  respond?: [number, [string, string][] | undefined, Uint8Array | undefined];
  /** Metadata changes. */
  meta?: MetadataDiff;
  /** A sender's new response status. */
  rstatus?: number;
}

/** A request from the guest on behalf of a running call. */
export type GuestRequest =
  | { t: "request"; id: number; call: number; kind: "body"; maxBytes: number | undefined }
  | {
    t: "request";
    id: number;
    call: number;
    kind: "plugin";
    name: string;
    request: unknown;
    timeoutMs: number | undefined;
  };

/** The guest could not import the module (a child process exits after sending this). */
export interface LoadFailedMessage {
  /** The message's kind. */
  t: "load_failed";
  /** What `import()` threw. */
  error: RemoteError;
}

/** Everything the guest sends. */
export type GuestMessage =
  | LoadedMessage
  | LoadFailedMessage
  | { t: "ready" }
  | { t: "init_failed"; error: RemoteError }
  | DoneMessage
  | { t: "failed"; id: number; error: RemoteError }
  | GuestRequest
  | {
    t: "log";
    level: "debug" | "info" | "warn" | "error";
    message: string;
    properties: Record<string, unknown> | undefined;
  }
  | { t: "pong"; id: number }
  | { t: "closed"; id: number };
