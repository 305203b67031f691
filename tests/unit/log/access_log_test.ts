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
