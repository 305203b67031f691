/**
 * `python3 -m http.server --bind 127.0.0.1 0` serving a temp folder, as a user serves a
 * filter module while trying it: on Debian it sends `.ts` as
 * `text/vnd.trolltech.linguist` (from /etc/mime.types), which Deno reads as JavaScript.
 *
 * @module
 */

/** A running Python file server; disposing it stops it and removes its folder. */
export interface PythonServer extends AsyncDisposable {
  /** `http://127.0.0.1:PORT`. */
  base: string;
  /** `127.0.0.1:PORT`. */
  host: string;
  /** The folder it serves. */
  dir: string;
}

/** Writes `files` (name → text) to a temp folder and serves it with Python's http.server. */
export async function servePython(files: Record<string, string>): Promise<PythonServer> {
  const dir = await Deno.makeTempDir({ prefix: "mosaic-python-" });
  for (const [name, text] of Object.entries(files)) {
    await Deno.writeTextFile(`${dir}/${name}`, text);
  }
  const child = new Deno.Command("python3", {
    args: ["-u", "-m", "http.server", "--bind", "127.0.0.1", "--directory", dir, "0"],
    stdin: "null",
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const stop = async () => {
    try {
      child.kill("SIGTERM");
    } catch { /* gone */ }
    await child.status;
    await Deno.remove(dir, { recursive: true });
  };
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
  try {
    while (!/port (\d+)/.test(text)) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`python3 -m http.server printed no port: ${text}`);
      text += value;
    }
  } catch (error) {
    await stop();
    throw error;
  } finally {
    clearTimeout(timer);
  }
  // Keep draining its stdout so it never blocks on a full pipe.
  (async () => {
    try {
      while (!(await reader.read()).done) { /* drain */ }
    } catch { /* closed */ }
  })();
  const port = /port (\d+)/.exec(text)![1];
  return {
    base: `http://127.0.0.1:${port}`,
    host: `127.0.0.1:${port}`,
    dir,
    [Symbol.asyncDispose]: stop,
  };
}

/** What the server sends as `Content-Type` for `path`. */
export async function servedContentType(base: string, path: string): Promise<string | null> {
  const response = await fetch(`${base}${path}`);
  await response.body?.cancel();
  return response.headers.get("content-type");
}

/** A TypeScript filter module whose first line has a type annotation. */
export const TYPED_FILTER = `const tag: string = "typed";
export const createStreamFilterFactory = () => ({
  createFilterChain(chain: { addReceiver(r: unknown, phase: string): void }) {
    chain.addReceiver({ onReceive: () => tag === "typed" ? "continue" : "stop" }, "before_route");
  },
});
`;
