/**
 * The main module of a process sandbox: `deno run <the sandbox's flags> runner.ts
 * <module URL> <export> <grants to revoke>`. It imports the filter module, then serves
 * the host's calls with the guest every sandbox runs ({@linkcode sandboxWorkerMain}),
 * its messages carried as frames over stdin and stdout instead of `postMessage`.
 *
 * The module is imported with `import()`, so Deno checks its whole module graph, and
 * every `import()` it makes later, against this process's flags: the sandbox's
 * permissions plus read access to the module's own folder (or import access to its
 * host), which the host adds so the module can load at all. That read grant is revoked
 * once the module is loaded, so `Deno.readFile` and friends get exactly the sandbox's
 * permissions. (Deno checks module loading against the flags the process started with
 * and ignores a revocation, measured on 2.9.6: a later `import()` of a file in the
 * module's own folder still loads; anything outside it does not.)
 *
 * stdout carries frames, so the runner takes it before the module loads: `console.*`
 * becomes the filter's log, `Deno.stdout` is the process's stderr (also logged by the
 * host), and `Deno.stdin` is hidden. Writing to file descriptor 1 by other means breaks
 * the stream; the host then kills the process and says so. The process exits when its
 * stdin ends: the host closed it, or died.
 *
 * @module
 */

import { sandboxWorkerMain } from "../guest/main.ts";
import type { RemoteError } from "../supervisor/protocol.ts";
import { encodeFrame, FrameDecoder } from "./frames.ts";

const stdout = Deno.stdout;
const stdin = Deno.stdin;
const scope = globalThis as unknown as {
  postMessage(message: unknown): void;
  onmessage: ((event: { data: unknown }) => void) | null;
};

/** Writes one frame; a pipe may take it in parts. */
function send(message: unknown): void {
  const frame = encodeFrame(message);
  let written = 0;
  while (written < frame.length) written += stdout.writeSync(frame.subarray(written));
}

function remoteError(error: unknown): RemoteError {
  return error instanceof Error
    ? { name: error.name, message: error.message, stack: error.stack }
    : { name: "Error", message: String(error) };
}

function text(args: unknown[]): string {
  return args.map((arg) => typeof arg === "string" ? arg : Deno.inspect(arg)).join(" ");
}

function takeStdio(): void {
  const levels = {
    log: "info",
    info: "info",
    debug: "debug",
    trace: "debug",
    warn: "warn",
    error: "error",
  } as const;
  for (const [method, level] of Object.entries(levels)) {
    (console as unknown as Record<string, unknown>)[method] = (...args: unknown[]) =>
      send({ t: "log", level, message: text(args), properties: undefined });
  }
  Object.defineProperty(Deno, "stdout", { value: Deno.stderr, enumerable: true });
  Object.defineProperty(Deno, "stdin", {
    enumerable: true,
    get() {
      throw new Error("A process-sandboxed filter cannot use stdin: it carries Mosaic's calls");
    },
  });
}

async function main(): Promise<void> {
  const [importUrl, exportName, revoke] = Deno.args;
  takeStdio();
  // The Worker side posts its messages in batches (arrays) or, in its first version, one
  // by one; it takes them the same way it posts them. The host sends arrays.
  let batched: boolean | undefined;
  scope.postMessage = (message) => {
    batched ??= Array.isArray(message);
    send(message);
  };
  let namespace: Record<string, unknown>;
  try {
    namespace = await import(importUrl);
  } catch (error) {
    send({ t: "load_failed", error: remoteError(error) });
    Deno.exit(1);
  }
  for (const descriptor of JSON.parse(revoke ?? "[]") as Deno.PermissionDescriptor[]) {
    Deno.permissions.revokeSync(descriptor);
  }
  sandboxWorkerMain(namespace, exportName);
  const frames = new FrameDecoder();
  const deliver = (data: unknown) => {
    if (batched) scope.onmessage?.({ data });
    else for (const message of data as unknown[]) scope.onmessage?.({ data: message });
  };
  try {
    for await (const chunk of stdin.readable) frames.push(chunk, deliver);
  } catch (error) {
    Deno.stderr.writeSync(
      new TextEncoder().encode(`The sandbox's input broke: ${remoteError(error).message}\n`),
    );
    Deno.exit(2);
  }
  Deno.exit(0);
}

if (import.meta.main) await main();
