import assert from "node:assert/strict";
import {
  endAttempt,
  formatTraceparent,
  parseTraceparent,
  type SpanContext,
  StreamTracer,
  tracer,
} from "../../../src/trace/tracer.ts";

const ID = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT = "00f067aa0ba902b7";

Deno.test("a valid traceparent parses, upper case and a future version's extra fields too", () => {
  assert.deepEqual(parseTraceparent(`00-${ID}-${PARENT}-01`), {
    traceId: ID,
    spanId: PARENT,
    traceFlags: 1,
    isRemote: true,
  });
  assert.equal(parseTraceparent(`00-${ID.toUpperCase()}-${PARENT}-00`)?.traceFlags, 0);
  assert.equal(parseTraceparent(`01-${ID}-${PARENT}-01-more`)?.traceId, ID);
});

Deno.test("an invalid traceparent is ignored", () => {
  for (
    const value of [
      null,
      "",
      `00-${ID}-${PARENT}`,
      `00-${ID}-${PARENT}-01-extra`,
      `ff-${ID}-${PARENT}-01`,
      `00-${"0".repeat(32)}-${PARENT}-01`,
      `00-${ID}-${"0".repeat(16)}-01`,
      `00-${ID.replace("4", "g")}-${PARENT}-01`,
      `00_${ID}-${PARENT}-01`,
      `01-${ID}-${PARENT}-01x`,
    ]
  ) {
    assert.equal(parseTraceparent(value), undefined, String(value));
  }
});

Deno.test("traceparent formats back", () => {
  assert.equal(
    formatTraceparent({ traceId: ID, spanId: PARENT, traceFlags: 1 }),
    `00-${ID}-${PARENT}-01`,
  );
});

Deno.test("the tracer is off without OTEL_DENO", () => {
  if (Deno.env.get("OTEL_DENO") === "true") return;
  assert.equal(tracer, undefined);
});

/** A tracer that records what Mosaic asks of it, as Deno's would. */
function fakeTracer() {
  const spans: {
    name: string;
    kind?: number;
    parent: SpanContext | undefined;
    context: SpanContext;
    attributes: Record<string, string | number | boolean>;
    status?: number;
    ended: boolean;
  }[] = [];
  let next = 0;
  const SPAN_KEY = Symbol.for("OpenTelemetry Context Key SPAN");
  const tracer = {
    startSpan(
      name: string,
      options: { kind?: number; attributes?: Record<string, string | number | boolean> } = {},
      context?: { getValue(key: symbol): unknown },
    ) {
      const parentSpan = context?.getValue(SPAN_KEY) as { spanContext(): SpanContext } | undefined;
      const parent = parentSpan?.spanContext();
      const record = {
        name,
        kind: options.kind,
        parent,
        context: {
          traceId: parent?.traceId ?? "f".repeat(32),
          spanId: (++next).toString(16).padStart(16, "0"),
          traceFlags: 1,
        },
        attributes: { ...options.attributes },
        status: undefined as number | undefined,
        ended: false,
      };
      spans.push(record);
      return {
        spanContext: () => record.context,
        setAttribute: (k: string, v: string | number | boolean) => record.attributes[k] = v,
        setStatus: (s: { code: number }) => record.status = s.code,
        updateName: (n: string) => record.name = n,
        end: () => record.ended = true,
        isRecording: () => true,
      };
    },
  };
  return { tracer, spans };
}

Deno.test("a stream span is the child of the client's span; an attempt's, of the stream's", () => {
  const { tracer, spans } = fakeTracer();
  const headers = new Headers({ traceparent: `00-${ID}-${PARENT}-01`, host: "example.com" });
  const stream = new StreamTracer(tracer).startStream("GET", "HTTP/1.1", "web", headers);
  stream.setPath("/a/b?c=d");
  const attempt = stream.attempt(headers, "up", "10.0.0.1:8080", 1);
  assert.equal(headers.get("traceparent"), `00-${ID}-${attempt.spanContext().spanId}-01`);
  endAttempt(attempt, 503);
  const retry = stream.attempt(headers, "up", "10.0.0.2:8080", 2);
  endAttempt(retry, 0, "UF");
  stream.end(502, "UF", "api", "up", "10.0.0.2:8080");

  const [s, a, r] = spans;
  assert.equal(s.kind, 1);
  assert.deepEqual(s.parent, { traceId: ID, spanId: PARENT, traceFlags: 1, isRemote: true });
  assert.equal(s.context.traceId, ID);
  assert.deepEqual(s.attributes, {
    "http.request.method": "GET",
    "network.protocol.version": "1.1",
    "server.address": "example.com",
    "mosaic.listener": "web",
    "url.path": "/a/b",
    "http.response.status_code": 502,
    "mosaic.response_flag": "UF",
    "mosaic.route": "api",
    "http.route": "api",
    "mosaic.cluster": "up",
    "mosaic.upstream_host": "10.0.0.2:8080",
  });
  assert.equal(s.status, 2);
  assert.ok(s.ended);
  assert.equal(a.name, "upstream up");
  assert.equal(a.kind, 2);
  assert.equal(a.parent?.spanId, s.context.spanId);
  assert.equal(a.attributes["server.address"], "10.0.0.1");
  assert.equal(a.attributes["server.port"], 8080);
  assert.equal(a.attributes["http.response.status_code"], 503);
  assert.equal(a.status, 2);
  assert.equal(r.parent?.spanId, s.context.spanId);
  assert.equal(r.attributes["mosaic.attempt"], 2);
  assert.equal(r.attributes["error.type"], "UF");
  assert.ok(a.ended && r.ended);
});

Deno.test("a request without traceparent starts a new trace", () => {
  const { tracer, spans } = fakeTracer();
  new StreamTracer(tracer).startStream("POST", "HTTP/2", "web", new Headers()).end(
    200,
    "",
    undefined,
    undefined,
    "",
  );
  assert.equal(spans[0].parent, undefined);
  assert.equal(spans[0].status, undefined);
  assert.equal(spans[0].attributes["network.protocol.version"], "2");
  assert.equal(spans[0].attributes["mosaic.response_flag"], undefined);
});
