/**
 * The host side of an out-of-process filter, the same for every runtime (Worker, child
 * process): per-stream filters that turn each `onReceive`/`append` into a
 * `receive`/`send` message to the peer (Worker or child) that holds the module's own
 * filters, and apply its answer to the stream, so the chain (statuses, `failure_mode`,
 * `onDestroy`) treats them like any filter. Starting, replacing and closing the peer
 * is the supervisor's (`supervisor.ts`).
 *
 * @module
 */

import type {
  FilterChain,
  FilterStatus,
  ReceivePhase,
  ReceiverFilter,
  RequestStream,
  ResponseStream,
  SenderFilter,
} from "../../contract/filter.ts";
import {
  type DoneMessage,
  type HostTuple,
  type MetadataDiff,
  type ReceiveMessage,
  type RouteTuple,
  type SendMessage,
  SHAPE_AFTER_CHOOSE_HOST,
  SHAPE_AFTER_ROUTE,
  SHAPE_BEFORE_ROUTE,
  SHAPE_DESTROY,
  SHAPE_SENDER,
} from "./protocol.ts";
import { traceFilterCall, tracer } from "../../trace/tracer.ts";

const PHASE_BIT: Record<ReceivePhase, number> = {
  before_route: SHAPE_BEFORE_ROUTE,
  after_route: SHAPE_AFTER_ROUTE,
  after_choose_host: SHAPE_AFTER_CHOOSE_HOST,
};

/** A running peer (a Worker or a child process) as the stream filters use it. */
export interface FilterPeer {
  /** Counts the peers of one factory: a stream's instances live in one generation. */
  readonly generation: number;
  /** Runs one filter call in the peer. */
  call(
    message: ReceiveMessage | SendMessage,
    stream: RequestStream | ResponseStream,
    timeoutMs: number,
  ): Promise<DoneMessage>;
  /** Ends a stream's instances in the peer (their `onDestroy`). */
  destroyStream(sid: number): void;
  /** True when the peer's event loop answers within `timeoutMs`. */
  ping(timeoutMs: number): Promise<boolean>;
}

/** What a {@linkcode FilterProxy} needs from its sandbox's factory. */
export interface FilterProxyOptions<P extends FilterPeer> {
  /** The factory's own config: a stream whose effective config is this one sends none. */
  config: unknown;
  /** The filter's name, to look up the route's per-filter config. */
  filterName: string;
  /** Per-call timeout in milliseconds. */
  timeoutMs: number;
  /** The running peer, if one runs. */
  current(): P | undefined;
  /** The peer being started, or the reason there is none. */
  next(): Promise<P>;
  /** The error of a call whose stream's instances were lost with a replaced peer. */
  replaced(): Error;
  /** The stream's metadata entries the peer gets, or undefined when there are none. */
  metadata(metadata: Map<string, unknown>): [string, unknown][] | undefined;
}

/** Turns the chain's calls into calls in a peer; one per factory. */
export class FilterProxy<P extends FilterPeer> {
  readonly #options: FilterProxyOptions<P>;
  #nextStream = 0;
  #probing = false;

  /** Makes the proxy of one factory. */
  constructor(options: FilterProxyOptions<P>) {
    this.#options = options;
  }

