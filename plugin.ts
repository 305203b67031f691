/**
 * Mosaic's plugin SDK for TypeScript: write an out-of-process plugin that Mosaic (or
 * MOSN) starts as a child process and calls over gRPC.
 *
 * {@linkcode serve} starts the gRPC server of MOSN's `proto.Plugin` service, prints the
 * handshake line the host waits for, and exits when the host goes away (stdin closes or
 * the parent process dies).
 *
 * The SDK uses only `node:` modules (its gRPC server is a small unary one on
 * `node:http2`, lighter than `@grpc/grpc-js`'s and on the same wire), so the same
 * plugin runs under Deno and under Node.js. **Run plugins under Node.js in production**: Deno 2.9.6's
 * HTTP/2 server (`node:http2`) aborts the process when a client closes a connection
 * that carried more than ~115 sequential calls (an nghttp2 assertion in
 * `find_stream_on_goaway_func`). Bundle the plugin into one JavaScript file and run that
 * with `node`:
 *
 * ```sh
 * deno bundle --platform deno -o checker.mjs checker.ts
 * node checker.mjs
 * ```
 *
 * Environment the host sets, which `serve` reads:
 * - `MOSN_PLUGIN=ON`: the magic cookie (hashicorp/go-plugin's `MagicCookieKey`/`Value`
 *   as MOSN configures them); without it the plugin was run by hand, and it exits with
 *   a message saying so.
 * - `MOSAIC_PLUGIN_NETWORK=unix|tcp`: Mosaic's network hint (the config's `network`).
 *   MOSN sets no hint; the default is `unix`.
 * - `PLUGIN_MIN_PORT`/`PLUGIN_MAX_PORT`: the tcp port range (go-plugin's).
 * - `PLUGIN_UNIX_SOCKET_DIR`: where the socket's private directory is made (go-plugin's;
 *   default: the OS temp dir).
 *
 * @example A plugin that answers `hello <language>`
 * ```ts ignore
 * import { serve } from "@mosaic/proxy/plugin";
 *
 * await serve({
 *   call(request) {
 *     const text = new TextDecoder().decode(request.body);
 *     return { status: 200, body: `${text} typescript` };
 *   },
 * });
 * ```
 *
 * @module
 */

import { Buffer } from "node:buffer";
import { fstatSync, mkdtempSync, rmSync } from "node:fs";
import * as http2 from "node:http2";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import type { PluginRequest, PluginResponse } from "./src/filter/api.ts";
import {
  CALL_PATH,
  decodeHealthRequest,
  decodeRequest,
  encodeHealthResponse,
  encodeResponse,
  HEALTH_CHECK_PATH,
  HEALTH_SERVICE,
} from "./src/plugin/proto.ts";

export type { PluginRequest, PluginResponse } from "./src/filter/api.ts";

/** go-plugin's controller method: a host asks the plugin to exit. */
const SHUTDOWN_PATH = "/plugin.GRPCController/Shutdown";

/** What a plugin's `call` returns; absent fields are empty, `status` defaults to 0. */
export interface PluginAnswer {
  /**
   * Headers to return (the plugin filter sets them on the request or response).
   * Entries whose value is `undefined` are left out.
   */
  header?: Record<string, string | undefined>;
  /** Trailers to return; entries whose value is `undefined` are left out. */
  trailer?: Record<string, string | undefined>;
  /** The body to return; a string is sent as UTF-8. */
  body?: Uint8Array | string;
  /** The status: -1 denies (MOSN's checker convention), >= 100 answers with it. */
  status?: number;
}

/** A plugin's implementation. */
export interface PluginService {
  /**
   * Handles one call. A throw answers the call with gRPC status UNKNOWN and the error's
   * message, as MOSN's Go SDK does.
   */
  call(request: Required<PluginRequest>): PluginAnswer | Promise<PluginAnswer>;
  /**
   * Reports whether the plugin can serve, for `grpc.health.v1`; the host restarts a
   * plugin whose health checks keep failing.
   *
   * @default {() => true}
   */
  health?(): boolean | Promise<boolean>;
}

/** Options of {@linkcode serve}. */
export interface ServeOptions {
  /**
   * `unix` or `tcp`.
   *
   * @default {process.env.MOSAIC_PLUGIN_NETWORK ?? "unix"}
   */
  network?: "unix" | "tcp";
  /**
   * Check the magic cookie and exit with a message when it is missing.
   *
   * @default {true}
   */
  checkCookie?: boolean;
  /**
   * Exit the process when the host goes away: stdin reaches its end (when stdin is a
   * pipe), or the parent process dies (checked every second).
   *
   * @default {true}
   */
  exitWithHost?: boolean;
  /**
   * Print the handshake line on stdout.
   *
   * @default {true}
   */
  printHandshake?: boolean;
}

