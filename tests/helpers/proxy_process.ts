/**
 * Starts the real proxy (`deno run main.ts config.yaml`) as a child process for
 * end-to-end tests, and real upstream servers on loopback ports.
 *
 * @module
 */

const ROOT = new URL("../../", import.meta.url);
const MAIN = new URL("main.ts", ROOT).pathname;

/** A running proxy process. */
export interface ProxyProcess {
  /** The bound address of each listener, by name (`127.0.0.1:PORT`). */
  listeners: Map<string, string>;
  /** Everything the process wrote to stdout and stderr so far. */
  output(): string;
  /** Waits until the output contains `text` (or times out). */
  waitForOutput(text: string | RegExp, timeoutMs?: number): Promise<void>;
  /** Sends a signal. */
  kill(signal?: Deno.Signal): void;
  /** The process id. */
  pid: number;
  /** Sends SIGTERM (unless already gone) and resolves with the exit status. */
  stop(): Promise<Deno.CommandStatus>;
  /** The exit status, once exited. */
  status: Promise<Deno.CommandStatus>;
}

/** Options of {@linkcode startProxy}. */
export interface StartOptions {
  /** `deno run` permission flags; default `--allow-net --allow-read --allow-env`. */
  flags?: string[];
  /** Listener names to wait for; default: every `Listener <name> on` line until ready. */
  waitFor?: string[];
  /** Give up after this long; default 20 s. */
  timeoutMs?: number;
  /** Extra CLI arguments before the config path (e.g. `check`). */
  args?: string[];
  /** Extra environment of the process (e.g. `OTEL_*`), over the test's own. */
  env?: Record<string, string>;
}

/** The temp folders {@linkcode writeConfig} made, removed after the test file's last test. */
const madeDirs = new Set<string>();

/** Removes the temp folders {@linkcode writeConfig} made so far. */
export async function removeConfigDirs(): Promise<void> {
  for (const dir of madeDirs) {
    await Deno.remove(dir, { recursive: true }).catch((error) => {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
    });
    madeDirs.delete(dir);
  }
}

// Every test file that writes configs through this helper cleans up after its last test
// (a proxy may be restarted on the same config, so stopping one is not the end of it).
Deno.test.afterAll(removeConfigDirs);

/**
 * Writes `yaml` to a temp file and returns its path. Without `dir`, the file goes into a
 * new `mosaic-e2e-*` folder that is removed after the test file's last test; a `dir`
 * given is the caller's to remove.
 */
export async function writeConfig(yaml: string, dir?: string): Promise<string> {
  let directory = dir;
  if (directory === undefined) {
    directory = await Deno.makeTempDir({ prefix: "mosaic-e2e-" });
    madeDirs.add(directory);
  }
  const file = `${directory}/config.yaml`;
  await Deno.writeTextFile(file, yaml);
  return file;
}

/** Starts the proxy on `configFile` and waits until its listeners are bound. */
export async function startProxy(
  configFile: string,
  options: StartOptions = {},
): Promise<ProxyProcess> {
  const flags = options.flags ?? ["--allow-net", "--allow-read", "--allow-env"];
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", ...flags, MAIN, ...(options.args ?? []), configFile],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1", ...options.env },
  }).spawn();
  let text = "";
  const waiters = new Set<() => void>();
  const decoder = new TextDecoder();
  const collect = async (stream: ReadableStream<Uint8Array>) => {
    for await (const chunk of stream) {
      text += decoder.decode(chunk, { stream: true });
      for (const wake of waiters) wake();
    }
  };
  const collecting = Promise.all([collect(child.stdout), collect(child.stderr)]);
  const status = child.status.then(async (s) => {
    await collecting;
    for (const wake of waiters) wake();
    return s;
  });
  let exited = false;
  status.then(() => exited = true);

  const waitForOutput = async (pattern: string | RegExp, timeoutMs = 20_000) => {
    const matches = () => typeof pattern === "string" ? text.includes(pattern) : pattern.test(text);
    const deadline = Date.now() + timeoutMs;
    while (!matches()) {
      if (exited) throw new Error(`The proxy exited before printing ${pattern}:\n${text}`);
      const remaining = deadline - Date.now();
      if (remaining <= 0) throw new Error(`Timed out waiting for ${pattern} in:\n${text}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, Math.min(remaining, 200));
        function done() {
          clearTimeout(timer);
          waiters.delete(done);
          resolve();
        }
        waiters.add(done);
      });
    }
  };

  const proxy: ProxyProcess = {
    listeners: new Map(),
    output: () => text,
    waitForOutput,
    kill: (signal = "SIGTERM") => {
      if (!exited) child.kill(signal);
    },
    pid: child.pid,
    stop: async () => {
      if (!exited) child.kill("SIGTERM");
      return await status;
    },
    status,
  };
  if (options.args?.length) return proxy;
  try {
    await waitForOutput("Mosaic running", options.timeoutMs ?? 20_000);
  } catch (error) {
    await proxy.stop().catch(() => {});
    throw error;
  }
  for (const match of text.matchAll(/Listener (\S+) on (\S+)/g)) {
    proxy.listeners.set(match[1], match[2]);
  }
  return proxy;
}

/** A real HTTP upstream on a free loopback port. */
export interface Upstream {
  /** `127.0.0.1:PORT`. */
  address: string;
  port: number;
  /** Requests seen so far. */
  requests: number;
  close(): Promise<void>;
}

/** Starts `Deno.serve` on 127.0.0.1 port 0 with `handler`. */
export function startUpstream(
  handler: (request: Request) => Response | Promise<Response>,
): Upstream {
  const upstream = {
    address: "",
    port: 0,
    requests: 0,
    close: async () => {
      await server.shutdown();
    },
  };
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (request) => {
    upstream.requests++;
    return handler(request);
  });
  upstream.port = server.addr.port;
  upstream.address = `127.0.0.1:${server.addr.port}`;
  return upstream;
}

/** A port that was free a moment ago (bind, read, close). */
export function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}
