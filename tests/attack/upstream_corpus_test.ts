/**
 * The hostile-upstream corpus, driven through the real HTTP/1.1 pool (`Http1Pool`).
 *
 * Each row names a scripted misbehaviour of `hostile_upstream.ts`, the requests a
 * client makes (in order, some after a pause), the answer each client must get, and
 * what the upstream may see. A pool error stands for the status the proxy answers with
 * it (`sendUpstream` in src/proxy/stream.ts): connect and reset errors 502, overflow 503.
 */

import assert from "node:assert/strict";
import { Http1Pool } from "../../src/upstream/http1_pool.ts";
import { UpstreamOverflowError, type UpstreamRequest } from "../../src/upstream/types.ts";
import { HostileUpstream } from "./hostile_upstream.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** One client request of a row. */
interface Send {
  method?: string;
  path: string;
  /** A body, sent as bytes (which the pool may resend) unless `streamed`. */
  body?: string;
  /** Send the body as a one-chunk stream, which cannot be sent twice. */
  streamed?: boolean;
  /** Wait this long before sending. */
  afterMs?: number;
}

/** What the client must get. */
interface Expect {
  status: number;
  /** The body, for upstream answers. */
  body?: string;
  /** Response headers that must have this value (null: absent). */
  headers?: Record<string, string | null>;
  /** For a pool error: its message must match. */
  message?: RegExp;
}

interface Row {
  scenario: string;
  requests: Send[];
  expect: Expect[];
  /** The upstream saw exactly these requests, in order. */
  seen?: string[];
  /** The upstream accepted exactly this many connections. */
  accepted?: number;
  /** The script's events, exactly. */
  events?: string[];
}

const ROWS: Row[] = [
  {
    scenario: "honest",
    requests: [{ path: "/1" }, { path: "/2", method: "POST", body: "b" }],
    expect: [{ status: 200, body: "ok GET /1" }, { status: 200, body: "ok POST /2 b" }],
    seen: ["GET /1", "POST /2 b"],
    accepted: 1,
  },
  {
    scenario: "stray_response",
    requests: [{ path: "/1" }, { path: "/2", afterMs: 600 }],
    expect: [{ status: 200, body: "ok GET /1" }, { status: 200, body: "ok GET /2" }],
    seen: ["GET /1", "GET /2"],
    accepted: 2,
  },
  {
    scenario: "stray_glued",
    requests: [{ path: "/1" }, { path: "/2" }],
    expect: [{ status: 200, body: "first" }, { status: 200, body: "ok GET /2" }],
    seen: ["GET /1", "GET /2"],
    accepted: 2,
  },
  {
    scenario: "stray_garbage",
    requests: [{ path: "/1" }, { path: "/2", afterMs: 300 }],
    expect: [{ status: 200, body: "ok GET /1" }, { status: 200, body: "ok GET /2" }],
    seen: ["GET /1", "GET /2"],
    accepted: 2,
  },
  {
    scenario: "close_while_idle",
    requests: [
      { path: "/1" },
      { path: "/2", method: "POST", body: "payload", afterMs: 300 },
      { path: "/3", method: "POST", body: "streamed", streamed: true, afterMs: 300 },
    ],
    expect: [
      { status: 200, body: "ok GET /1" },
      { status: 200, body: "ok POST /2 payload" },
      { status: 200, body: "ok POST /3 streamed" },
    ],
    seen: ["GET /1", "POST /2 payload", "POST /3 streamed"],
    accepted: 3,
  },
  {
    // the upstream closes as the connection is reused: bytes are resent, a stream is not
    scenario: "close_on_reuse",
    requests: [
      { path: "/1" },
      { path: "/2", method: "POST", body: "payload" },
      { path: "/3", method: "POST", body: "streamed", streamed: true },
    ],
    expect: [
      { status: 200, body: "ok GET /1" },
      { status: 200, body: "ok POST /2 payload" },
      { status: 502, message: /before a full response head/ },
    ],
    seen: ["GET /1", "POST /2 (dropped)", "POST /2 payload", "POST /3 (dropped)"],
    accepted: 2,
  },
  {
    // closed by the client 500 ms before the upstream's 1 s, so /2 takes a new one
    scenario: "keep_alive_timeout_1",
    requests: [{ path: "/1" }, { path: "/2", afterMs: 800 }],
    expect: [{ status: 200, body: "ok GET /1" }, { status: 200, body: "ok GET /2" }],
    seen: ["GET /1", "GET /2"],
    accepted: 2,
    // both closes come from the client (the second at pool.close()), none from the upstream
    events: ["client closed an idle connection", "client closed an idle connection"],
  },
  {
    scenario: "te_and_cl",
    requests: [{ path: "/1" }, { path: "/2" }],
    expect: [
      { status: 200, body: "hello world", headers: { "content-length": null } },
      { status: 200, body: "ok GET /2" },
    ],
    seen: ["GET /1", "GET /2"],
    accepted: 2,
  },
  {
    scenario: "unsolicited_101",
    requests: [{ path: "/1" }, { path: "/2" }],
    expect: [
      { status: 502, message: /sent 101 Switching Protocols to a request without Upgrade/ },
      { status: 200, body: "ok GET /2" },
    ],
    seen: ["GET /1", "GET /2"],
    accepted: 2,
  },
  {
    scenario: "status_600",
    requests: [{ path: "/1" }, { path: "/2" }],
    expect: [
      { status: 502, message: /status 600, outside 100-599/ },
      { status: 200, body: "ok GET /2" },
    ],
    accepted: 2,
  },
  {
    scenario: "status_42",
    requests: [{ path: "/1" }],
    expect: [{ status: 502, message: /"HTTP\/1.1 42 X" is not HTTP\/1.x/ }],
  },
  {
    scenario: "interim",
    requests: [{ path: "/1" }, { path: "/2", method: "POST", body: "b" }],
    expect: [{ status: 200, body: "ok GET /1" }, { status: 200, body: "ok POST /2 b" }],
    accepted: 1,
  },
];

