/**
 * One process sandbox seen from the host: a child `deno run` with exactly the sandbox's
 * permissions, running `runner.ts`. Starts it, tracks its calls with their timeouts,
 * answers its body and plugin requests, forwards its stderr to the filter's log, and
 * kills it.
 *
 * The transport is length-prefixed frames over the child's stdin and stdout
 * (`frames.ts`), not the plugin framework's gRPC `Plugin/Call`, for three reasons:
 *
 * - A gRPC server needs permissions the module must not get: a socket to listen on
 *   (`--allow-net`, or read and write on a unix socket path) and the handshake's
 *   environment. Pipes need none, so the child's flags are the sandbox's.
 * - Deno's gRPC server aborts (SIGABRT) when its client closes a connection that carried
 *   many calls. Measured on 2.9.6 with the SDK's echo plugin under Deno: one connection
 *   carried 39,200 calls and 800 deadline cancellations and the server lived; closing
 *   the connection then aborted it. A host that never closes could live with that; pipes
 *   do not have the problem at all.
 * - A filter asks the host for things in the middle of a call (the body on demand, plugin
 *   calls, log lines), which a unary `Call` cannot carry without extra round trips.
 *
 * From the plugin framework it keeps the rest: stdin piped (the child exits on EOF, so
 * no orphan outlives a killed host), stderr logged line by line with the last lines kept
 * to explain an exit, per-call timeouts, and kill-and-restart (in `factory.ts`).
 *
 * @module
 */

import type {
  FilterLogger,
  PluginCaller,
  PluginRequest,
  RequestStream,
  ResponseStream,
} from "../../filter/api.ts";
import { LineReader, LineRing } from "../../plugin/lines.ts";
import { describeExit, type ExitInfo } from "../../plugin/process.ts";
import { withTimeout } from "../../plugin/timer.ts";
import { SandboxedFilterError, SandboxTimeoutError } from "../sandbox/errors.ts";
import type {
  DoneMessage,
  HostMessage,
  InitMessage,
  LoadedMessage,
  ReceiveMessage,
  RemoteError,
  SendMessage,
  WorkerRequest,
} from "../sandbox/protocol.ts";
import { SandboxProcessError } from "./errors.ts";
import type { ChildGrants } from "./flags.ts";
import { encodeFrame, FrameDecoder } from "./frames.ts";
import type { ChildMessage } from "./protocol.ts";

const RUNNER = new URL("./runner.ts", import.meta.url).href;
/** How many stderr lines are kept to explain a child that died. */
const STDERR_TAIL = 20;

/** What starting a sandbox process needs. */
export interface SandboxChildSpec {
  /** The URL the child imports (with the loader's version query). */
  importUrl: string;
  /** The module URL as configured, for messages. */
  module: string;
  /** The factory's export name. */
  exportName: string;
  /** The child's permission flags. */
  grants: ChildGrants;
  /** The filter's name, for messages. */
  filterName: string;
}

/** What a child reports to its owner. */
export interface SandboxChildHost {
  /** The filter's logger: the child's log lines and stderr go here. */
  readonly logger: FilterLogger;
  /** Serves the filter's plugin calls. */
  readonly plugins: PluginCaller;
  /** A call ran out of time. */
  timedOut(child: SandboxChild): void;
  /** The child ended by itself after it loaded (exit, crash, broken stdout). */
  ended(child: SandboxChild, reason: string): void;
}

interface PendingCall {
  resolve(done: DoneMessage): void;
  reject(error: Error): void;
  stream: RequestStream | ResponseStream;
  timer: ReturnType<typeof setTimeout> | undefined;
  timeoutMs: number;
}

