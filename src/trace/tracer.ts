/**
 * Tracing on Deno's built-in OpenTelemetry (`OTEL_DENO=true` and the standard `OTEL_*`
 * variables; no flag is needed on Deno 2.9). Mosaic talks to the tracer Deno provides,
 * `Deno.telemetry.tracerProvider`, directly: no npm package, no SDK.
 *
 * One span per stream (kind server, the child of the client's W3C `traceparent` when the
 * request has one) and one child span per upstream attempt (kind client), whose id the
 * upstream request's `traceparent` carries.
 *
 * {@linkcode tracer} is undefined when Deno's OpenTelemetry is off: the stream checks it
 * once and allocates nothing for tracing.
 *
 * @module
 */

import { AsyncLocalStorage } from "node:async_hooks";
import type { PluginCaller } from "../contract/filter.ts";

/** The W3C trace context of a span: what `traceparent` carries. */
export interface SpanContext {
  traceId: string;
  spanId: string;
  traceFlags: number;
  isRemote?: boolean;
}

/** The part of an OpenTelemetry span that Mosaic uses. */
export interface Span {
  spanContext(): SpanContext;
  setAttribute(key: string, value: string | number | boolean): void;
  setStatus(status: { code: number; message?: string }): void;
  updateName(name: string): void;
  end(): void;
  isRecording(): boolean;
}

interface OtelTracer {
  startSpan(
    name: string,
    options?: { kind?: number; attributes?: Record<string, string | number | boolean> },
    context?: Context,
  ): Span;
}

/** OpenTelemetry span kinds (the API's numbers). */
export const SpanKind = { INTERNAL: 0, SERVER: 1, CLIENT: 2 } as const;
/** OpenTelemetry status codes. */
export const SpanStatus = { UNSET: 0, OK: 1, ERROR: 2 } as const;

/** The key under which `@opentelemetry/api` (and Deno's tracer) keep a context's span. */
const SPAN_KEY = Symbol.for("OpenTelemetry Context Key SPAN");

/** An immutable OpenTelemetry context holding at most a span, as `@opentelemetry/api`'s. */
class Context {
  constructor(readonly span: unknown) {}
  getValue(key: symbol): unknown {
    return key === SPAN_KEY ? this.span : undefined;
  }
  setValue(key: symbol, value: unknown): Context {
    return key === SPAN_KEY ? new Context(value) : this;
  }
  deleteValue(key: symbol): Context {
    return key === SPAN_KEY ? new Context(undefined) : this;
  }
}

/** A remote parent: the client's span, known only by its `traceparent`. */
class RemoteSpan {
  readonly #context: SpanContext;
  constructor(context: SpanContext) {
    this.#context = context;
  }
  spanContext(): SpanContext {
    return this.#context;
  }
  isRecording(): boolean {
    return false;
  }
}

const HEX = /^[0-9a-f]+$/;

/**
 * Parses a W3C `traceparent` (`00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>`).
 *
 * @returns The context, or undefined when the value is absent or invalid (all-zero ids,
 *   version `ff`, a version 00 value with more after the flags).
 */
export function parseTraceparent(value: string | null): SpanContext | undefined {
  if (value === null || value.length < 55) return undefined;
  value = value.trim().toLowerCase();
  if (value[2] !== "-" || value[35] !== "-" || value[52] !== "-") return undefined;
  const version = value.slice(0, 2);
  if (version === "ff" || (version === "00" && value.length !== 55)) return undefined;
  if (value.length > 55 && value[55] !== "-") return undefined;
  const traceId = value.slice(3, 35);
  const spanId = value.slice(36, 52);
  const flags = value.slice(53, 55);
  if (!HEX.test(version + traceId + spanId + flags)) return undefined;
  if (/^0+$/.test(traceId) || /^0+$/.test(spanId)) return undefined;
  return { traceId, spanId, traceFlags: parseInt(flags, 16), isRemote: true };
}