/** What the client got: an answer, or the status the proxy would give an error. */
interface Got {
  status: number;
  body: string;
  headers: Headers;
  message: string;
}

async function send(pool: Http1Pool, send: Send): Promise<Got> {
  const bytes = send.body === undefined ? null : encoder.encode(send.body);
  const request: UpstreamRequest = {
    method: send.method ?? "GET",
    path: send.path,
    headers: new Headers({ host: "corpus.test" }),
    body: bytes !== null && send.streamed ? ReadableStream.from([bytes]) : bytes,
  };
  // every request is bounded in time
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(new Error("row timed out")), 5000);
  request.signal = controller.signal;
  try {
    const res = await pool.request(request);
    const body = res.body === null ? "" : decoder.decode(await new Response(res.body).bytes());
    return { status: res.status, body, headers: res.headers, message: "" };
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    if (controller.signal.aborted) throw new Error(`${send.path}: ${message}`);
    return {
      status: err instanceof UpstreamOverflowError ? 503 : 502,
      body: "",
      headers: new Headers(),
      message,
    };
  } finally {
    clearTimeout(timer);
  }
}

for (const row of ROWS) {
  Deno.test(`hostile upstream through Http1Pool: ${row.scenario}`, async () => {
    const upstream = new HostileUpstream(row.scenario);
    const pool = new Http1Pool({ hostname: "127.0.0.1", port: upstream.port }, {
      maxRequestPerConn: 0,
      connectTimeoutMs: 2000,
      idleTimeoutMs: 60_000,
      maxConnections: 10,
      maxPendingRequests: 10,
    });
    try {
      for (let i = 0; i < row.requests.length; i++) {
        const request = row.requests[i];
        if (request.afterMs !== undefined) {
          await new Promise((resolve) => setTimeout(resolve, request.afterMs));
        }
        const got = await send(pool, request);
        const want = row.expect[i];
        const where = `${row.scenario}, request ${request.path}`;
        assert.equal(got.status, want.status, `${where}: ${got.status} ${got.message}`);
        if (want.body !== undefined) assert.equal(got.body, want.body, where);
        if (want.message !== undefined) assert.match(got.message, want.message, where);
        for (const [name, value] of Object.entries(want.headers ?? {})) {
          assert.equal(got.headers.get(name), value, `${where}: header ${name}`);
        }
      }
      if (row.accepted !== undefined) assert.equal(upstream.accepted, row.accepted, "accepted");
      if (row.seen !== undefined) assert.deepEqual(upstream.seen, row.seen, "upstream saw");
    } finally {
      pool.close();
      await upstream.close();
    }
    if (row.events !== undefined) assert.deepEqual(upstream.events, row.events, "events");
  });
}
