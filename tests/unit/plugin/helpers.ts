/**
 * Shared helpers of the plugin tests.
 *
 * @module
 */

import type { LogRecord } from "@logtape/logtape";
import type { PluginConfig } from "../../../src/config/types.ts";

/** The fixtures folder. */
export const FIXTURES = new URL("./fixtures/", import.meta.url).pathname;

/** The repo root. */
export const ROOT = new URL("../../../", import.meta.url).pathname;

/** A plugin config with test defaults. */
export function pluginConfig(
  name: string,
  command: string[],
  extra: Partial<PluginConfig> = {},
): PluginConfig {
  return {
    name,
    command,
    args: [],
    env: {},
    cwd: undefined,
    network: "unix",
    startTimeoutMs: 15_000,
    maxProcs: 1,
    position: { file: "test.yaml", line: 1, path: `plugins.${name}` },
    ...extra,
  };
}

/** The command that runs a TypeScript fixture under Deno. */
export function denoCommand(fixture: string): string[] {
  return [Deno.execPath(), "run", "--allow-all", "--no-lock", FIXTURES + fixture];
}

/**
 * Bundles a TypeScript plugin into one JavaScript file for Node.js, as the SDK docs
 * recommend, cached under `.tmp/` (keyed by the modification time of the source and of
 * the SDK).
 *
 * @returns The command that runs it under Node.js.
 */
export async function nodeCommand(fixture: string): Promise<string[]> {
  const source = FIXTURES + fixture;
  // Keyed by the newest of the fixture and the SDK it bundles.
  let stamp = 0;
  for (const file of [source, `${ROOT}plugin.ts`, `${ROOT}src/plugin/proto.ts`]) {
    stamp = Math.max(stamp, (await Deno.stat(file)).mtime?.getTime() ?? 0);
  }
  const dir = `${ROOT}.tmp/plugin-bundles`;
  await Deno.mkdir(dir, { recursive: true });
  const out = `${dir}/${fixture.replace(/\.ts$/, "")}-${stamp}.mjs`;
  try {
    await Deno.stat(out);
  } catch {
    // Bundle to a private name, then rename: test files run in parallel.
    const tmp = `${out}.${crypto.randomUUID()}.mjs`; // the extension picks the format
    const { success, stderr } = await new Deno.Command(Deno.execPath(), {
      args: ["bundle", "--platform", "deno", "--quiet", "-o", tmp, source],
      cwd: ROOT,
      stdout: "null",
      stderr: "piped",
    }).output();
    if (!success) throw new Error(`deno bundle failed: ${new TextDecoder().decode(stderr)}`);
    await Deno.rename(tmp, out);
  }
  return ["node", out];
}

/** Polls `check` every 20 ms until it is true, at most `ms`. */
export async function waitFor(
  check: () => boolean | Promise<boolean>,
  ms: number,
  what: string,
): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`Timed out after ${ms} ms waiting for ${what}`);
}

/** True while a process with this pid exists and is not a zombie. */
export function isAlive(pid: number): boolean {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    // The state follows the parenthesized command name.
    const state = stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
    return state !== "Z" && state !== "X";
  } catch {
    return false;
  }
}

/** The text of a LogTape record. */
export function recordText(record: LogRecord): string {
  return record.message.map((part) => typeof part === "string" ? part : String(part)).join("");
}