/** A running plugin server. */
export interface PluginServer {
  /** `unix` or `tcp`. */
  readonly network: "unix" | "tcp";
  /** The socket path or `127.0.0.1:port`. */
  readonly address: string;
  /** The handshake line printed (without newline). */
  readonly handshake: string;
  /** Stops the server and removes its socket directory. */
  close(): Promise<void>;
}

/** Raised when the plugin cannot serve. */
export class PluginServeError extends Error {
  /** Creates the error. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "PluginServeError";
  }
}

const encoder = new TextEncoder();

/** gRPC status codes the server sends. */
const Status = { OK: 0, UNKNOWN: 2, NOT_FOUND: 5, UNIMPLEMENTED: 12, INTERNAL: 13 } as const;

/** Largest message accepted or sent: bodies travel in one message. */
const MAX_MESSAGE_BYTES = 64 * 1024 * 1024;

/** A call's outcome: a message, or a gRPC error status. */
type Outcome = Uint8Array | { code: number; details: string };

function answerToResponse(answer: PluginAnswer): Partial<PluginResponse> {
  const body = typeof answer.body === "string" ? encoder.encode(answer.body) : answer.body;
  // The encoder skips entries that are not strings.
  return {
    header: answer.header as Record<string, string> | undefined,
    trailer: answer.trailer as Record<string, string> | undefined,
    body,
    status: answer.status,
  };
}

function errorDetails(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** `grpc-message` is percent-encoded: bytes outside printable ASCII, and `%`. */
function encodeGrpcMessage(text: string): string {
  let plain = true;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x20 || c > 0x7e || c === 0x25) {
      plain = false;
      break;
    }
  }
  if (plain) return text;
  let out = "";
  for (const byte of encoder.encode(text)) {
    out += byte < 0x20 || byte > 0x7e || byte === 0x25
      ? "%" + byte.toString(16).toUpperCase().padStart(2, "0")
      : String.fromCharCode(byte);
  }
  return out;
}

/** The 5-byte prefix and the message. */
function frameMessage(bytes: Uint8Array): Buffer {
  const frame = Buffer.allocUnsafe(5 + bytes.length);
  frame[0] = 0;
  frame.writeUInt32BE(bytes.length, 1);
  frame.set(bytes, 5);
  return frame;
}

/** Sends a call's outcome, unless the client went away (a deadline, a reset). */
function sendOutcome(stream: http2.ServerHttp2Stream, outcome: Outcome): void {
  if (stream.destroyed || stream.closed) return;
  try {
    if (outcome instanceof Uint8Array) {
      stream.respond({ ":status": 200, "content-type": "application/grpc" }, {
        waitForTrailers: true,
      });
      stream.once("wantTrailers", () => stream.sendTrailers({ "grpc-status": "0" }));
      stream.end(frameMessage(outcome));
    } else {
      // Trailers-only: the status in the one header block.
      stream.respond({
        ":status": 200,
        "content-type": "application/grpc",
        "grpc-status": String(outcome.code),
        "grpc-message": encodeGrpcMessage(outcome.details),
      }, { endStream: true });
    }
  } catch {
    // The stream closed meanwhile.
  }
}

/**
 * Reads one unary call's request message from a stream.
 *
 * @returns The message, or an error outcome.
 */
function readMessage(stream: http2.ServerHttp2Stream, done: (message: Outcome) => void): void {
  const chunks: Buffer[] = [];
  let size = 0;
  let failed = false;
  stream.on("data", (chunk: Buffer) => {
    if (failed) return;
    size += chunk.length;
    if (size > MAX_MESSAGE_BYTES + 5) {
      failed = true;
      done({ code: 8, details: `request larger than ${MAX_MESSAGE_BYTES} bytes` });
      return;
    }
    chunks.push(chunk);
  });
  stream.on("end", () => {
    if (failed) return;
    const all = chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, size);
    if (all.length < 5) {
      done({ code: Status.INTERNAL, details: "no request message" });
      return;
    }
    if (all[0] !== 0) {
      done({ code: Status.UNIMPLEMENTED, details: "compressed messages are not supported" });
      return;
    }
    const length = all.readUInt32BE(1);
    if (all.length !== 5 + length) {
      done({ code: Status.INTERNAL, details: "the request is not one message" });
      return;
    }
    done(all.subarray(5));
  });
}

