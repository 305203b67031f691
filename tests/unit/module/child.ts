/**
 * Runs `fixtures/load_child.ts` in a child `deno run` with exactly the flags a test
 * gives (never -A), and `--no-lock`: Deno records every remote module it imports in
 * deno.lock, which must not collect the test servers' random ports.
 *
 * @module
 */

import type { ChildSpec } from "./fixtures/load_child.ts";

const CHILD = new URL("./fixtures/load_child.ts", import.meta.url).pathname;
const ROOT = new URL("../../../", import.meta.url).pathname;

/** What the child printed. */
export interface ChildResult {
  status?: number;
  body?: string;
  error?: string;
  stderr: string;
}

/** Runs the child with `flags` and returns its result line and its stderr. */
export async function runChild(flags: string[], spec: ChildSpec): Promise<ChildResult> {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--no-prompt", "--no-lock", ...flags, CHILD, JSON.stringify(spec)],
    cwd: ROOT,
    env: { NO_COLOR: "1" },
    stdin: "null",
    signal: AbortSignal.timeout(60_000),
  }).output();
  const stdout = new TextDecoder().decode(output.stdout).trim().split("\n").at(-1) ?? "";
  const stderr = new TextDecoder().decode(output.stderr);
  try {
    return { ...JSON.parse(stdout), stderr };
  } catch {
    throw new Error(`The child printed no result (exit ${output.code}):\n${stdout}\n${stderr}`);
  }
}

/**
 * A JavaScript filter module that answers every request 200 with `expression` (code
 * evaluated in `onReceive(s)`), after `imports`.
 */
export function answering(expression: string, imports = ""): string {
  return `${imports}
export function createStreamFilterFactory() {
  return {
    createFilterChain(chain) {
      chain.addReceiver({
        async onReceive(s) {
          s.respond(200, { body: String(${expression}) });
          return "stop";
        },
      }, "before_route");
    },
  };
}
`;
}
