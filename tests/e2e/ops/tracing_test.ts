/**
 * Tracing through the real proxy process on Deno's built-in OpenTelemetry: an OTLP/HTTP
 * receiver (JSON) started by the test gets the stream span (the child of the client's
 * `traceparent`) and the upstream attempt span (the child of the stream span), and the
 * upstream sees a `traceparent` naming the attempt span. The same run checks a JSON
 * access log line.
 */

import assert from "node:assert/strict";
import { freePort, startProxy, startUpstream, writeConfig } from "../../helpers/proxy_process.ts";

interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId: string;
  name: string;
  kind: number;
  attributes: { key: string; value: Record<string, unknown> }[];
}

/** An OTLP/HTTP receiver of JSON traces on a loopback port; keeps spans of scope `mosaic`. */
function startReceiver() {
  const spans: OtlpSpan[] = [];
  const all: OtlpSpan[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    const body = await req.text();
    if (new URL(req.url).pathname === "/v1/traces") {
      const data = JSON.parse(body) as {
        resourceSpans: { scopeSpans: { scope: { name: string }; spans: OtlpSpan[] }[] }[];
      };
      for (const resource of data.resourceSpans ?? []) {
        for (const scope of resource.scopeSpans ?? []) {
          if (scope.scope?.name === "mosaic") spans.push(...scope.spans);
          all.push(...scope.spans);
        }
      }
    }
    return Response.json({});
  });
  return { spans, all, port: server.addr.port, close: () => server.shutdown() };
}

function attribute(span: OtlpSpan, key: string): unknown {
  const value = span.attributes.find((a) => a.key === key)?.value;
  if (value === undefined) return undefined;
  return value.stringValue ?? Number(value.intValue ?? value.doubleValue) ?? value.boolValue;
}

function config(
  listenerPort: number,
  upstream: string,
  logFile: string,
  protocol = "Http1",
): string {
  return `
servers:
  - default_log_level: INFO
    routers:
      - router_config_name: r
        virtual_hosts:
          - name: all
            domains: ["*"]
            routers:
              - match: { prefix: / }
                route: { cluster_name: up }
                name: api
    listeners:
      - name: web
        address: 127.0.0.1:${listenerPort}
        filter_chains:
          - filters:
              - type: proxy
                config: { router_config_name: r }
        access_logs:
          - log_path: ${logFile}
            log_format:
              json_format:
                status: "%RESPONSE_CODE%"
                flags: "%RESPONSE_FLAGS%"
                bytes_received: "%BYTES_RECEIVED%"
                bytes_sent: "%BYTES_SENT%"
                upstream_ms: "%UPSTREAM_SERVICE_TIME%"
                ua: "%REQ(USER-AGENT)%"
                ct: "%RESP(CONTENT-TYPE)%"
                trace: "%TRACE_ID%"
                request: "%REQ(:METHOD)% %REQ(:PATH)%"
cluster_manager:
  clusters:
    - name: up
      type: SIMPLE
      lb_type: LB_ROUNDROBIN
      protocol: ${protocol}
      hosts: [{ address: "${upstream}" }]
`;
}