function listen(server: http2.Http2Server, options: { path: string } | { port: number }) {
  return new Promise<number>((resolve, reject) => {
    const onError = (err: Error) => {
      server.off("listening", onListening);
      reject(err);
    };
    const onListening = () => {
      server.off("error", onError);
      const address = server.address();
      resolve(typeof address === "object" && address !== null ? address.port : 0);
    };
    server.once("error", onError);
    server.once("listening", onListening);
    if ("path" in options) server.listen(options.path);
    else server.listen(options.port, "127.0.0.1");
  });
}

async function listenTcp(server: http2.Http2Server): Promise<string> {
  const min = Number(process.env.PLUGIN_MIN_PORT);
  const max = Number(process.env.PLUGIN_MAX_PORT);
  if (Number.isInteger(min) && Number.isInteger(max) && min > 0 && max >= min && max < 65536) {
    // go-plugin picks a port in the host's range; try a few at random, then any port.
    for (let i = 0; i < 20; i++) {
      const port = min + Math.floor(Math.random() * (max - min + 1));
      try {
        return `127.0.0.1:${await listen(server, { port })}`;
      } catch {
        // Taken: try another.
      }
    }
  }
  return `127.0.0.1:${await listen(server, { port: 0 })}`;
}

/** True when fd 0 is a pipe or socket, so its end means the host went away. */
function stdinIsPipe(): boolean {
  try {
    const s = fstatSync(0);
    return s.isFIFO() || s.isSocket();
  } catch {
    return false;
  }
}

/**
 * Serves a plugin: starts the gRPC server, prints the handshake, and (by default)
 * exits the process when the host goes away.
 *
 * @param service The plugin's implementation.
 * @param options Network and lifecycle options.
 * @returns The running server.
 * @throws {PluginServeError} when the server cannot listen.
 */
