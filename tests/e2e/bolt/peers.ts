/**
 * Real SOFARPC peers for the Bolt tests: the npm `sofa-rpc-node` server and client in
 * `peers/`, run under Node.js (on the PATH) as child processes.
 *
 * @module
 */

const PEERS = new URL("./peers/", import.meta.url).pathname;
/** The SOFARPC server is the example's own: the tests run what the README shows. */
const EXAMPLE_SERVER = new URL("../../../examples/sofarpc/server.cjs", import.meta.url).pathname;
const ROOT = new URL("../../../", import.meta.url).pathname;

/** A running SOFARPC server. */
export interface BoltServer {
  port: number;
  /** `127.0.0.1:PORT`. */
  address: string;
  /** SIGKILLs the server and waits for it to be gone. */
  kill(): Promise<void>;
  /** SIGTERMs the server and waits for it to be gone. */
  stop(): Promise<void>;
}

/** Starts `examples/sofarpc/server.cjs` on `port` (0: any); its methods answer `<label>:<text>`. */
export async function startBoltServer(label: string, port = 0): Promise<BoltServer> {
  const child = new Deno.Command("node", {
    args: [EXAMPLE_SERVER, String(port), label],
    cwd: ROOT,
    stdin: "null",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  // Bounded: the server prints one line when it listens, or exits.
  for (let i = 0; i < 100 && !/listening (\d+)/.test(text); i++) {
    const { value, done } = await reader.read();
    if (done) break;
    text += value;
  }
  const match = /listening (\d+)/.exec(text);
  if (match === null) {
    child.kill("SIGKILL");
    await child.status;
    throw new Error(`The SOFARPC server did not start: ${text}`);
  }
  reader.releaseLock();
  child.stdout.cancel().catch(() => {});
  const boundPort = Number(match[1]);
  let gone = false;
  const status = child.status.then(() => gone = true);
  const end = async (signal: Deno.Signal) => {
    if (!gone) child.kill(signal);
    await status;
  };
  return {
    port: boundPort,
    address: `127.0.0.1:${boundPort}`,
    kill: () => end("SIGKILL"),
    stop: () => end("SIGTERM"),
  };
}

/** A reply of `peers/client.cjs`. */
export interface BoltReply {
  id: number;
  ok: boolean;
  result?: unknown;
  error?: { name: string; message: string };
  matched?: number;
  mismatched?: number;
  errors?: number;
  firstError?: string | null;
}

/** A running SOFARPC client. */
export interface BoltClient {
  /** One call: `service` defaults to `com.example.EchoService`, `timeout` to 3000 ms. */
  call(
    method: string,
    args?: unknown[],
    options?: { service?: string; timeout?: number },
  ): Promise<BoltReply>;
  /**
   * `n` concurrent `echo` calls (`slow(delay, …)` with `delay`); every answer checked
   * against its caller's text.
   */
  many(n: number, options?: { timeout?: number; delay?: number }): Promise<BoltReply>;
  /** Ends the client (end of input, then SIGKILL if it lingers). */
  close(): Promise<void>;
}

/** Runs `peers/raw.cjs` (sofa-bolt-node's encoder and decoder) and returns what it printed. */
export async function boltRaw(serverHost: string, ...args: string[]): Promise<string> {
  const output = await new Deno.Command("node", {
    args: [`${PEERS}raw.cjs`, serverHost, ...args],
    cwd: ROOT,
    stdin: "null",
  }).output();
  return new TextDecoder().decode(output.stdout).trim();
}

/** Starts `peers/client.cjs` against `serverHost` (`host:port`, Mosaic or a server). */
export function startBoltClient(serverHost: string): BoltClient {
  const child = new Deno.Command("node", {
    args: [`${PEERS}client.cjs`, serverHost],
    cwd: ROOT,
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const writer = child.stdin.getWriter();
  const waiting = new Map<number, (reply: BoltReply) => void>();
  let nextId = 1;
  const reading = (async () => {
    let buffered = "";
    for await (const chunk of child.stdout.pipeThrough(new TextDecoderStream())) {
      buffered += chunk;
      let newline: number;
      while ((newline = buffered.indexOf("\n")) >= 0) {
        const reply = JSON.parse(buffered.slice(0, newline)) as BoltReply;
        buffered = buffered.slice(newline + 1);
        waiting.get(reply.id)?.(reply);
        waiting.delete(reply.id);
      }
    }
    for (const wake of waiting.values()) {
      wake({ id: 0, ok: false, error: { name: "ClientExited", message: "client exited" } });
    }
  })();
  const send = (command: Record<string, unknown>): Promise<BoltReply> => {
    const id = nextId++;
    const reply = new Promise<BoltReply>((resolve) => waiting.set(id, resolve));
    writer.write(new TextEncoder().encode(JSON.stringify({ id, ...command }) + "\n"));
    return reply;
  };
  return {
    call: (method, args = [], options = {}) =>
      send({ method, args, service: options.service, timeout: options.timeout }),
    many: (n, options = {}) =>
      send({ op: "many", n, timeout: options.timeout ?? 10_000, delay: options.delay }),
    close: async () => {
      await writer.close().catch(() => {});
      const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
      await child.status;
      clearTimeout(timer);
      await reading;
    },
  };
}