Deno.test("stream and attempt spans reach an OTLP receiver; traceparent goes upstream", async () => {
  const receiver = startReceiver();
  const seen: string[] = [];
  const upstream = startUpstream((request) => {
    seen.push(request.headers.get("traceparent") ?? "");
    return new Response("hello\n", { headers: { "content-type": "text/x-test" } });
  });
  const dir = await Deno.makeTempDir({ prefix: "mosaic-tracing-" });
  const logFile = `${dir}/access.log`;
  const listenerPort = freePort();
  const proxy = await startProxy(
    await writeConfig(config(listenerPort, upstream.address, logFile), dir),
    {
      // Narrow grants: OpenTelemetry's exporter runs inside the runtime and needs none.
      flags: [`--allow-net=127.0.0.1`, `--allow-read=${dir}`, `--allow-write=${dir}`],
      env: {
        OTEL_DENO: "true",
        OTEL_EXPORTER_OTLP_PROTOCOL: "http/json",
        OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${receiver.port}`,
        OTEL_SERVICE_NAME: "mosaic-test",
        OTEL_BSP_SCHEDULE_DELAY: "100",
      },
    },
  );
  try {
    const traceId = "4bf92f3577b34da6a3ce929d0e0e4736";
    const clientSpan = "00f067aa0ba902b7";
    const res = await fetch(`http://127.0.0.1:${listenerPort}/hello?x=1`, {
      method: "POST",
      body: "ping",
      headers: { traceparent: `00-${traceId}-${clientSpan}-01`, "user-agent": "tracing-test" },
    });
    assert.equal(res.status, 200);
    assert.equal(await res.text(), "hello\n");

    const deadline = Date.now() + 15_000;
    const find = () => {
      const stream = receiver.spans.find((s) => s.kind === 2 && s.traceId === traceId);
      const attempt = receiver.spans.find((s) => s.kind === 3 && s.traceId === traceId);
      return { stream, attempt };
    };
    while (Date.now() < deadline && (find().stream === undefined || find().attempt === undefined)) {
      await new Promise((r) => setTimeout(r, 100));
    }
    const { stream, attempt } = find();
    assert.ok(stream, `no stream span in ${JSON.stringify(receiver.spans)}`);
    assert.ok(attempt, `no attempt span in ${JSON.stringify(receiver.spans)}`);
    assert.equal(stream.parentSpanId, clientSpan);
    assert.equal(attempt.parentSpanId, stream.spanId);
    assert.equal(stream.name, "POST");
    assert.equal(attribute(stream, "mosaic.route"), "api");
    assert.equal(attribute(stream, "mosaic.cluster"), "up");
    assert.equal(attribute(stream, "mosaic.upstream_host"), upstream.address);
    assert.equal(attribute(stream, "http.response.status_code"), 200);
    assert.equal(attribute(stream, "url.path"), "/hello");
    assert.equal(attribute(stream, "mosaic.listener"), "web");
    assert.equal(attribute(attempt, "mosaic.cluster"), "up");
    assert.equal(attribute(attempt, "mosaic.attempt"), 1);
    assert.equal(attribute(attempt, "http.response.status_code"), 200);
    assert.equal(attribute(attempt, "server.port"), upstream.port);

    // The upstream saw the same trace, its parent the attempt span.
    assert.deepEqual(seen, [`00-${traceId}-${attempt.spanId}-01`]);

    // A request without traceparent starts a trace of its own, still propagated.
    const res2 = await fetch(`http://127.0.0.1:${listenerPort}/second`);
    await res2.body?.cancel();
    assert.match(seen[1], /^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
    assert.notEqual(seen[1].slice(3, 35), traceId);

    // The JSON access log line of the first request.
    let lines: string[] = [];
    while (Date.now() < deadline && lines.length < 2) {
      lines = (await Deno.readTextFile(logFile).catch(() => "")).split("\n").filter(Boolean);
      if (lines.length < 2) await new Promise((r) => setTimeout(r, 50));
    }
    const line = JSON.parse(lines[0]);
    assert.equal(line.status, 200);
    assert.equal(line.flags, null);
    assert.equal(line.bytes_received, 4);
    assert.equal(line.bytes_sent, 6);
    assert.equal(typeof line.upstream_ms, "number");
    assert.equal(line.ua, "tracing-test");
    assert.equal(line.ct, "text/x-test");
    assert.equal(line.trace, traceId);
    assert.equal(line.request, "POST /hello?x=1");
    assert.equal(JSON.parse(lines[1]).trace, seen[1].slice(3, 35));
  } finally {
    await proxy.stop();
    await upstream.close();
    await receiver.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("without OTEL_DENO the client's traceparent goes upstream unchanged", async () => {
  const seen: string[] = [];
  const upstream = startUpstream((request) => {
    seen.push(request.headers.get("traceparent") ?? "");
    return new Response("ok\n");
  });
  const dir = await Deno.makeTempDir({ prefix: "mosaic-tracing-" });
  const listenerPort = freePort();
  const proxy = await startProxy(
    await writeConfig(config(listenerPort, upstream.address, `${dir}/access.log`), dir),
    {
      flags: [`--allow-net=127.0.0.1`, `--allow-read=${dir}`, `--allow-write=${dir}`],
      env: { OTEL_DENO: "false" },
    },
  );
  try {
    const parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    const res = await fetch(`http://127.0.0.1:${listenerPort}/`, {
      headers: { traceparent: parent },
    });
    await res.body?.cancel();
    assert.equal(res.status, 200);
    assert.deepEqual(seen, [parent]);
  } finally {
    await proxy.stop();
    await upstream.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a plugin call is a child span of the stream", async () => {
  // Debian's python3-grpcio for the example's Python checker (idempotent).
  const setup = await new Deno.Command("sh", {
    args: [new URL("../../../examples/plugin_filter/setup.sh", import.meta.url).pathname, "python"],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.ok(setup.success, new TextDecoder().decode(setup.stderr));
  const receiver = startReceiver();
  const upstream = startUpstream(() => new Response("ok\n"));
  const dir = await Deno.makeTempDir({ prefix: "mosaic-tracing-" });
  const example = new URL("../../../examples/plugin_filter/", import.meta.url).pathname;
  const listenerPort = freePort();
  const yaml = config(listenerPort, upstream.address, `${dir}/access.log`)
    .replace(
      "        access_logs:",
      `        stream_filters:
          - type: plugin
            config: { plugin: checker, timeout: 2s, failure_mode: closed }
        access_logs:`,
    ) + `plugins:
  checker:
    command: [/usr/bin/python3, ${example}python/checker.py, -c, ${example}checkconf.json]
    network: tcp
`;
  const proxy = await startProxy(await writeConfig(yaml, dir), {
    flags: [
      "--allow-net=127.0.0.1",
      "--allow-read",
      `--allow-write=${dir}`,
      "--allow-run=/usr/bin/python3",
      "--allow-env",
    ],
    env: {
      OTEL_DENO: "true",
      OTEL_EXPORTER_OTLP_PROTOCOL: "http/json",
      OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${receiver.port}`,
      OTEL_BSP_SCHEDULE_DELAY: "100",
    },
  });
  try {
    const traceId = "5bf92f3577b34da6a3ce929d0e0e4737";
    const send = async (team: string) => {
      const res = await fetch(`http://127.0.0.1:${listenerPort}/`, {
        headers: {
          traceparent: `00-${traceId}-00f067aa0ba902b7-01`,
          user: "admin",
          "x-team": team,
        },
      });
      await res.body?.cancel();
      return res.status;
    };
    assert.equal(await send("gateway"), 200);
    assert.equal(await send("other"), 403);
    const deadline = Date.now() + 15_000;
    const of = (kind: number) =>
      receiver.spans.filter((s) => s.kind === kind && s.traceId === traceId);
    const plugins = () => of(3).filter((s) => s.name === "plugin checker");
    while (Date.now() < deadline && (of(2).length < 2 || plugins().length < 2)) {
      await new Promise((r) => setTimeout(r, 100));
    }
    const streams = of(2);
    assert.equal(streams.length, 2, JSON.stringify(receiver.spans));
    const calls = plugins();
    assert.equal(calls.length, 2, JSON.stringify(receiver.spans));
    for (const call of calls) {
      assert.ok(streams.some((s) => s.spanId === call.parentSpanId), "plugin span's parent");
      assert.equal(attribute(call, "mosaic.plugin"), "checker");
      assert.equal(attribute(call, "mosaic.filter"), "plugin");
      assert.equal(attribute(call, "mosaic.plugin.call_type"), "before_route");
    }
    assert.deepEqual(
      calls.map((c) => attribute(c, "mosaic.plugin.status")).sort(),
      [-1, 0],
    );
    const denied = streams.find((s) => attribute(s, "http.response.status_code") === 403);
    assert.ok(denied);
    // The denied stream went nowhere: no attempt span under it.
    assert.ok(!of(3).some((s) => s.parentSpanId === denied.spanId && s.name !== "plugin checker"));
  } finally {
    await proxy.stop();
    await upstream.close();
    await receiver.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("an HTTP/2 upstream sees the trace, under the attempt span", async () => {
  const receiver = startReceiver();
  const seen: string[] = [];
  const upstream = startUpstream((request) => {
    seen.push(request.headers.get("traceparent") ?? "");
    return new Response("ok\n");
  });
  const dir = await Deno.makeTempDir({ prefix: "mosaic-tracing-" });
  const listenerPort = freePort();
  const proxy = await startProxy(
    await writeConfig(config(listenerPort, upstream.address, `${dir}/access.log`, "Http2"), dir),
    {
      flags: [`--allow-net=127.0.0.1`, `--allow-read=${dir}`, `--allow-write=${dir}`],
      env: {
        OTEL_DENO: "true",
        OTEL_EXPORTER_OTLP_PROTOCOL: "http/json",
        OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${receiver.port}`,
        OTEL_BSP_SCHEDULE_DELAY: "100",
      },
    },
  );
  try {
    const traceId = "6bf92f3577b34da6a3ce929d0e0e4738";
    const res = await fetch(`http://127.0.0.1:${listenerPort}/`, {
      headers: { traceparent: `00-${traceId}-00f067aa0ba902b7-01` },
    });
    await res.body?.cancel();
    assert.equal(res.status, 200);
    const deadline = Date.now() + 15_000;
    const attempt = () => receiver.spans.find((s) => s.kind === 3 && s.traceId === traceId);
    while (Date.now() < deadline && attempt() === undefined) {
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.ok(attempt(), JSON.stringify(receiver.spans));
    // Deno instruments node:http2 itself: its client span nests under the attempt span,
    // and its id is the one the upstream sees.
    const http2 = () => receiver.all.find((s) => s.parentSpanId === attempt()!.spanId);
    while (Date.now() < deadline && http2() === undefined) {
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.ok(http2(), JSON.stringify(receiver.all));
    assert.equal(http2()!.traceId, traceId);
    assert.deepEqual(seen, [`00-${traceId}-${http2()!.spanId}-01`]);
  } finally {
    await proxy.stop();
    await upstream.close();
    await receiver.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a call of a sandboxed module filter is a child span of the stream", async () => {
  const receiver = startReceiver();
  const upstream = startUpstream(() => new Response("ok\n"));
  const dir = await Deno.makeTempDir({ prefix: "mosaic-tracing-" });
  const module = `${dir}/tag.js`;
  await Deno.writeTextFile(
    module,
    `export function createStreamFilterFactory() {
  return { createFilterChain(chain) { chain.addReceiver({ onReceive(s) {
    s.headers.set("x-tag", "1");
    return "continue";
  } }, "before_route"); } };
}
`,
  );
  const listenerPort = freePort();
  const yaml = config(listenerPort, upstream.address, `${dir}/access.log`).replace(
    "        access_logs:",
    `        stream_filters:
          - type: module
            name: tag
            module: ${module}
            sandbox: { permissions: {}, timeout: 2s }
        access_logs:`,
  );
  const proxy = await startProxy(await writeConfig(yaml, dir), {
    flags: ["--allow-net=127.0.0.1", `--allow-read=${dir}`, `--allow-write=${dir}`],
    env: {
      OTEL_DENO: "true",
      OTEL_EXPORTER_OTLP_PROTOCOL: "http/json",
      OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${receiver.port}`,
      OTEL_BSP_SCHEDULE_DELAY: "100",
    },
  });
  try {
    const traceId = "7bf92f3577b34da6a3ce929d0e0e4739";
    const res = await fetch(`http://127.0.0.1:${listenerPort}/`, {
      headers: { traceparent: `00-${traceId}-00f067aa0ba902b7-01` },
    });
    await res.body?.cancel();
    assert.equal(res.status, 200);
    const deadline = Date.now() + 15_000;
    const stream = () => receiver.spans.find((s) => s.kind === 2 && s.traceId === traceId);
    const calls = () =>
      receiver.spans.filter((s) => s.name === "filter tag" && s.traceId === traceId);
    while (Date.now() < deadline && (stream() === undefined || calls().length < 1)) {
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.ok(stream(), JSON.stringify(receiver.spans));
    // One call: the module has a filter in before_route only, so the other phases are
    // not sent to its Worker.
    assert.deepEqual(calls().map((c) => attribute(c, "mosaic.filter.phase")), ["before_route"]);
    assert.equal(attribute(calls()[0], "mosaic.filter"), "tag");
    for (const call of calls()) assert.equal(call.parentSpanId, stream()!.spanId);
  } finally {
    await proxy.stop();
    await upstream.close();
    await receiver.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("with workers: 2 each worker traces the streams it serves", async () => {
  const receiver = startReceiver();
  const seen: string[] = [];
  const upstream = startUpstream((request) => {
    seen.push(request.headers.get("traceparent") ?? "");
    return new Response("ok\n");
  });
  const dir = await Deno.makeTempDir({ prefix: "mosaic-tracing-" });
  const listenerPort = freePort();
  const proxy = await startProxy(
    await writeConfig(
      config(listenerPort, upstream.address, `${dir}/access.log`) + "workers: 2\n",
      dir,
    ),
    {
      flags: [`--allow-net=127.0.0.1`, `--allow-read`, `--allow-write=${dir}`],
      env: {
        OTEL_DENO: "true",
        OTEL_EXPORTER_OTLP_PROTOCOL: "http/json",
        OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${receiver.port}`,
        OTEL_BSP_SCHEDULE_DELAY: "100",
      },
    },
  );
  try {
    const ids = ["8bf92f3577b34da6a3ce929d0e0e4730", "8bf92f3577b34da6a3ce929d0e0e4731"];
    for (const id of [...ids, ...ids]) {
      const res = await fetch(`http://127.0.0.1:${listenerPort}/`, {
        headers: { traceparent: `00-${id}-00f067aa0ba902b7-01`, connection: "close" },
      });
      await res.body?.cancel();
      assert.equal(res.status, 200);
    }
    const deadline = Date.now() + 15_000;
    const attempts = () => receiver.spans.filter((s) => s.kind === 3 && ids.includes(s.traceId));
    while (Date.now() < deadline && attempts().length < 4) {
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(attempts().length, 4, JSON.stringify(receiver.spans));
    assert.deepEqual(
      new Set(seen),
      new Set(attempts().map((a) => `00-${a.traceId}-${a.spanId}-01`)),
    );
  } finally {
    await proxy.stop();
    await upstream.close();
    await receiver.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a failed attempt's span carries the response flag, as the stream's does", async () => {
  const receiver = startReceiver();
  const dir = await Deno.makeTempDir({ prefix: "mosaic-tracing-" });
  const listenerPort = freePort();
  const logFile = `${dir}/access.log`;
  const proxy = await startProxy(
    await writeConfig(config(listenerPort, `127.0.0.1:${freePort()}`, logFile), dir),
    {
      flags: [`--allow-net=127.0.0.1`, `--allow-read=${dir}`, `--allow-write=${dir}`],
      env: {
        OTEL_DENO: "true",
        OTEL_EXPORTER_OTLP_PROTOCOL: "http/json",
        OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${receiver.port}`,
        OTEL_BSP_SCHEDULE_DELAY: "100",
      },
    },
  );
  try {
    const traceId = "9bf92f3577b34da6a3ce929d0e0e4731";
    const res = await fetch(`http://127.0.0.1:${listenerPort}/`, {
      headers: { traceparent: `00-${traceId}-00f067aa0ba902b7-01` },
    });
    await res.body?.cancel();
    assert.equal(res.status, 502);
    const deadline = Date.now() + 15_000;
    const find = (kind: number) =>
      receiver.spans.find((s) => s.kind === kind && s.traceId === traceId);
    while (Date.now() < deadline && (find(2) === undefined || find(3) === undefined)) {
      await new Promise((r) => setTimeout(r, 100));
    }
    const stream = find(2)!;
    const attempt = find(3)!;
    assert.ok(stream && attempt, JSON.stringify(receiver.spans));
    assert.equal(attribute(stream, "mosaic.response_flag"), "UF");
    assert.equal(attribute(stream, "http.response.status_code"), 502);
    assert.equal(attribute(attempt, "error.type"), "UF");
    assert.equal(attempt.parentSpanId, stream.spanId);
    let line = "";
    while (Date.now() < deadline && line === "") {
      line = (await Deno.readTextFile(logFile).catch(() => "")).trim();
      if (line === "") await new Promise((r) => setTimeout(r, 50));
    }
    const logged = JSON.parse(line);
    assert.equal(logged.status, 502);
    assert.equal(logged.flags, "UF");
    assert.equal(logged.upstream_ms, null);
    assert.equal(logged.trace, traceId);
  } finally {
    await proxy.stop();
    await receiver.close();
    await Deno.remove(dir, { recursive: true });
  }
});
