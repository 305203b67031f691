/**
 * The messages between a sandboxed filter's host-side proxy and its Worker. One call of
 * `onReceive` or `append` is one `receive`/`send` message and one `done`/`failed`
 * answer; the body and plugin calls are asked for by the Worker only when the filter
 * makes them. Field names are short and values flat because every request pays for
 * their structured clone.
 *
 * @module
 */

import type { ReceivePhase } from "../../filter/api.ts";

/** A bit per place a stream's filter instances were added in the Worker. */
export const SHAPE_BEFORE_ROUTE = 1;
/** The stream has a receiver in `after_route`. */
export const SHAPE_AFTER_ROUTE = 2;
/** The stream has a receiver in `after_choose_host`. */
export const SHAPE_AFTER_CHOOSE_HOST = 4;
/** The stream has a sender. */
export const SHAPE_SENDER = 8;
/** Some instance of the stream has `onDestroy`: the host must send `destroy`. */
export const SHAPE_DESTROY = 16;

/** An error thrown in the Worker, as far as it survives the trip. */
export interface RemoteError {
  name: string;
  message: string;
  stack?: string;
}

/** `[name, clusterName, virtualHost, perFilterConfig of this filter]`. */
export type RouteTuple = [string | undefined, string | undefined, string, unknown];
/** `[address, cluster, weight]`. */
export type HostTuple = [string, string, number];
/** Changes a filter made to the stream's metadata: `[key, value]` set, keys deleted. */
export interface MetadataDiff {
  set: [string, unknown][];
  del: string[];
}

/** What the Worker is told once it loaded the module: make the factory. */
export interface InitMessage {
  t: "init";
  config: unknown;
  name: string;
  listener: string;
  configFile: string;
}

/** Fields every filter call carries. */
interface CallBase {
  /** Call id, unique per Worker. */
  id: number;
  /** Stream id, unique per factory. */
  sid: number;
  /** Entries of the stream's metadata, when it has any. */
  meta: [string, unknown][] | undefined;
  /** True when the effective config is the factory's own (not sent again). */
  same: boolean;
  /** The effective config when `same` is false. */
  config: unknown;
  route: RouteTuple | undefined;
  host: HostTuple | undefined;
}

/** Runs the stream's receivers of one phase. */
export interface ReceiveMessage extends CallBase {
  t: "receive";
  phase: ReceivePhase;
  method: string;
  path: string;
  headers: [string, string][];
  /** `[hostname, port]` of the client. */
  remote: [string, number];
  responded: boolean;
}

/** Runs the stream's senders. */
export interface SendMessage extends CallBase {
  t: "send";
  status: number;
  headers: [string, string][];
  local: boolean;
  /** The request: `[method, path, headers, hostname, port]`. */
  request: [string, string, [string, string][], string, number];
}

/** Answers a Worker's request (a body read or a plugin call). */
export interface ReplyMessage {
  t: "reply";
  id: number;
  ok: boolean;
  value?: unknown;
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
  t: "loaded";
  exports: string[];
  /** `typeof` of the configured export. */
  kind: string;
}

/** A call finished. Every change field is left out when nothing changed. */
export interface DoneMessage {
  t: "done";
  id: number;
  status: string;
  /** Set on the stream's first call: where its instances were added (SHAPE_* bits). */
  shape?: number;
  headers?: [string, string][];
  path?: string;
  body?: Uint8Array;
  respond?: [number, [string, string][] | undefined, Uint8Array | undefined];
  meta?: MetadataDiff;
  /** A sender's new response status. */
  rstatus?: number;
}

/** A request from the Worker on behalf of a running call. */
export type WorkerRequest =
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

/** Everything the Worker sends. */
export type WorkerMessage =
  | LoadedMessage
  | { t: "ready" }
  | { t: "init_failed"; error: RemoteError }
  | DoneMessage
  | { t: "failed"; id: number; error: RemoteError }
  | WorkerRequest
  | {
    t: "log";
    level: "debug" | "info" | "warn" | "error";
    message: string;
    properties: Record<string, unknown> | undefined;
  }
  | { t: "pong"; id: number }
  | { t: "closed"; id: number };
