/**
 * The benchmark's child processes: started with their output kept (the last few KiB, to
 * explain a failure), and all stopped together, also when the benchmark is interrupted.
 *
 * @module
 */

const TAIL_BYTES = 8192;

/** A process the benchmark started. */
export class Child {
  /** What the process is, for messages. */
  readonly name: string;
  /** The running process. */
  readonly process: Deno.ChildProcess;
  /** Settles when the process has exited. */
  readonly exited: Promise<Deno.CommandStatus>;
  #tail = "";
  #done = false;
  #drained: Promise<unknown>;

  /** Wraps a spawned process whose stdout and stderr are piped. */
  constructor(name: string, process: Deno.ChildProcess) {
    this.name = name;
    this.process = process;
    this.exited = process.status.then((status) => {
      this.#done = true;
      return status;
    });
    this.#drained = Promise.all([
      this.#drain(process.stdout),
      this.#drain(process.stderr),
    ]);
  }

  /** True once the process has exited. */
  get done(): boolean {
    return this.#done;
  }

  /** The last lines the process printed (stdout and stderr interleaved). */
  tail(): string {
    return this.#tail.trim();
  }

  /** Stops the process: SIGTERM, then SIGKILL after `graceMs`. */
  async stop(graceMs = 3000): Promise<void> {
    if (!this.#done) {
      try {
        this.process.kill("SIGTERM");
      } catch {
        // It exited between the check and the kill.
      }
      const timer = setTimeout(() => {
        try {
          if (!this.#done) this.process.kill("SIGKILL");
        } catch {
          // Already gone.
        }
      }, graceMs);
      await this.exited;
      clearTimeout(timer);
    }
    await this.#drained;
  }

  async #drain(stream: ReadableStream<Uint8Array>): Promise<void> {
    const decoder = new TextDecoder();
    try {
      for await (const chunk of stream) {
        this.#tail = (this.#tail + decoder.decode(chunk, { stream: true }))
          .slice(-TAIL_BYTES);
      }
    } catch {
      // The pipe broke because the process died: what was read is kept.
    }
  }
}

/** Every process of one benchmark run. */
export class ProcessGroup {
  #children = new Set<Child>();

  /** Starts `command args` with piped output and remembers it for {@linkcode stopAll}. */
  spawn(
    name: string,
    command: string,
    args: string[],
    options: { cwd?: string; env?: Record<string, string> } = {},
  ): Child {
    const process = new Deno.Command(command, {
      args,
      cwd: options.cwd,
      env: options.env,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const child = new Child(name, process);
    this.#children.add(child);
    return child;
  }

  /** Stops one child and forgets it. */
  async stop(child: Child): Promise<void> {
    await child.stop();
    this.#children.delete(child);
  }

  /** Stops every child still known, in parallel. */
  async stopAll(): Promise<void> {
    const children = [...this.#children];
    this.#children.clear();
    await Promise.all(children.map((child) => child.stop()));
  }
}

/** A loopback port that was free a moment ago (the OS chose it). */
export function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  return port;
}

/** Why a server under test did not come up. */
export class ServerStartError extends Error {
  /** Names the error. */
  override name = "ServerStartError";
}

/**
 * Polls `url` until it answers `expectStatus`, the child exits, or `timeoutMs` passes.
 *
 * @throws {ServerStartError} with the child's last output when it never became ready.
 */
export async function waitUntilReady(
  child: Child,
  url: string,
  headers: Record<string, string>,
  expectStatus = 200,
  timeoutMs = 30_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = "no answer yet";
  while (Date.now() < deadline) {
    if (child.done) {
      const status = await child.exited;
      throw new ServerStartError(
        `${child.name} exited with code ${status.code} before it answered ${url}\n${child.tail()}`,
      );
    }
    try {
      const response = await fetch(url, {
        headers,
        signal: AbortSignal.timeout(2000),
      });
      const body = await response.text();
      if (response.status === expectStatus) return;
      last = `status ${response.status}: ${body.slice(0, 200)}`;
    } catch (error) {
      last = error instanceof Error ? error.message : String(error);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new ServerStartError(
    `${child.name} did not answer ${url} with ${expectStatus} within ${timeoutMs} ms ` +
      `(last: ${last})\n${child.tail()}`,
  );
}

/** The 1-minute load average, when the OS tells it (Linux). */
export async function loadAverage(): Promise<number | undefined> {
  try {
    return Number((await Deno.readTextFile("/proc/loadavg")).split(" ")[0]);
  } catch {
    return undefined;
  }
}

/** Warns when the machine is busy before a run: `consequence` says what that skews. */
export async function warnIfBusy(label: string, consequence: string): Promise<number | undefined> {
  const load = await loadAverage();
  const cpus = navigator.hardwareConcurrency;
  if (load !== undefined && load > cpus / 2) {
    console.error(
      `${label}: warning: load average ${load} on ${cpus} cores before the run; ${consequence}`,
    );
  }
  return load;
}

/**
 * On SIGINT, SIGTERM or SIGHUP: stops every process of the group, removes `dir`, and
 * exits 130. `interrupted` tells a run loop to stop; `remove()` takes the handlers away.
 */
export function stopOnSignal(
  label: string,
  processes: ProcessGroup,
  dir: string,
): { readonly interrupted: boolean; remove(): void } {
  let interrupted = false;
  const onSignal = () => {
    if (interrupted) return;
    interrupted = true;
    console.error(`${label}: interrupted, stopping every process it started`);
    processes.stopAll()
      .then(() => Deno.remove(dir, { recursive: true }))
      .catch(() => {})
      .finally(() => Deno.exit(130));
  };
  const signals: Deno.Signal[] = ["SIGINT", "SIGTERM", "SIGHUP"];
  for (const signal of signals) Deno.addSignalListener(signal, onSignal);
  return {
    get interrupted() {
      return interrupted;
    },
    remove() {
      for (const signal of signals) Deno.removeSignalListener(signal, onSignal);
    },
  };
}