/** Formats a span's context as a W3C `traceparent` value. */
export function formatTraceparent(context: SpanContext): string {
  const flags = (context.traceFlags & 0xff).toString(16).padStart(2, "0");
  return `00-${context.traceId}-${context.spanId}-${flags}`;
}

/** The span of one stream, and the children it starts. */
export class StreamSpan {
  readonly span: Span;
  readonly #tracer: OtelTracer;
  readonly #context: Context;

  constructor(tracer: OtelTracer, span: Span) {
    this.#tracer = tracer;
    this.span = span;
    this.#context = new Context(span);
  }

  /** The stream's trace id (32 hex digits). */
  get traceId(): string {
    return this.span.spanContext().traceId;
  }

  /** The stream span's id (16 hex digits). */
  get spanId(): string {
    return this.span.spanContext().spanId;
  }

  /**
   * Starts the span of upstream attempt `attempt` to `host` and points the upstream
   * request's `traceparent` at it.
   */
  attempt(headers: Headers, cluster: string, host: string, attempt: number): Span {
    const [address, port] = splitHost(host);
    const span = this.#tracer.startSpan(`upstream ${cluster}`, {
      kind: SpanKind.CLIENT,
      attributes: {
        "mosaic.cluster": cluster,
        "mosaic.upstream_host": host,
        "mosaic.attempt": attempt,
        "server.address": address,
        "server.port": port,
      },
    }, this.#context);
    headers.set("traceparent", formatTraceparent(span.spanContext()));
    return span;
  }

  /** Sets the stream's normalized path (without the query) as `url.path`. */
  setPath(path: string): void {
    const query = path.indexOf("?");
    this.span.setAttribute("url.path", query < 0 ? path : path.slice(0, query));
  }

  /**
   * Runs `fn` with `span` as Deno's active OpenTelemetry context, so that what Deno
   * instruments itself (node:http2, fetch) becomes its child.
   */
  within<T>(span: Span, fn: () => T): T {
    // deno-lint-ignore no-explicit-any
    const manager = (Deno as any).telemetry?.contextManager;
    if (manager === undefined) return fn();
    return manager.with(new Context(span), fn);
  }

  /** Starts a child span, e.g. for a call to an out-of-process filter. */
  child(name: string, attributes: Record<string, string | number | boolean>): Span {
    return this.#tracer.startSpan(name, { kind: SpanKind.CLIENT, attributes }, this.#context);
  }

  /** Sets the stream's outcome and ends its span. */
  end(
    status: number,
    flag: string,
    route: string | undefined,
    cluster: string | undefined,
    host: string,
  ): void {
    const span = this.span;
    span.setAttribute("http.response.status_code", status);
    if (flag !== "") span.setAttribute("mosaic.response_flag", flag);
    if (route !== undefined) {
      span.setAttribute("mosaic.route", route);
      span.setAttribute("http.route", route);
    }
    if (cluster !== undefined) span.setAttribute("mosaic.cluster", cluster);
    if (host !== "") span.setAttribute("mosaic.upstream_host", host);
    if (status >= 500) span.setStatus({ code: SpanStatus.ERROR });
    span.end();
  }
}

/** Ends an attempt span with the upstream's status, or as an error with the flag. */
export function endAttempt(span: Span, status: number, flag?: string): void {
  if (status > 0) span.setAttribute("http.response.status_code", status);
  if (flag !== undefined && flag !== "") {
    span.setAttribute("mosaic.response_flag", flag);
    span.setAttribute("error.type", flag);
  }
  if (status >= 500 || (flag !== undefined && flag !== "")) {
    span.setStatus({ code: SpanStatus.ERROR });
  }
  span.end();
}

function splitHost(host: string): [string, number] {
  const colon = host.lastIndexOf(":");
  if (colon < 0) return [host, 0];
  const name = host.slice(0, colon);
  return [name.startsWith("[") ? name.slice(1, -1) : name, Number(host.slice(colon + 1)) || 0];
}

