/**
 * The filter conformance suite against a Bolt stream: the same
 * {@linkcode defineConformanceSuite} as every runtime, with `conformance_filter.ts` running
 * on a real Bolt listener (the codec, `RpcListener`, the lifecycle, a `MultiplexPool`), so
 * what the filter sees and does goes through the codec path both ways.
 *
 * The protocol layer speaks sockets only (the listener accepts TCP, the pool connects), so
 * this runs over loopback:
 *
 * ```
 * suite's request ──► in-process HTTP lifecycle (a pass-through filter)
 *   ──► bridge pool: the HTTP request as a Bolt request frame (the codec encodes it)
 *   ──► Mosaic runtime: Bolt listener ─ conformance filter ─ route ─ MultiplexPool
 *   ──► Bolt echo upstream (the codec decodes; it answers what it saw as JSON content)
 * ```
 *
 * and back: the Bolt response's header map and content become the HTTP response the suite
 * checks. A response the proxy made (a filter's `respond()`, a throw) reaches a SOFARPC
 * client as an `RpcServerException` whose message is `[mosaic] <body> (status <status>)`;
 * the bridge reads the status and body back from it, as a client would show them.
 *
 * Request paths map to Bolt's request line: `/special/x` is service `special`, method `x`
 * (`sofa_head_method_name`), so routes match on the same path. The Bolt runtime's routes
 * mirror the suite's: `/special` carries `per_filter_config: { conformance: { tag: route } }`.
 *
 * @module
 */

import assert from "node:assert/strict";
import { registerProtocol, registerStreamFilter } from "../../mod.ts";
import { getProtocol } from "../../src/protocol/registry.ts";
import {
  type BoltMeta,
  BoltStatus,
  createProtocolCodec,
} from "../../extensions/protocols/bolt/mod.ts";
import { parseConfig } from "../../src/config/load.ts";
import type { PluginCaller } from "../../src/filter/api.ts";
import { loadFilterModule } from "../../src/module/loader.ts";
import type { InProcessFilter } from "../../src/proxy/in_process.ts";
import type { ProtocolFrame } from "../../src/protocol/api.ts";
import { FrameWriter, readFrames } from "../../src/protocol/frame_io.ts";
import { Runtime } from "../../src/server/runtime.ts";
import type {
  ConnectionPool,
  UpstreamRequest,
  UpstreamResponse,
} from "../../src/upstream/types.ts";
import { defineConformanceSuite } from "./suite.ts";

if (getProtocol("bolt") === undefined) registerProtocol("bolt", createProtocolCodec);
const codec = await createProtocolCodec({});
const MODULE = new URL("./conformance_filter.ts", import.meta.url).pathname;
const MAX_FRAME = 1 << 24;
const REQUEST_CLASS = "com.alipay.sofa.rpc.core.request.SofaRequest";
const RESPONSE_CLASS = "com.alipay.sofa.rpc.core.response.SofaResponse";

/** Connections a test opened, closed at its end. */
class Sockets {
  #conns = new Set<Deno.Conn>();
  #loops = new Set<Promise<void>>();

