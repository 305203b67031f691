import assert from "node:assert/strict";
import { type AccessRecord, compileAccessLogFormat } from "../../../src/log/access_log.ts";

const record: AccessRecord = {
  startTime: Date.UTC(2026, 10, 24, 12, 0, 0),
  durationMs: 7,
  method: "GET",
  path: "/a?b=1",
  protocol: "HTTP/1.1",
  status: 502,
  flag: "UF",
  bytesSent: -1,
  remoteAddr: { hostname: "127.0.0.1", port: 5555 },
  upstreamHost: "10.0.0.1:80",
  requestHeaders: new Headers({ "x-request-id": "r1", "user-agent": "curl" }),
  listener: "edge",
};

Deno.test("MOSN variables render from the record", () => {
  const line = compileAccessLogFormat(
    "%start_time% %method% %path% %response_code% %response_flag% %duration% %bytes_sent% %upstream_host% %downstream_remote_address% %request_id%",
  )(record);
  assert.equal(
    line,
    "2026-11-24T12:00:00.000Z GET /a?b=1 502 UF 7ms - 10.0.0.1:80 127.0.0.1:5555 r1",
  );
});

Deno.test("request headers render by name, missing ones as a dash", () => {
  const format = compileAccessLogFormat("ua=%request_header_user_agent% x=%request_header_x_none%");
  assert.equal(format(record), "ua=curl x=-");
});

Deno.test("an unknown variable is an error that names it", () => {
  assert.throws(
    () => compileAccessLogFormat("%status_code%"),
    /Unknown access log variable %status_code%/,
  );
});

const full: AccessRecord = {
  ...record,
  status: 200,
  flag: "",
  bytesSent: 120,
  bytesReceived: 42,
  durationMs: 30,
  responseDurationMs: 21.6,
  upstreamServiceMs: 12.4,
  cluster: "backend",
  routeName: "api",
  attempts: 2,
  traceId: "4bf92f3577b34da6a3ce929d0e0e4736",
  spanId: "00f067aa0ba902b7",
  requestHeaders: new Headers({
    host: "example.com",
    "user-agent": "curl",
    "x-forwarded-proto": "https",
    "content-length": "42",
  }),
  responseHeaders: new Headers({ "content-type": "text/plain", "x-up": "yes" }),
};

Deno.test("sizes: %BYTES_RECEIVED% / %bytes_received%, %BYTES_SENT% / %bytes_sent%", () => {
  const format = compileAccessLogFormat(
    "%BYTES_RECEIVED% %bytes_received% %BYTES_SENT% %bytes_sent%",
  );
  assert.equal(format(full), "42 42 120 120");
  // Without a known size, bytes_received falls back to Content-Length, then 0.
  assert.equal(format({ ...full, bytesReceived: undefined }), "42 42 120 120");
  const none = { ...record, requestHeaders: new Headers() };
  assert.equal(format(none), "0 0 - -");
  assert.equal(format({ ...none, bytesReceived: -1 }), "- - - -");
});

Deno.test("times: %DURATION%, %RESPONSE_DURATION%, %UPSTREAM_SERVICE_TIME%, MOSN's durations", () => {
  const format = compileAccessLogFormat(
    "%DURATION% %RESPONSE_DURATION% %UPSTREAM_SERVICE_TIME% %upstream_service_time% " +
      "%duration% %response_received_duration%",
  );
  assert.equal(format(full), "30 22 12 12 30ms 22ms");
  // A local response has no upstream time.
  assert.equal(format(record), "7 - - - 7ms 7ms");
  assert.equal(
    format({ ...record, responseDurationMs: -1, upstreamServiceMs: -1 }),
    "7 - - - 7ms 7ms",
  );
});

Deno.test("%REQ(x)%: headers, pseudo-headers, an alternative and a length limit", () => {
  const format = compileAccessLogFormat(
    "%REQ(USER-AGENT)% %REQ(:METHOD)% %REQ(:PATH)% %REQ(:AUTHORITY)% %REQ(:SCHEME)% " +
      "%REQ(X-NONE)% %REQ(X-NONE?USER-AGENT)% %REQ(HOST):4%",
  );
  assert.equal(format(full), "curl GET /a?b=1 example.com https - curl exam");
});

