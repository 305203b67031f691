/**
 * The state of one request as receiver filters see it: the {@linkcode RequestStream}
 * implementation. The lifecycle in `stream.ts` owns it and moves it through the phases.
 *
 * @module
 */

import type {
  FilterLogger,
  HostInfo,
  ReceivePhase,
  RequestStream,
  RespondInit,
  RouteInfo,
} from "../filter/api.ts";
import type { ChainStream, FilterEntry } from "../filter/chain.ts";
import { MessageBody, toBytes } from "./bytes.ts";

/** A response made by the proxy or a filter rather than an upstream. */
export interface LocalResponse {
  status: number;
  headers: Headers;
  body: Uint8Array | null;
}

/** The request side of a stream. */
export class RequestState implements RequestStream, ChainStream {
  /** The phase now running. */
  phase: ReceivePhase = "before_route";
  /** The filter now running. */
  current: FilterEntry | undefined;
  /** The path with query; filters may change it. */
  path: string;
  /** How the request reached the proxy (`HTTP/1.1`, `HTTP/2`, `bolt`, …). */
  protocol = "HTTP/1.1";
  /** The matched route. */
  route: RouteInfo | undefined;
  /**
   * Matches the route early, for a before_route filter that reads its effective config
   * (as Envoy's filters see the route before the router runs). Undefined when no route
   * of the listener overrides filter configs, so most requests never call it.
   */
  earlyRoute: (() => RouteInfo | undefined) | undefined;
  #early: RouteInfo | null | undefined;
  /** The chosen host. */
  host: HostInfo | undefined;
  /** A local response, once one was set. */
  local: LocalResponse | undefined;
  /** The body: the client's stream until a filter reads or replaces it. */
  readonly content: MessageBody;
  #metadata: Map<string, unknown> | undefined;

  /** Wraps a downstream request. */
  constructor(
    readonly method: string,
    path: string,
    readonly headers: Headers,
    body: ReadableStream<Uint8Array> | null,
    readonly remoteAddr: { readonly hostname: string; readonly port: number },
    readonly requestSignal: AbortSignal,
  ) {
    this.path = path;
    this.content = new MessageBody(body, headers);
  }

  /** Per-stream values shared by filters; made on first use. */
  get metadata(): Map<string, unknown> {
    return this.#metadata ??= new Map();
  }

  /** The running filter's logger. */
  get logger(): FilterLogger {
    return this.current!.logger;
  }

  /** The running filter's effective config: route override, else its own. */
  get config(): unknown {
    const entry = this.current!;
    let route = this.route;
    if (route === undefined && this.earlyRoute !== undefined) {
      if (this.#early === undefined) this.#early = this.earlyRoute() ?? null;
      route = this.#early ?? undefined;
    }
    if (route !== undefined) {
      const override = route.perFilterConfig(entry.name);
      // Parsed at load when the filter has a parser: no filter parses per request.
      if (override !== undefined) {
        const overrides = entry.overrides;
        return overrides !== undefined && overrides.has(override)
          ? overrides.get(override)
          : override;
      }
    }
    return entry.config;
  }

  /** True once a local response was set. */
  get responded(): boolean {
    return this.local !== undefined;
  }

  /** Reads the whole body once; later calls return the same bytes. */
  body(options?: { maxBytes?: number }): Promise<Uint8Array> {
    return this.content.bytes(options?.maxBytes);
  }

  /** Replaces the body and its Content-Length. */
  setBody(body: string | Uint8Array): void {
    this.content.replace(body);
  }

  /** Sets a local response; the request will not go upstream. */
  respond(status: number, init?: RespondInit): void {
    if (!Number.isInteger(status) || status < 200 || status > 999) {
      throw new RangeError(`respond() needs a status from 200 to 999, got ${status}`);
    }
    const headers = new Headers(init?.headers);
    const body = init?.body === undefined ? null : toBytes(init.body);
    this.local = { status, headers, body };
  }
}
