/**
 * One plugin child process: spawn it, read its handshake, forward its output to the
 * log, stop it.
 *
 * @module
 */

import type { Logger } from "@logtape/logtape";
import { basename, dirname } from "node:path";
import type { PluginConfig } from "../config/types.ts";
import { PluginStartError } from "./errors.ts";
import { type Handshake, HandshakeError, parseHandshake, quote } from "./handshake.ts";
import { LineReader, LineRing } from "./lines.ts";
import { withTimeout } from "./timer.ts";

/** How many stderr lines are kept to explain a child that died. */
const STDERR_TAIL = 20;

/**
 * The env var that tells a Mosaic SDK plugin which network to listen on (`unix` or
 * `tcp`): the config's `network` hint. MOSN passes no such hint; plugins from elsewhere
 * ignore it.
 */
export const NETWORK_ENV = "MOSAIC_PLUGIN_NETWORK";

/** go-plugin's magic cookie as MOSN configures it (`MagicCookieKey`/`Value`). */
export const MAGIC_COOKIE_KEY = "MOSN_PLUGIN";
/** The magic cookie's value. */
export const MAGIC_COOKIE_VALUE = "ON";

/** Options for {@linkcode PluginProcess.start}. */
export interface SpawnOptions {
  /** The plugin's logger: stdout and stderr lines go here. */
  logger: Logger;
  /** `MOSN_LOGBASE`: where the plugin may write its logs. */
  logBase: string;
}

/** How a child ended. */
export interface ExitInfo {
  /** The exit code (128 + n after signal n). */
  code: number;
  /** The signal that ended it, if any. */
  signal: Deno.Signal | null;
  /** Its last stderr lines. */
  stderrTail: string[];
}

/** Builds the env a plugin is started with (MOSN's and go-plugin's, then the config's). */
export function pluginEnv(config: PluginConfig, logBase: string): Record<string, string> {
  return {
    [MAGIC_COOKIE_KEY]: MAGIC_COOKIE_VALUE,
    PLUGIN_PROTOCOL_VERSIONS: "1",
    PLUGIN_MIN_PORT: "10000",
    PLUGIN_MAX_PORT: "25000",
    MOSN_PROCS: String(config.maxProcs),
    MOSN_LOGBASE: logBase,
    [NETWORK_ENV]: config.network,
    ...config.env,
  };
}

/**
 * Describes how a child ended, for logs and errors: `exited with code 3` or `was killed
 * by SIGKILL`, then `when` if given, then its last stderr lines.
 */
export function describeExit(exit: ExitInfo, when = ""): string {
  const how = exit.signal ? `was killed by ${exit.signal}` : `exited with code ${exit.code}`;
  const at = when ? ` ${when}` : "";
  if (exit.stderrTail.length === 0) return `${how}${at} (no stderr output)`;
  return `${how}${at}; its last stderr lines: ${quoteTail(exit.stderrTail)}`;
}

/** A started plugin child that printed a valid handshake. */
export class PluginProcess {
  /** The child's process id. */
  readonly pid: number;
  /** What the child printed. */
  readonly handshake: Handshake;
  /** When the handshake was read (ms since the epoch). */
  readonly startedAt: number;
  /** Resolves once the child exited and its pipes are closed; never rejects. */
  readonly exited: Promise<ExitInfo>;

  #child: Deno.ChildProcess;
  #hasExited = false;

  private constructor(
    child: Deno.ChildProcess,
    handshake: Handshake,
    exited: Promise<ExitInfo>,
  ) {
    this.#child = child;
    this.pid = child.pid;
    this.handshake = handshake;
    this.startedAt = Date.now();
    this.exited = exited.then((exit) => {
      this.#hasExited = true;
      return exit;
    });
  }

