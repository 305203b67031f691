/**
 * The response side of a stream as sender filters see it: the
 * {@linkcode ResponseStream} implementation. Made only when a listener has senders.
 *
 * @module
 */

import type { FilterLogger, HostInfo, RequestView, RouteInfo } from "../filter/api.ts";
import type { FilterEntry, SenderStream } from "../filter/chain.ts";
import { MessageBody } from "./bytes.ts";

/** The response side of a stream. */
export class ResponseState implements SenderStream {
  /** Always `before_send`. */
  readonly phase = "before_send" as const;
  /** The filter now running. */
  current: FilterEntry | undefined;
  /** The body: the upstream's stream until a filter reads or replaces it. */
  readonly content: MessageBody;
  #status: number;

  /** Wraps a response about to be written. */
  constructor(
    status: number,
    readonly headers: Headers,
    body: ReadableStream<Uint8Array> | Uint8Array | null,
    readonly request: RequestView,
    readonly metadata: Map<string, unknown>,
    readonly route: (RouteInfo & { perFilterConfig(name: string): unknown }) | undefined,
    readonly host: HostInfo | undefined,
    readonly local: boolean,
  ) {
    this.#status = status;
    this.content = new MessageBody(body, headers);
  }

  /** The status to send. */
  get status(): number {
    return this.#status;
  }

  set status(value: number) {
    if (!Number.isInteger(value) || value < 200 || value > 999) {
      throw new RangeError(`A response status must be from 200 to 999, got ${value}`);
    }
    this.#status = value;
  }

  /** The running filter's logger. */
  get logger(): FilterLogger {
    return this.current!.logger;
  }

  /** The running filter's effective config: route override, else its own. */
  get config(): unknown {
    const entry = this.current!;
    const override = this.route?.perFilterConfig(entry.name);
    if (override === undefined) return entry.config;
    const overrides = entry.overrides;
    return overrides !== undefined && overrides.has(override) ? overrides.get(override) : override;
  }

  /** Reads the whole body once. */
  body(options?: { maxBytes?: number }): Promise<Uint8Array> {
    return this.content.bytes(options?.maxBytes);
  }

  /** Replaces the body and its Content-Length. */
  setBody(body: string | Uint8Array): void {
    this.content.replace(body);
  }

  /** Replaces the response with a plain 500. */
  failWith500(): void {
    for (const name of [...this.headers.keys()]) this.headers.delete(name);
    this.headers.set("content-type", "text/plain");
    this.content.replace("filter failed\n");
    this.#status = 500;
  }
}