/** A child process running one sandboxed filter module. */
export class SandboxChild {
  /** Counts children of one factory: a stream's instances live in one generation. */
  readonly generation: number;
  /** The child's process id. */
  readonly pid: number;
  /** When it was started, from `performance.now()`. */
  readonly startedAt: number = performance.now();
  /** Resolves once the child exited and its pipes are closed; never rejects. */
  readonly exited: Promise<ExitInfo>;
  /** Receives logs, timeouts and ends. */
  host: SandboxChildHost;
  #spec: SandboxChildSpec;
  #process: Deno.ChildProcess;
  #stdin: WritableStreamDefaultWriter<Uint8Array>;
  #loaded = Promise.withResolvers<LoadedMessage>();
  #ready: PromiseWithResolvers<void> | undefined;
  #calls = new Map<number, PendingCall>();
  #pings = new Map<number, () => void>();
  #nextId = 0;
  #ended: Error | undefined;
  #outbox: HostMessage[] = [];

  /**
   * Starts the child; it imports the module at once.
   *
   * @throws {Error} When the process cannot be spawned (no `--allow-run` for Deno).
   */
  constructor(spec: SandboxChildSpec, generation: number, host: SandboxChildHost) {
    this.#spec = spec;
    this.generation = generation;
    this.host = host;
    this.#loaded.promise.catch(() => {});
    this.#process = new Deno.Command(denoExecutable(), {
      args: [
        "run",
        "--no-prompt",
        // Children must not write the operator's deno.lock, many at once; the loader
        // checked the module's integrity pin already.
        "--no-lock",
        "--quiet",
        ...spec.grants.flags,
        RUNNER,
        spec.importUrl,
        spec.exportName,
        JSON.stringify(spec.grants.revoke),
      ],
      env: { NO_COLOR: "1" },
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    this.pid = this.#process.pid;
    this.#stdin = this.#process.stdin.getWriter();
    const tail = new LineRing(STDERR_TAIL);
    const stderr = new LineReader(this.#process.stderr).forward((line) => {
      tail.push(line);
      this.host.logger.info(line, { stream: "stderr", pid: this.pid });
    });
    const stdout = this.#read();
    this.exited = this.#process.status.then(async (status) => {
      await this.#stdin.close().catch(() => {});
      // A grandchild may hold the pipes open: do not wait for it forever.
      await withTimeout(Promise.all([stderr, stdout]), 1000);
      return { code: status.code, signal: status.signal, stderrTail: tail.lines() };
    });
    this.exited.then((exit) => this.#onExit(exit));
  }

  /** Resolves once the module is imported, with what it exports; rejects with the cause. */
  loaded(): Promise<LoadedMessage> {
    return this.#loaded.promise;
  }

  /** Makes the factory in the child; rejects with the error the factory threw. */
  init(message: InitMessage): Promise<void> {
    this.#ready = Promise.withResolvers<void>();
    this.#post(message);
    return this.#ready.promise;
  }

  /**
   * Runs one filter call. Rejects when the filter throws, when the call takes longer
   * than `timeoutMs` (waiting for the client's body does not count), or when the child
   * ends first.
   */
  call(
    message: ReceiveMessage | SendMessage,
    stream: RequestStream | ResponseStream,
    timeoutMs: number,
  ): Promise<DoneMessage> {
    if (this.#ended !== undefined) return Promise.reject(this.#ended);
    const id = message.id = ++this.#nextId;
    const { promise, resolve, reject } = Promise.withResolvers<DoneMessage>();
    const pending: PendingCall = { resolve, reject, stream, timer: undefined, timeoutMs };
    this.#calls.set(id, pending);
    this.#arm(id, pending);
    this.#post(message);
    return promise;
  }

  /** Ends a stream's instances in the child (their `onDestroy`). */
  destroyStream(sid: number): void {
    if (this.#ended === undefined) this.#post({ t: "destroy", sid });
  }

  /** True when the child's event loop answers within `timeoutMs`. */
  ping(timeoutMs: number): Promise<boolean> {
    if (this.#ended !== undefined) return Promise.resolve(false);
    const id = ++this.#nextId;
    const { promise, resolve } = Promise.withResolvers<boolean>();
    const timer = setTimeout(() => {
      this.#pings.delete(id);
      resolve(false);
    }, timeoutMs);
    this.#pings.set(id, () => {
      clearTimeout(timer);
      resolve(true);
    });
    this.#post({ t: "ping", id });
    return promise;
  }

  /**
   * Lets the factory's `destroy()` and the streams' `onDestroy` run, closes the child's
   * stdin (it exits on EOF), and kills it if it is still there after `timeoutMs`.
   */
  async close(timeoutMs: number): Promise<void> {
    if (this.#ended === undefined && this.#ready !== undefined) {
      const id = ++this.#nextId;
      const { promise, resolve } = Promise.withResolvers<void>();
      this.#pings.set(id, resolve);
      this.#post({ t: "close", id });
      await withTimeout(promise, timeoutMs);
      this.#pings.delete(id);
    }
    this.#end(
      new SandboxProcessError(`The sandbox process of module ${this.#spec.module} was closed`),
    );
    await this.#stdin.close().catch(() => {});
    if (await withTimeout(this.exited, timeoutMs) === undefined) this.#signal("SIGKILL");
    await this.exited;
  }

  /**
   * Kills the child (SIGKILL: a module spinning in a loop stops too) and fails its calls
   * with `reason`. Await {@linkcode SandboxChild.exited} to know it is gone.
   */
  kill(reason: Error): void {
    this.#end(reason);
    this.#signal("SIGKILL");
  }

  /** Fails everything pending with `reason`; later calls fail with it at once. */
  #end(reason: Error): void {
    if (this.#ended !== undefined) return;
    this.#ended = reason;
    this.#loaded.reject(reason);
    this.#ready?.reject(reason);
    for (const [id, pending] of this.#calls) {
      clearTimeout(pending.timer);
      this.#calls.delete(id);
      pending.reject(reason);
    }
    for (const wake of this.#pings.values()) wake();
    this.#pings.clear();
  }

  #signal(signal: Deno.Signal): void {
    try {
      this.#process.kill(signal);
    } catch {
      // Already exited.
    }
  }

  #onExit(exit: ExitInfo): void {
    if (this.#ended !== undefined) return; // killed or closed by the host
    const how = describeExit(exit);
    const reason = new SandboxProcessError(
      `The sandbox process of module ${this.#spec.module} (pid ${this.pid}) ${how}`,
    );
    const started = this.#ready !== undefined;
    this.#end(reason);
    if (started) this.host.ended(this, how);
  }

  async #read(): Promise<void> {
    const frames = new FrameDecoder();
    const deliver = (data: unknown) => {
      if (!Array.isArray(data)) this.#receive(data as ChildMessage);
      else for (const message of data) this.#receive(message as ChildMessage);
    };
    try {
      for await (const chunk of this.#process.stdout) frames.push(chunk, deliver);
    } catch (error) {
      if (this.#ended !== undefined) return;
      // The module wrote to file descriptor 1 by other means than the runner's frames.
      const how = `broke its stdout channel (${(error as Error).message}); a ` +
        `process-sandboxed filter must log through its logger or console`;
      const started = this.#ready !== undefined;
      this.kill(
        new SandboxProcessError(
          `The sandbox process of module ${this.#spec.module} (pid ${this.pid}) ${how}`,
        ),
      );
      if (started) this.host.ended(this, how);
    }
  }

  #arm(id: number, pending: PendingCall): void {
    pending.timer = setTimeout(() => {
      if (this.#calls.get(id) !== pending) return;
      this.#calls.delete(id);
      pending.reject(
        new SandboxTimeoutError(
          `Sandboxed filter "${this.#spec.filterName}" (module ${this.#spec.module}, process ${this.pid}) did not answer within ${pending.timeoutMs} ms`,
        ),
      );
      this.host.timedOut(this);
    }, pending.timeoutMs);
  }

  /**
   * Queues a message; everything queued in one turn of the event loop goes in one frame
   * and one write (the Worker sandbox batches its messages the same way).
   */
  #post(message: HostMessage): void {
    if (this.#outbox.push(message) === 1) queueMicrotask(this.#flush);
  }

  #flush = (): void => {
    const batch = this.#outbox;
    this.#outbox = [];
    if (this.#ended !== undefined) return;
    let frame: Uint8Array | undefined;
    try {
      frame = encodeFrame(batch);
    } catch {
      frame = this.#encodeEach(batch);
    }
    // A write fails only when the child is gone, which the exit watcher reports.
    if (frame !== undefined) this.#stdin.write(frame).catch(() => {});
  };

  /**
   * Encodes the messages of a batch that could not be encoded as a whole, one by one: a
   * call whose metadata JSON cannot carry goes without those entries, and a call that
   * still cannot be encoded (a body over the frame limit) fails alone.
   */
  #encodeEach(batch: HostMessage[]): Uint8Array | undefined {
    const kept: HostMessage[] = [];
    for (const message of batch) {
      try {
        if (message.t === "receive" || message.t === "send") dropOpaqueMetadata(message);
        encodeFrame(message);
        kept.push(message);
      } catch (error) {
        if (message.t !== "receive" && message.t !== "send") continue;
        const pending = this.#calls.get(message.id);
        if (pending === undefined) continue;
        this.#calls.delete(message.id);
        clearTimeout(pending.timer);
        pending.reject(error instanceof Error ? error : new Error(String(error)));
      }
    }
    return kept.length === 0 ? undefined : encodeFrame(kept);
  }

  #receive(message: ChildMessage): void {
    switch (message.t) {
      case "done": {
        const pending = this.#calls.get(message.id);
        if (pending === undefined) return;
        this.#calls.delete(message.id);
        clearTimeout(pending.timer);
        pending.resolve(message);
        return;
      }
      case "failed": {
        const pending = this.#calls.get(message.id);
        if (pending === undefined) return;
        this.#calls.delete(message.id);
        clearTimeout(pending.timer);
        pending.reject(new SandboxedFilterError(message.error));
        return;
      }
      case "request":
        this.#serve(message);
        return;
      case "log":
        this.host.logger[message.level](message.message, message.properties);
        return;
      case "pong":
      case "closed":
        this.#pings.get(message.id)?.();
        this.#pings.delete(message.id);
        return;
      case "loaded":
        this.#loaded.resolve(message);
        return;
      case "load_failed":
        this.#loaded.reject(new SandboxedFilterError(message.error));
        return;
      case "ready":
        this.#ready?.resolve();
        return;
      case "init_failed":
        this.#ready?.reject(new SandboxedFilterError(message.error));
        return;
    }
  }

  #serve(request: WorkerRequest): void {
    let work: Promise<unknown>;
    if (request.kind === "plugin") {
      work = this.host.plugins.call(request.name, request.request as PluginRequest, {
        timeoutMs: request.timeoutMs,
      });
    } else {
      const pending = this.#calls.get(request.call);
      if (pending === undefined) {
        work = Promise.reject(new Error("body() was called after the filter call ended"));
      } else {
        // The time the client takes to send its body is not the filter's.
        clearTimeout(pending.timer);
        work = pending.stream.body({ maxBytes: request.maxBytes }).finally(() => {
          if (this.#calls.get(request.call) === pending) this.#arm(request.call, pending);
        });
      }
    }
    work.then(
      (value) => {
        if (this.#ended === undefined) this.#post({ t: "reply", id: request.id, ok: true, value });
      },
      (error) => {
        if (this.#ended === undefined) {
          this.#post({ t: "reply", id: request.id, ok: false, error: toRemote(error) });
        }
      },
    );
  }
}

/**
 * Metadata may hold values other filters keep in process (functions, BigInts, sockets):
 * the sandbox gets the entries JSON can carry.
 */
function dropOpaqueMetadata(message: ReceiveMessage | SendMessage): void {
  if (message.meta === undefined) return;
  message.meta = message.meta.filter(([, value]) => {
    if (typeof value === "function" || typeof value === "symbol") return false;
    try {
      JSON.stringify(value);
      return true;
    } catch {
      return false;
    }
  });
}

function toRemote(error: unknown): RemoteError {
  return error instanceof Error
    ? { name: error.name, message: error.message }
    : { name: "Error", message: String(error) };
}

function denoExecutable(): string {
  try {
    return Deno.execPath();
  } catch {
    // Without read permission the path is hidden; the name resolves through PATH.
    return "deno";
  }
}