  /** Adds one forwarding filter to every phase and to the senders. */
  createFilterChain(chain: FilterChain): void {
    const filter = new ProxiedStreamFilter(this, ++this.#nextStream);
    chain.addReceiver(filter, "before_route");
    chain.addReceiver(filter, "after_route");
    chain.addReceiver(filter, "after_choose_host");
    chain.addSender(filter);
  }

  /** Runs one receive call in the peer. */
  async receive(filter: ProxiedStreamFilter<P>, stream: RequestStream): Promise<FilterStatus> {
    const options = this.#options;
    const peer = options.current() ?? await options.next();
    filter.check(peer);
    const effective = stream.config;
    const same = effective === options.config;
    const message: ReceiveMessage = {
      t: "receive",
      id: 0,
      sid: filter.sid,
      phase: stream.phase,
      method: stream.method,
      path: stream.path,
      headers: [...stream.headers],
      remote: [stream.remoteAddr.hostname, stream.remoteAddr.port],
      responded: stream.responded,
      meta: options.metadata(stream.metadata),
      same,
      config: same ? undefined : effective,
      route: routeTuple(stream, options.filterName),
      host: hostTuple(stream),
    };
    const pending = peer.call(message, stream, options.timeoutMs);
    const done =
      await (tracer === undefined
        ? pending
        : traceFilterCall(options.filterName, stream.phase, pending));
    filter.adopt(peer, done, PHASE_BIT[stream.phase]);
    if (done.headers !== undefined) replaceHeaders(stream.headers, done.headers);
    if (done.path !== undefined) stream.path = done.path;
    if (done.body !== undefined) stream.setBody(done.body);
    if (done.respond !== undefined) {
      const [status, headers, body] = done.respond;
      stream.respond(status, { headers, body });
    }
    if (done.meta !== undefined) applyMetadata(stream.metadata, done.meta);
    return done.status as FilterStatus;
  }

  /** Runs one send call in the peer. */
  async send(filter: ProxiedStreamFilter<P>, stream: ResponseStream): Promise<FilterStatus> {
    const options = this.#options;
    const peer = options.current() ?? await options.next();
    filter.check(peer);
    const effective = stream.config;
    const same = effective === options.config;
    const request = stream.request;
    const message: SendMessage = {
      t: "send",
      id: 0,
      sid: filter.sid,
      status: stream.status,
      headers: [...stream.headers],
      local: stream.local,
      request: [
        request.method,
        request.path,
        [...request.headers],
        request.remoteAddr.hostname,
        request.remoteAddr.port,
      ],
      meta: options.metadata(stream.metadata),
      same,
      config: same ? undefined : effective,
      route: routeTuple(stream, options.filterName),
      host: hostTuple(stream),
    };
    const pending = peer.call(message, stream, options.timeoutMs);
    const done =
      await (tracer === undefined
        ? pending
        : traceFilterCall(options.filterName, "before_send", pending));
    filter.adopt(peer, done, SHAPE_SENDER);
    if (done.rstatus !== undefined) stream.status = done.rstatus;
    if (done.headers !== undefined) replaceHeaders(stream.headers, done.headers);
    if (done.body !== undefined) stream.setBody(done.body);
    if (done.meta !== undefined) applyMetadata(stream.metadata, done.meta);
    return done.status as FilterStatus;
  }

  /** Ends a stream's instances in the peer they were made in. */
  destroyStream(filter: ProxiedStreamFilter<P>): void {
    const peer = this.#options.current();
    if (peer !== undefined && peer.generation === filter.generation) peer.destroyStream(filter.sid);
  }

  /**
   * After a call of `peer` ran out of time, pings it (one ping at a time); when it does
   * not answer within the timeout either and is still the running peer, `stuck` is
   * called with the reason, to replace it.
   */
  probe(peer: P, stuck: (reason: string) => void): void {
    const options = this.#options;
    if (peer !== options.current() || this.#probing) return;
    this.#probing = true;
    peer.ping(options.timeoutMs).then((alive) => {
      this.#probing = false;
      if (!alive && peer === options.current()) {
        stuck(`did not answer a call nor a ping within ${options.timeoutMs} ms`);
      }
    });
  }

  /** The error of a call whose stream's instances were lost with a replaced peer. */
  replaced(): Error {
    return this.#options.replaced();
  }
}

/** The per-stream filter on the host: forwards to the stream's instances in the peer. */
export class ProxiedStreamFilter<P extends FilterPeer> implements ReceiverFilter, SenderFilter {
  /** The stream's id in the peer. */
  readonly sid: number;
  /** The peer generation the stream's instances live in; 0 before the first call. */
  generation = 0;
  #proxy: FilterProxy<P>;
  /** SHAPE_* bits of where the instances were added; -1 until the first call. */
  #shape = -1;
  /** True once the peer forgot the stream by itself (see `settle` in the Worker side). */
  #released = false;

  /** Makes the filter of stream `sid`. */
  constructor(proxy: FilterProxy<P>, sid: number) {
    this.#proxy = proxy;
    this.sid = sid;
  }

  /** Forwards to the peer, unless the stream has no receiver in this phase. */
  onReceive(stream: RequestStream): FilterStatus | Promise<FilterStatus> {
    if (this.#shape !== -1 && (this.#shape & PHASE_BIT[stream.phase]) === 0) return "continue";
    return this.#proxy.receive(this, stream);
  }

  /** Forwards to the peer, unless the stream has no sender. */
  append(stream: ResponseStream): FilterStatus | Promise<FilterStatus> {
    if (this.#shape !== -1 && (this.#shape & SHAPE_SENDER) === 0) return "continue";
    return this.#proxy.send(this, stream);
  }

  /** Ends the stream's instances in the peer, unless it has none or forgot them. */
  onDestroy(): void {
    if (this.#shape !== -1 && !this.#released) this.#proxy.destroyStream(this);
  }

  /** Fails when the stream's instances were lost with a replaced peer. */
  check(peer: P): void {
    if (this.#shape !== -1 && peer.generation !== this.generation) throw this.#proxy.replaced();
  }

  /**
   * Records where the stream's instances were made (from their first call's answer), and
   * whether the call of `bit` was their last one, after which the peer forgets a stream
   * without `onDestroy` and needs no `destroy` message.
   */
  adopt(peer: P, done: DoneMessage, bit: number): void {
    if (done.shape !== undefined) {
      this.#shape = done.shape;
      this.generation = peer.generation;
    }
    if ((this.#shape & SHAPE_DESTROY) !== 0) return;
    const calls = this.#shape & 15;
    if (calls === 0 || bit === 1 << (31 - Math.clz32(calls))) this.#released = true;
  }
}

function routeTuple(
  stream: RequestStream | ResponseStream,
  filterName: string,
): RouteTuple | undefined {
  const route = stream.route;
  if (route === undefined) return undefined;
  return [route.name, route.clusterName, route.virtualHost, route.perFilterConfig(filterName)];
}

function hostTuple(stream: RequestStream | ResponseStream): HostTuple | undefined {
  const host = stream.host;
  return host === undefined ? undefined : [host.address, host.cluster, host.weight];
}

function replaceHeaders(headers: Headers, entries: [string, string][]): void {
  for (const name of [...headers.keys()]) headers.delete(name);
  for (const [name, value] of entries) headers.append(name, value);
}

function applyMetadata(metadata: Map<string, unknown>, diff: MetadataDiff): void {
  for (const key of diff.del) metadata.delete(key);
  for (const [key, value] of diff.set) metadata.set(key, value);
}