/** Starts stream spans on Deno's tracer. */
export class StreamTracer {
  readonly #tracer: OtelTracer;

  constructor(tracer: OtelTracer) {
    this.#tracer = tracer;
  }

  /**
   * Starts the span of a stream: a child of the request's `traceparent` when it has a
   * valid one, else the root of a new trace.
   */
  startStream(method: string, protocol: string, listener: string, headers: Headers): StreamSpan {
    const parent = parseTraceparent(headers.get("traceparent"));
    const span = this.#tracer.startSpan(method, {
      kind: SpanKind.SERVER,
      attributes: {
        "http.request.method": method,
        "network.protocol.version": protocol.startsWith("HTTP/") ? protocol.slice(5) : protocol,
        "server.address": headers.get("host") ?? "",
        "mosaic.listener": listener,
      },
    }, parent === undefined ? ROOT : new Context(new RemoteSpan(parent)));
    return new StreamSpan(this.#tracer, span);
  }

  /** Runs `fn` with `span` as the active stream span (see {@linkcode tracePlugins}). */
  run<T>(span: StreamSpan, fn: () => T): T {
    return ACTIVE.run(span, fn);
  }
}

/**
 * Makes one call of a sandboxed module filter (Worker or child process) a client span
 * (`filter <name>`) under the running stream's span. Call only when
 * {@linkcode tracer} is defined.
 */
export function traceFilterCall<T>(filter: string, phase: string, call: Promise<T>): Promise<T> {
  const stream = ACTIVE.getStore();
  if (stream === undefined) return call;
  const span = stream.child(`filter ${filter}`, {
    "mosaic.filter": filter,
    "mosaic.filter.phase": phase,
  });
  return call.then((done) => {
    span.end();
    return done;
  }, (error) => {
    span.setAttribute("error.type", error?.name ?? "Error");
    span.setStatus({ code: SpanStatus.ERROR, message: String(error?.message ?? error) });
    span.end();
    throw error;
  });
}

/** The stream span of the running stream, across its awaits. */
const ACTIVE = new AsyncLocalStorage<StreamSpan>();

/**
 * Wraps a filter's plugin caller so that each call is a child span of the stream that
 * makes it (kind client, named `plugin <name>`). Returns `plugins` itself when tracing
 * is off.
 */
export function tracePlugins(plugins: PluginCaller, filter: string): PluginCaller {
  if (tracer === undefined) return plugins;
  return {
    call(name, request, options) {
      const stream = ACTIVE.getStore();
      if (stream === undefined) return plugins.call(name, request, options);
      const span = stream.child(`plugin ${name}`, {
        "mosaic.plugin": name,
        "mosaic.filter": filter,
        "mosaic.plugin.call_type": request.type ?? "",
      });
      return plugins.call(name, request, options).then((response) => {
        span.setAttribute("mosaic.plugin.status", response.status ?? 0);
        span.end();
        return response;
      }, (error) => {
        span.setAttribute("error.type", error?.name ?? "Error");
        span.setStatus({ code: SpanStatus.ERROR, message: String(error?.message ?? error) });
        span.end();
        throw error;
      });
    },
  };
}

const ROOT = new Context(undefined);

/**
 * Deno's tracer when its OpenTelemetry is on (`OTEL_DENO=true`), else undefined. Deno's
 * `startSpan` throws while OpenTelemetry is off; the probe span is never ended, so never
 * exported.
 */
function probe(): StreamTracer | undefined {
  // deno-lint-ignore no-explicit-any
  const provider = (Deno as any).telemetry?.tracerProvider;
  if (provider === undefined) return undefined;
  try {
    const tracer = provider.getTracer("mosaic") as OtelTracer;
    const span = tracer.startSpan("probe", undefined, ROOT);
    if (!span.isRecording()) return undefined;
    return new StreamTracer(tracer);
  } catch {
    return undefined;
  }
}

/** The stream tracer, or undefined when Deno's OpenTelemetry is off. Checked once. */
export const tracer: StreamTracer | undefined = probe();