  /**
   * Spawns the plugin and waits for its handshake.
   *
   * @param config The plugin's config.
   * @param options Logger and log base.
   * @returns The running process.
   * @throws {PluginStartError} when the command cannot be spawned, prints a bad
   * handshake, prints nothing within `startTimeoutMs`, or exits first. The child is
   * gone when this throws.
   */
  static async start(config: PluginConfig, options: SpawnOptions): Promise<PluginProcess> {
    const name = config.name;
    const [program, ...rest] = config.command;
    let child: Deno.ChildProcess;
    try {
      child = new Deno.Command(program, {
        args: [...rest, ...config.args],
        env: pluginEnv(config, options.logBase),
        cwd: config.cwd,
        stdin: "piped",
        stdout: "piped",
        stderr: "piped",
      }).spawn();
    } catch (err) {
      throw new PluginStartError(
        name,
        `Plugin "${name}" could not be started: running ${quote(config.command.join(" "))} ` +
          `failed: ${(err as Error).message}`,
        { cause: err },
      );
    }

    const logger = options.logger;
    const tail = new LineRing(STDERR_TAIL);
    const stderrDone = new LineReader(child.stderr).forward((line) => {
      tail.push(line);
      logger.info(asMessage(line), { stream: "stderr" });
    });
    const stdout = new LineReader(child.stdout);
    const status = child.status;

    /** Closes stdin and waits for the pipes, once the child is gone. */
    async function exitInfo(): Promise<ExitInfo> {
      const s = await status;
      await closeStdin(child);
      // A grandchild may hold the pipes open: do not wait for it forever.
      await withTimeout(stderrDone, 1000);
      await stdout.cancel();
      return { code: s.code, signal: s.signal, stderrTail: tail.lines() };
    }

    let line: string | undefined;
    let timedOut = false;
    try {
      const got = await withTimeout(
        stdout.next().then((l) => ({ line: l })),
        config.startTimeoutMs,
      );
      if (got === undefined) timedOut = true;
      else line = got.line;
    } catch {
      line = undefined; // stdout broke: handled as an exit below
    }

    let failure: string | undefined;
    let cause: unknown;
    let handshake: Handshake | undefined;
    if (timedOut) {
      failure = `Plugin "${name}" printed no handshake within ${config.startTimeoutMs} ms ` +
        `(start_timeout)`;
    } else if (line === undefined) {
      failure = undefined; // described once the exit status is known
    } else {
      try {
        handshake = parseHandshake(name, line);
      } catch (err) {
        if (!(err instanceof HandshakeError)) throw err;
        failure = err.message;
        cause = err;
      }
    }

    if (handshake === undefined) {
      killQuietly(child, "SIGKILL");
      const exit = await exitInfo();
      if (failure === undefined) {
        failure = `Plugin "${name}" ${describeExit(exit, "before printing its handshake")}`;
      } else if (exit.stderrTail.length > 0) {
        failure += `; its last stderr lines: ${quoteTail(exit.stderrTail)}`;
      }
      throw new PluginStartError(name, failure, { cause });
    }

    // go-plugin hosts keep reading stdout after the handshake; so do we, or a chatty
    // plugin would block on a full pipe.
    const stdoutDone = stdout.forward((l) => logger.info(asMessage(l), { stream: "stdout" }));
    const exited = exitInfo().then(async (exit) => {
      await withTimeout(stdoutDone, 1000);
      await removeSocket(handshake);
      return exit;
    });
    return new PluginProcess(child, handshake, exited);
  }

  /** True once the child has exited. */
  get hasExited(): boolean {
    return this.#hasExited;
  }

  /** Sends a signal; does nothing if the child is gone. */
  kill(signal: Deno.Signal = "SIGKILL"): void {
    if (!this.#hasExited) killQuietly(this.#child, signal);
  }

  /**
   * Stops the child: closes its stdin (an SDK plugin exits on EOF), sends SIGTERM,
   * waits up to `graceMs`, then sends SIGKILL.
   *
   * @returns How it ended.
   */
  async stop(graceMs: number): Promise<ExitInfo> {
    if (!this.#hasExited) {
      await closeStdin(this.#child);
      killQuietly(this.#child, "SIGTERM");
      const exit = await withTimeout(this.exited, graceMs);
      if (exit !== undefined) return exit;
      killQuietly(this.#child, "SIGKILL");
    }
    return await this.exited;
  }
}

/**
 * The private folders plugins make for their unix socket: Mosaic's SDKs' (Node's
 * `mkdtemp("mosaic-plugin-")`, Python's `tempfile.mkdtemp(prefix="mosaic-plugin-")`) and
 * go-plugin's (`os.MkdirTemp("", "plugin")`).
 */
const SOCKET_DIR = /^(?:mosaic-plugin-[A-Za-z0-9_]+|plugin\d+)$/;

/**
 * Removes a unix plugin's socket, and the private folder it made for it, once the child
 * is gone: a plugin cleans up after itself on a graceful exit, but not when it was
 * SIGKILLed (a stop past its grace, a crash) or is not one of Mosaic's SDKs. Only a
 * socket file is removed, and its folder only when the name is one plugins make and it
 * is then empty. Needs write access to the path (granted for the temp directory, which
 * `main.ts flags` prints for unix plugins); without it, nothing is touched and nothing
 * is asked for.
 */
export async function removeSocket(handshake: Handshake): Promise<void> {
  if (handshake.network !== "unix") return;
  const path = handshake.address;
  const dir = dirname(path);
  const allowed = (target: string) =>
    Deno.permissions.querySync({ name: "write", path: target }).state === "granted" &&
    Deno.permissions.querySync({ name: "read", path: target }).state === "granted";
  if (!allowed(path)) return;
  try {
    if ((await Deno.lstat(path)).isSocket) await Deno.remove(path);
  } catch {
    // Already gone, or not ours to remove.
  }
  if (!SOCKET_DIR.test(basename(dir)) || !allowed(dir)) return;
  try {
    await Deno.remove(dir); // not recursive: only when nothing else is in it
  } catch {
    // Already gone, or not empty.
  }
}

/** Quotes stderr lines, keeping the end when they are long: the end says why. */
function quoteTail(lines: string[]): string {
  const text = lines.join("\n");
  return JSON.stringify(text.length > 1500 ? "…" + text.slice(-1500) : text);
}

/** A child's output line as a LogTape message: its braces are not placeholders. */
function asMessage(line: string): string {
  return line.replaceAll("{", "{{").replaceAll("}", "}}");
}

function killQuietly(child: Deno.ChildProcess, signal: Deno.Signal): void {
  try {
    child.kill(signal);
  } catch {
    // Already exited.
  }
}

async function closeStdin(child: Deno.ChildProcess): Promise<void> {
  try {
    if (!child.stdin.locked) await child.stdin.close();
  } catch {
    // Already closed, or the child is gone.
  }
}