  /** Serves `conn` with `onFrame` until it closes. */
  serve(conn: Deno.Conn, onFrame: (frame: ProtocolFrame, writer: FrameWriter) => void): void {
    this.#conns.add(conn);
    const writer = new FrameWriter(conn, () => {});
    const loop = readFrames(conn, codec, MAX_FRAME, (bytes) => onFrame(codec.decode(bytes), writer))
      .catch(() => {})
      .finally(() => {
        this.#conns.delete(conn);
        try {
          conn.close();
        } catch { /* closed already */ }
      });
    this.#loops.add(loop);
    loop.then(() => this.#loops.delete(loop));
  }

  async close(): Promise<void> {
    for (const conn of this.#conns) {
      try {
        conn.close();
      } catch { /* closed already */ }
    }
    await Promise.all(this.#loops);
  }
}

/** A Bolt server that answers every request with what it saw: `{ method, path, headers, body }`. */
function startEchoUpstream(): { address: string; close(): Promise<void> } {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const sockets = new Sockets();
  const accepting = (async () => {
    try {
      for await (const conn of listener) {
        sockets.serve(conn, (frame, writer) => {
          if (frame.type !== "request") return;
          const line = codec.requestLine(frame);
          const seen = {
            method: line.method,
            path: line.path,
            // As an HTTP server would show them: names lowercased, and the content's
            // length (Bolt's own framing) as content-length.
            headers: {
              ...Object.fromEntries(frame.headers.map(([k, v]) => [k.toLowerCase(), v])),
              "content-length": String(frame.body.length),
            },
            body: new TextDecoder().decode(frame.body),
            /** The header map exactly as it came. */
            map: frame.headers,
          };
          writer.write(codec.encode({
            type: "response",
            requestId: frame.requestId,
            headers: [],
            body: new TextEncoder().encode(JSON.stringify(seen)),
            status: BoltStatus.SUCCESS,
            timeoutMs: 0,
            meta: { ...(frame.meta as BoltMeta), cmdCode: 2, className: RESPONSE_CLASS },
          }));
        });
      }
    } catch { /* closed */ }
  })();
  return {
    address: `127.0.0.1:${(listener.addr as Deno.NetAddr).port}`,
    async close() {
      listener.close();
      await accepting;
      await sockets.close();
    },
  };
}

const NO_PLUGINS: PluginCaller = {
  call: (name) => Promise.reject(new Error(`Plugin "${name}" is not declared`)),
};

function boltConfig(upstream: string, failureMode: string, config: unknown): string {
  return `
servers:
  - routers:
      - router_config_name: r
        virtual_hosts:
          - name: rpc
            domains: ["*"]
            routers:
              - match: { prefix: /special }
                route: { cluster_name: echo }
                per_filter_config:
                  conformance: { tag: route }
              - match: { prefix: / }
                route: { cluster_name: echo }
    listeners:
      - name: bolt_in
        address: 127.0.0.1:0
        filter_chains:
          - filters:
              - type: proxy
                config: { downstream_protocol: bolt, router_config_name: r }
        stream_filters:
          - type: module
            name: conformance
            module: ${MODULE}
            failure_mode: ${failureMode}
            config: ${JSON.stringify(config)}
cluster_manager:
  clusters:
    - { name: echo, type: SIMPLE, lb_type: LB_RANDOM, hosts: [{ address: "${upstream}" }] }
`;
}

/** The Bolt half of one suite proxy: the runtime, its upstream, and a client connection. */
interface BoltSide {
  send(frame: ProtocolFrame): Promise<ProtocolFrame>;
  close(): Promise<void>;
}

async function startBoltSide(failureMode: string, config: unknown): Promise<BoltSide> {
  const upstream = startEchoUpstream();
  const { config: parsed } = parseConfig(
    boltConfig(upstream.address, failureMode, config),
    "bolt_conformance.yaml",
  );
  const runtime = await Runtime.start(parsed, {
    plugins: NO_PLUGINS,
    resolveModule: loadFilterModule,
  });
  const port = runtime.addresses.get("bolt_in")!.port;
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const sockets = new Sockets();
  const waiting = new Map<number, (frame: ProtocolFrame) => void>();
  let writer!: FrameWriter;
  sockets.serve(conn, (frame, w) => {
    writer = w;
    waiting.get(frame.requestId)?.(frame);
    waiting.delete(frame.requestId);
  });
  let nextId = 1;
  return {
    send(frame) {
      const id = nextId++;
      const answer = new Promise<ProtocolFrame>((resolve) => waiting.set(id, resolve));
      // The first frame goes out on a writer of its own; answers come on the same socket.
      (writer ?? (writer = new FrameWriter(conn, () => {}))).write(
        codec.encode({ ...frame, requestId: id }),
      );
      return answer;
    },
    async close() {
      await sockets.close();
      await runtime.shutdown(0);
      await upstream.close();
    },
  };
}

/** The Bolt side of the suite proxy being built now (one at a time: tests run in order). */
let current: Promise<BoltSide> | undefined;

/** The suite's filter entry: passes through, and starts the Bolt side with the real filter. */
registerStreamFilter("bolt_conformance_bridge", (raw) => {
  const { failureMode, config } = raw as { failureMode: string; config: unknown };
  const side = startBoltSide(failureMode, config);
  current = side;
  return {
    createFilterChain() {},
    async destroy() {
      await (await side).close();
    },
  };
});

/** The HTTP request as a Bolt request frame, as a SOFARPC client would send it. */
async function requestFrame(request: UpstreamRequest): Promise<ProtocolFrame> {
  const url = new URL(request.path, "http://bolt");
  const [service = "", method = ""] = url.pathname.slice(1).split("/");
  const headers: [string, string][] = [["service", service]];
  if (method !== "") headers.push(["sofa_head_method_name", method]);
  // What the in-process HTTP side added or the suite's fetch-style request carries.
  const ADDED_BY_HTTP = [
    "host",
    "content-length",
    "content-type",
    "transfer-encoding",
    "connection",
    "x-request-id",
  ];
  for (const [name, value] of request.headers) {
    if (!ADDED_BY_HTTP.includes(name) && !name.startsWith("x-forwarded-")) {
      headers.push([name, value]);
    }
  }
  const body = request.body === null
    ? new Uint8Array(0)
    : request.body instanceof Uint8Array
    ? request.body
    : await new Response(request.body).bytes();
  return {
    type: "request",
    requestId: 0,
    headers,
    body,
    status: 0,
    timeoutMs: 3000,
    meta: { cmdCode: 1, version: 1, codec: 1, className: REQUEST_CLASS } satisfies BoltMeta,
  };
}

/** The Bolt response as the HTTP response the suite checks. */
function httpResponse(frame: ProtocolFrame): UpstreamResponse {
  let status = codec.httpStatus(frame);
  let body = frame.body;
  if (frame.status !== BoltStatus.SUCCESS) {
    // The RpcServerException a SOFARPC client reads: `[mosaic] <body> (status <status>)`.
    const text = new TextDecoder("latin1").decode(frame.body);
    const made = /\[mosaic\] (.*?) \(status (\d+)\)/.exec(text);
    if (made !== null) {
      status = Number(made[2]);
      body = new TextEncoder().encode(made[1] === "local response" ? "" : made[1]);
    }
  }
  return {
    status,
    statusText: "",
    headers: new Headers(frame.headers),
    body: new Response(body as Uint8Array<ArrayBuffer>).body,
    trailers: Promise.resolve(new Headers()),
  };
}

/** The cluster's pool in the suite's in-process proxy: every request over Bolt. */
function bridgePool(): ConnectionPool {
  const side = current!;
  return {
    size: 1,
    async request(request) {
      const frame = await requestFrame(request);
      return httpResponse(await (await side).send(frame));
    },
    close() {},
  };
}

defineConformanceSuite(
  "Bolt stream",
  (failureMode, config): InProcessFilter => ({
    type: "bolt_conformance_bridge",
    config: { failureMode, config },
  }),
  { pool: bridgePool },
  {},
);

Deno.test("conformance (Bolt stream): the upstream's header map holds what the client and the filter put there, spelled as sent", async () => {
  const side = await startBoltSide("closed", { tag: "listener" });
  try {
    const frame: ProtocolFrame = {
      type: "request",
      requestId: 0,
      headers: [
        ["service", "com.example.EchoService:1.0"],
        ["sofa_head_method_name", "echo"],
        ["X-Trace", "t-1"],
        ["X-Upper-Body", "1"],
      ],
      body: new TextEncoder().encode("hello bolt"),
      status: 0,
      timeoutMs: 3000,
      meta: { cmdCode: 1, version: 1, codec: 1, className: REQUEST_CLASS } satisfies BoltMeta,
    };
    const reply = await side.send(frame);
    assert.equal(reply.status, BoltStatus.SUCCESS);
    const seen = JSON.parse(new TextDecoder().decode(reply.body));
    assert.equal(seen.path, "/com.example.EchoService:1.0/echo");
    assert.equal(seen.body, "HELLO BOLT");
    // No HTTP fields (host, x-forwarded-*, x-request-id, content-length after the body
    // was replaced) leak into the Bolt map; the client's names keep their case.
    const sorted = (map: [string, string][]) => [...map].sort(([a], [b]) => a < b ? -1 : 1);
    assert.deepEqual(
      sorted(seen.map),
      sorted([
        ["service", "com.example.EchoService:1.0"],
        ["sofa_head_method_name", "echo"],
        ["X-Trace", "t-1"],
        ["X-Upper-Body", "1"],
        ["x-conformance", "listener"],
      ]),
    );
    // A filter's respond(403) reaches the client as Bolt's UNKNOWN status, with an
    // RpcServerException naming the filter's body and status.
    const denied = await side.send({ ...frame, headers: [...frame.headers, ["x-deny", "1"]] });
    assert.equal(denied.status, BoltStatus.UNKNOWN);
    assert.equal((denied.meta as BoltMeta).cmdCode, 2);
    assert.match(
      new TextDecoder("latin1").decode(denied.body),
      /RpcServerException.*\[mosaic\] denied by conformance filter \(status 403\)/s,
    );
    // The sender's headers reach the client's response map.
    assert.ok(denied.headers.some(([k]) => k === "x-created"), JSON.stringify(denied.headers));
  } finally {
    await side.close();
  }
});