Deno.test("%RESP(x)% and %response_header_<name>%", () => {
  const format = compileAccessLogFormat(
    "%RESP(CONTENT-TYPE)% %RESP(X-NONE?X-UP)% %RESP(:STATUS)% %response_header_x_up% " +
      "%RESP(CONTENT-TYPE):4% %RESP(X-NONE)%",
  );
  assert.equal(format(full), "text/plain yes 200 yes text -");
  // A stream without response headers (the client left) logs dashes.
  assert.equal(format(record), "- - 502 - - -");
});

Deno.test("trace id: the stream's, else the request's traceparent, else a dash", () => {
  const format = compileAccessLogFormat("%TRACE_ID% %trace_id% %span_id%");
  assert.equal(format(full), `${full.traceId} ${full.traceId} ${full.spanId}`);
  const fromHeader = {
    ...record,
    requestHeaders: new Headers({
      traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
    }),
  };
  assert.equal(
    format(fromHeader),
    "0af7651916cd43dd8448eb211c80319c 0af7651916cd43dd8448eb211c80319c -",
  );
  assert.equal(format(record), "- - -");
});

Deno.test("cluster, route name, attempts, remote address without port", () => {
  const format = compileAccessLogFormat(
    "%UPSTREAM_CLUSTER% %upstream_cluster% %ROUTE_NAME% %route_name% " +
      "%UPSTREAM_REQUEST_ATTEMPT_COUNT% %DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT% " +
      "%DOWNSTREAM_REMOTE_ADDRESS% %UPSTREAM_HOST% %RESPONSE_CODE% %RESPONSE_FLAGS% " +
      "%PROTOCOL% %START_TIME%",
  );
  assert.equal(
    format(full),
    "backend backend api api 2 127.0.0.1 127.0.0.1:5555 10.0.0.1:80 200 - HTTP/1.1 " +
      "2026-11-24T12:00:00.000Z",
  );
  assert.equal(format(record).slice(0, 14), "- - - - 0 127.");
});

Deno.test("a JSON format: one object per line, numbers typed, absent values null", () => {
  const format = compileAccessLogFormat({
    json_format: {
      start: "%START_TIME%",
      status: "%RESPONSE_CODE%",
      flags: "%RESPONSE_FLAGS%",
      bytes: { in: "%BYTES_RECEIVED%", out: "%BYTES_SENT%" },
      upstream_ms: "%UPSTREAM_SERVICE_TIME%",
      request: "%REQ(:METHOD)% %REQ(:PATH)%",
      ua: "%REQ(USER-AGENT)%",
      ct: "%RESP(CONTENT-TYPE)%",
      trace: "%TRACE_ID%",
      code_text: "code=%response_code%",
      service: "mosaic",
      sampled: true,
    },
  });
  const line = format(full);
  assert.ok(!line.includes("\n"));
  assert.deepEqual(JSON.parse(line), {
    start: "2026-11-24T12:00:00.000Z",
    status: 200,
    flags: null,
    bytes: { in: 42, out: 120 },
    upstream_ms: 12,
    request: "GET /a?b=1",
    ua: "curl",
    ct: "text/plain",
    trace: full.traceId,
    code_text: "code=200",
    service: "mosaic",
    sampled: true,
  });
  const local = JSON.parse(format(record));
  assert.equal(local.status, 502);
  assert.equal(local.flags, "UF");
  assert.equal(local.upstream_ms, null);
  assert.equal(local.ct, null);
  assert.equal(local.bytes.out, null);
});

Deno.test("a JSON format escapes what the client sent", () => {
  const format = compileAccessLogFormat({ json_format: { ua: "%REQ(USER-AGENT)%" } });
  const evil = { ...record, requestHeaders: new Headers({ "user-agent": 'a"b\\c' }) };
  assert.deepEqual(JSON.parse(format(evil)), { ua: 'a"b\\c' });
});

Deno.test("REQ() without a name, and unknown variables in a JSON format, are errors", () => {
  assert.throws(() => compileAccessLogFormat("%REQ()%"), /needs a header name/);
  assert.throws(
    () => compileAccessLogFormat({ json_format: { a: "%nope%" } }),
    /Unknown access log variable %nope%/,
  );
});

Deno.test("MOSN's response_flags alias and the upstream transport failure reason", () => {
  const format = compileAccessLogFormat(
    "%response_flags% %upstream_transport_failure_reason% %UPSTREAM_TRANSPORT_FAILURE_REASON%",
  );
  assert.equal(
    format({ ...record, upstreamFailureReason: "connection refused" }),
    "UF connection refused connection refused",
  );
  assert.equal(format(full), "- - -");
});