export async function serve(
  service: PluginService,
  options: ServeOptions = {},
): Promise<PluginServer> {
  if ((options.checkCookie ?? true) && process.env.MOSN_PLUGIN !== "ON") {
    process.stderr.write(
      "This program is a Mosaic/MOSN plugin: it is started by the proxy named in the " +
        "config's `plugins:` section, not by hand (MOSN_PLUGIN=ON is not set).\n",
    );
    process.exit(1);
  }
  const hint = options.network ?? process.env.MOSAIC_PLUGIN_NETWORK ?? "unix";
  if (hint !== "unix" && hint !== "tcp") {
    throw new PluginServeError(`Network must be "unix" or "tcp", got "${hint}"`);
  }
  const network: "unix" | "tcp" = hint;

  const server = http2.createServer({
    // Megabytes of frames Node may hold per session (its default of 10 is less than one
    // large body).
    maxSessionMemory: 256,
    settings: { initialWindowSize: 16 * 1024 * 1024 },
  });
  const sessions = new Set<http2.ServerHttp2Session>();
  let closed = false;
  let socketDir: string | undefined;

  async function close(): Promise<void> {
    if (closed) return;
    closed = true;
    clearInterval(parentTimer);
    process.stdin.off("end", onHostGone);
    process.stdin.off("close", onHostGone);
    if (watchingStdin) process.stdin.pause();
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      // Calls in flight finish; connections idle after them close.
      for (const session of sessions) session.close();
      // Calls still open after a second are cut.
      setTimeout(() => {
        for (const session of sessions) session.destroy();
        resolve();
      }, 1000).unref?.();
    });
    if (socketDir) rmSync(socketDir, { recursive: true, force: true });
  }

  function exitNow(code: number): void {
    if (socketDir) rmSync(socketDir, { recursive: true, force: true });
    process.exit(code);
  }

  function onCall(stream: http2.ServerHttp2Stream, message: Uint8Array): void {
    let answer: PluginAnswer | Promise<PluginAnswer>;
    try {
      answer = service.call(decodeRequest(message));
    } catch (err) {
      sendOutcome(stream, { code: Status.UNKNOWN, details: errorDetails(err) });
      return;
    }
    // The sync fast path: no await for a plain answer.
    if (!(answer instanceof Promise)) {
      sendOutcome(stream, reply(answer));
      return;
    }
    answer.then(
      (a) => sendOutcome(stream, reply(a)),
      (err) => sendOutcome(stream, { code: Status.UNKNOWN, details: errorDetails(err) }),
    );
  }

  function onCheck(stream: http2.ServerHttp2Stream, message: Uint8Array): void {
    let name: string;
    try {
      name = decodeHealthRequest(message);
    } catch (err) {
      sendOutcome(stream, { code: Status.INTERNAL, details: errorDetails(err) });
      return;
    }
    if (name !== "" && name !== HEALTH_SERVICE) {
      sendOutcome(stream, { code: Status.NOT_FOUND, details: `Unknown service "${name}"` });
      return;
    }
    let ok: boolean | Promise<boolean>;
    try {
      ok = service.health ? service.health() : true;
    } catch {
      ok = false;
    }
    Promise.resolve(ok).then(
      (ok) => sendOutcome(stream, encodeHealthResponse(ok ? "SERVING" : "NOT_SERVING")),
      () => sendOutcome(stream, encodeHealthResponse("NOT_SERVING")),
    );
  }

  function onShutdown(stream: http2.ServerHttp2Stream): void {
    sendOutcome(stream, new Uint8Array(0));
    if (options.exitWithHost ?? true) setTimeout(() => exitNow(0), 10);
    else void close();
  }

  server.on("session", (session: http2.ServerHttp2Session) => {
    sessions.add(session);
    session.on("close", () => sessions.delete(session));
    session.on("error", () => {}); // a host that went away; its calls are gone
  });
  server.on("stream", (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders) => {
    stream.on("error", () => {}); // reset by the client (its deadline passed)
    const type = headers["content-type"];
    if (
      headers[":method"] !== "POST" || typeof type !== "string" ||
      !type.startsWith("application/grpc")
    ) {
      try {
        stream.respond({ ":status": 415 }, { endStream: true });
      } catch {
        // Closed meanwhile.
      }
      return;
    }
    const path = headers[":path"];
    readMessage(stream, (message) => {
      if (!(message instanceof Uint8Array)) sendOutcome(stream, message);
      else if (path === CALL_PATH) onCall(stream, message);
      else if (path === HEALTH_CHECK_PATH) onCheck(stream, message);
      else if (path === SHUTDOWN_PATH) onShutdown(stream);
      else {
        sendOutcome(stream, { code: Status.UNIMPLEMENTED, details: `Unknown method ${path}` });
      }
    });
  });

  let address: string;
  try {
    if (network === "unix") {
      const base = process.env.PLUGIN_UNIX_SOCKET_DIR || tmpdir();
      // A private directory (mode 0700 from mkdtemp) keeps other users off the socket.
      socketDir = mkdtempSync(join(base, "mosaic-plugin-"));
      address = join(socketDir, "plugin.sock");
      await listen(server, { path: address });
    } else {
      address = await listenTcp(server);
    }
  } catch (err) {
    if (socketDir) rmSync(socketDir, { recursive: true, force: true });
    server.close();
    throw new PluginServeError(`Plugin could not listen on ${network}: ${errorDetails(err)}`, {
      cause: err,
    });
  }

  const handshake = `1|1|${network}|${address}|grpc`;

  // The host goes away: stdin ends (Mosaic pipes it), or we are reparented (MOSN's Go
  // SDK checks the parent too, and go-plugin hosts may give us their own stdin).
  const exitWithHost = options.exitWithHost ?? true;
  const watchingStdin = exitWithHost && stdinIsPipe();
  const parentPid = process.ppid;
  function onHostGone(): void {
    exitNow(0);
  }
  if (watchingStdin) {
    process.stdin.on("end", onHostGone);
    process.stdin.on("close", onHostGone);
    process.stdin.on("data", () => {}); // whatever the host writes is ignored
    process.stdin.resume();
  }
  const parentTimer = exitWithHost
    ? setInterval(() => {
      // Only a change counts: a host may itself be pid 1 (in a container).
      if (process.ppid !== parentPid) onHostGone();
    }, 1000)
    : undefined;
  if (exitWithHost) {
    for (const signal of ["SIGTERM", "SIGINT"] as const) process.on(signal, onHostGone);
  }

  if (options.printHandshake ?? true) process.stdout.write(handshake + "\n");
  return { network, address, handshake, close };
}

function reply(answer: PluginAnswer): Outcome {
  try {
    return encodeResponse(answerToResponse(answer ?? {}));
  } catch (err) {
    return { code: Status.INTERNAL, details: errorDetails(err) };
  }
}
