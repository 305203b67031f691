/**
 * The process runtime's transport: one process sandbox seen from the host, a child
 * `deno run` with exactly the sandbox's permissions, running `runner.ts`. Starts it,
 * carries the supervisor's messages as frames over its pipes, forwards its stderr to the
 * filter's log, and kills it; calls, deadlines, pings and restarts are the supervisor's.
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
 * to explain an exit, per-call timeouts, and kill-and-restart (in `../supervisor/`).
 *
 * @module
 */

import { LineReader, LineRing } from "../../plugin/lines.ts";
import { describeExit, type ExitInfo } from "../../plugin/process.ts";
import { withTimeout } from "../../plugin/timer.ts";
import { SandboxError, SandboxTimeoutError } from "../supervisor/errors.ts";
import { FilterPeerBase, type PeerOwner } from "../supervisor/peer.ts";
import type {
  GuestMessage,
  HostMessage,
  ReceiveMessage,
  SendMessage,
} from "../supervisor/protocol.ts";
import type { ChildGrants } from "./flags.ts";
import { encodeFrame, FrameDecoder } from "./frames.ts";

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

/** A child process running one sandboxed filter module. */
export class ChildPeer extends FilterPeerBase {
  /** The child's process id. */
  readonly pid: number;
  /** Resolves once the child exited and its pipes are closed; never rejects. */
  readonly exited: Promise<ExitInfo>;
  #spec: SandboxChildSpec;
  #process: Deno.ChildProcess;
  #stdin: WritableStreamDefaultWriter<Uint8Array>;

  /**
   * Starts the child; it imports the module at once.
   *
   * @throws {Error} When the process cannot be spawned (no `--allow-run` for Deno).
   */
  constructor(spec: SandboxChildSpec, generation: number, host: PeerOwner) {
    super(generation, host);
    this.#spec = spec;
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

  /** `process (pid 1234)`. */
  get label(): string {
    return `process (pid ${this.pid})`;
  }

  /** Resolves once the child exited. */
  get gone(): Promise<unknown> {
    return this.exited;
  }

  /**
   * Lets the factory's `destroy()` and the streams' `onDestroy` run, closes the child's
   * stdin (it exits on EOF), and kills it if it is still there after `timeoutMs`.
   */
  async close(timeoutMs: number): Promise<void> {
    await this.closeHandshake(timeoutMs);
    this.end(
      new SandboxError(`The sandbox process of module ${this.#spec.module} was closed`),
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
    this.end(reason);
    this.#signal("SIGKILL");
  }

  #signal(signal: Deno.Signal): void {
    try {
      this.#process.kill(signal);
    } catch {
      // Already exited.
    }
  }

  #onExit(exit: ExitInfo): void {
    if (this.ended !== undefined) return; // killed or closed by the host
    const how = describeExit(exit);
    this.endedByItself(
      new SandboxError(
        `The sandbox process of module ${this.#spec.module} (pid ${this.pid}) ${how}`,
      ),
      how,
    );
  }

  async #read(): Promise<void> {
    const frames = new FrameDecoder();
    const deliver = (data: unknown) => {
      if (!Array.isArray(data)) this.receive(data as GuestMessage);
      else for (const message of data) this.receive(message as GuestMessage);
    };
    try {
      for await (const chunk of this.#process.stdout) frames.push(chunk, deliver);
    } catch (error) {
      if (this.ended !== undefined) return;
      // The module wrote to file descriptor 1 by other means than the runner's frames.
      const how = `broke its stdout channel (${(error as Error).message}); a ` +
        `process-sandboxed filter must log through its logger or console`;
      this.endedByItself(
        new SandboxError(
          `The sandbox process of module ${this.#spec.module} (pid ${this.pid}) ${how}`,
        ),
        how,
      );
    }
  }

  /** The timeout of a call, naming the filter, its module and the process. */
  protected timeoutError(timeoutMs: number): SandboxTimeoutError {
    return new SandboxTimeoutError(
      `Sandboxed filter "${this.#spec.filterName}" (module ${this.#spec.module}, process ${this.pid}) did not answer within ${timeoutMs} ms`,
    );
  }

  /**
   * Writes a batch as one frame. One write is in flight at a time: batches made while it
   * runs wait and go together in the next one, so a busy host wakes the child once per
   * write, not once per batch.
   */
  protected write(batch: HostMessage[]): void {
    let frame: Uint8Array | undefined;
    try {
      frame = encodeFrame(batch);
    } catch {
      frame = this.#encodeEach(batch);
    }
    if (frame === undefined) return;
    if (this.#writing) {
      this.#waiting.push(frame);
      return;
    }
    this.#writeNow(frame);
  }

  #writing = false;
  #waiting: Uint8Array[] = [];

  #writeNow(frame: Uint8Array): void {
    this.#writing = true;
    // A write fails only when the child is gone, which the exit watcher reports.
    this.#stdin.write(frame).then(() => {
      this.#writing = false;
      if (this.#waiting.length === 0) return;
      const frames = this.#waiting;
      this.#waiting = [];
      this.#writeNow(frames.length === 1 ? frames[0] : concat(frames));
    }, () => {
      this.#writing = false;
      this.#waiting = [];
    });
  }

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
        this.failCall(message.id, error instanceof Error ? error : new Error(String(error)));
      }
    }
    return kept.length === 0 ? undefined : encodeFrame(kept);
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

function concat(frames: Uint8Array[]): Uint8Array {
  let length = 0;
  for (const frame of frames) length += frame.length;
  const out = new Uint8Array(length);
  let offset = 0;
  for (const frame of frames) {
    out.set(frame, offset);
    offset += frame.length;
  }
  return out;
}

function denoExecutable(): string {
  try {
    return Deno.execPath();
  } catch {
    // Without read permission the path is hidden; the name resolves through PATH.
    return "deno";
  }
}
