/**
 * The parsed config file with its positions: YAML (or JSON, a subset) parsed with
 * `npm:yaml` so that every value's line is known, and field paths to name values in
 * messages.
 *
 * @module
 */

import process from "node:process";
import { isAlias, isMap, isScalar, isSeq, LineCounter, parseDocument } from "yaml";
import type { Document, Node } from "yaml";
import { ConfigError } from "./errors.ts";
import type { SourcePosition } from "./types.ts";

/** A path into the config data: keys and list indexes. */
export type FieldPath = readonly PropertyKey[];

const PLAIN_KEY = /^[A-Za-z_][A-Za-z0-9_-]*$/;

/**
 * Formats a field path the way messages show it: `servers[0].listeners[1].address`.
 * Keys that are not plain identifiers are quoted: `plugins["my.plugin"]`.
 *
 * @param path The keys and indexes from the top of the file.
 * @returns The path, or `(top level)` for the empty path.
 */
export function formatPath(path: FieldPath): string {
  let out = "";
  for (const segment of path) {
    if (typeof segment === "number") out += `[${segment}]`;
    else {
      const key = String(segment);
      if (!PLAIN_KEY.test(key)) out += `[${JSON.stringify(key)}]`;
      else out += out === "" ? key : `.${key}`;
    }
  }
  return out === "" ? "(top level)" : out;
}

/** Environment variables npm:yaml reads on every parse: two debug switches. */
const YAML_DEBUG_ENV = ["LOG_TOKENS", "LOG_STREAM"];

/**
 * Runs a (synchronous) YAML parse so that npm:yaml's reads of its two debug switches
 * (`process.env.LOG_TOKENS`, `process.env.LOG_STREAM`) need no `--allow-env`: unless
 * env access to them is already granted, `process.env` is swapped for the parse by a
 * view that reads them as unset, so Deno neither prompts nor fails with NotCapable.
 * Mosaic reads no other variable, so `deno run --allow-net --allow-read main.ts …`
 * suffices.
 */
export function withoutYamlDebugEnv<T>(parse: () => T): T {
  const granted = YAML_DEBUG_ENV.every((variable) =>
    Deno.permissions.querySync({ name: "env", variable }).state === "granted"
  );
  const descriptor = Object.getOwnPropertyDescriptor(process, "env");
  if (granted || descriptor === undefined || !descriptor.configurable) return parse();
  const real = descriptor.value ?? descriptor.get?.call(process);
  // A fresh target: the engine checks a trap's answer against its target's own
  // properties, and asking the real env about LOG_TOKENS is the read to avoid.
  const quiet = new Proxy({}, {
    get: (_target, key) =>
      typeof key === "string" && YAML_DEBUG_ENV.includes(key) ? undefined : real[key],
    has: (_target, key) =>
      typeof key === "string" && YAML_DEBUG_ENV.includes(key) ? false : key in real,
  });
  Object.defineProperty(process, "env", {
    configurable: true,
    enumerable: descriptor.enumerable,
    writable: true,
    value: quiet,
  });
  try {
    return parse();
  } finally {
    Object.defineProperty(process, "env", descriptor);
  }
}

/** A config file parsed into plain data, which can say where each value came from. */
export class SourceDocument {
  /** The config file as the caller named it; used in messages. */
  readonly file: string;
  /** The file's content as plain JavaScript values. */
  readonly data: unknown;
  /** Warnings of the YAML parser, already formatted with file and line. */
  readonly warnings: string[] = [];
  #doc: Document.Parsed;
  #lines: LineCounter;

  /**
   * Parses `text`.
   *
   * @param text The file's content.
   * @param file The file's name for messages.
   * @throws {ConfigError} On a YAML syntax error, with its line.
   */
  constructor(text: string, file: string) {
    this.file = file;
    this.#lines = new LineCounter();
    // Unique keys: a repeated key in a hand-edited file is almost always a mistake, and
    // silently keeping the last one would hide it.
    this.#doc = withoutYamlDebugEnv(() =>
      parseDocument(text, {
        lineCounter: this.#lines,
        prettyErrors: false,
        uniqueKeys: true,
        merge: true,
      })
    );
    const first = this.#doc.errors[0];
    if (first !== undefined) {
      throw new ConfigError(
        { file, line: this.#lineAt(first.pos[0]), path: "" },
        `invalid YAML: ${first.message}` +
          (/Alias/.test(first.message)
            ? ` (a value starting with * is a YAML alias: quote a wildcard domain, "*" or "*.example.com")`
            : ""),
      );
    }
    for (const warning of this.#doc.warnings) {
      this.warnings.push(`${file}:${this.#lineAt(warning.pos[0])}: ${warning.message}`);
    }
    try {
      this.data = this.#doc.toJS({ maxAliasCount: 1000 });
    } catch (cause) {
      throw new ConfigError(
        { file, line: 1, path: "" },
        `invalid YAML: ${(cause as Error).message}`,
        { cause },
      );
    }
  }

  /**
   * The line of the value at `path`; for a value that is not in the file (a missing
   * field) the line of the nearest enclosing value that is.
   *
   * @param path Keys and indexes from the top of the file.
   * @returns A 1-based line.
   */
  line(path: FieldPath): number {
    const found = this.#find(path);
    return this.#lineAt(found.node?.range?.[0] ?? 0);
  }

  /**
   * The line of the key that names the value at `path` (for warnings about a key);
   * falls back to {@linkcode SourceDocument.line}.
   *
   * @param path Keys and indexes from the top of the file.
   * @returns A 1-based line.
   */
  keyLine(path: FieldPath): number {
    const found = this.#find(path);
    const at = found.complete ? found.key?.range?.[0] : undefined;
    return at === undefined ? this.line(path) : this.#lineAt(at);
  }

  /**
   * The position of the value at `path`, for the normalized config.
   *
   * @param path Keys and indexes from the top of the file.
   * @returns File, line and formatted path.
   */
  position(path: FieldPath): SourcePosition {
    return { file: this.file, line: this.line(path), path: formatPath(path) };
  }

  /**
   * A {@linkcode ConfigError} about the value at `path`.
   *
   * @param path Keys and indexes from the top of the file.
   * @param problem What is wrong, e.g. `expected host:port, got "2046x"`.
   * @returns The error, to throw.
   */
  error(path: FieldPath, problem: string): ConfigError {
    return new ConfigError(
      { file: this.file, line: this.line(path), path: formatPath(path) },
      problem,
    );
  }

  #lineAt(offset: number): number {
    return this.#lines.linePos(offset).line;
  }

  /** Walks the YAML nodes along `path` as far as they go. */
  #find(path: FieldPath): { node: Node | undefined; key: Node | undefined; complete: boolean } {
    let node = this.#resolve(this.#doc.contents ?? undefined);
    let key: Node | undefined;
    for (const segment of path) {
      let next: Node | undefined;
      let nextKey: Node | undefined;
      if (isMap(node)) {
        for (const pair of node.items) {
          const k = pair.key;
          const name = isScalar(k) ? k.value : k;
          if (String(name) === String(segment)) {
            nextKey = isScalar(k) ? k : undefined;
            next = this.#resolve(pair.value as Node | null) ?? nextKey;
            break;
          }
        }
      } else if (isSeq(node) && typeof segment === "number") {
        next = this.#resolve(node.items[segment] as Node | null);
      }
      if (next === undefined) return { node, key, complete: false };
      node = next;
      key = nextKey;
    }
    return { node, key, complete: true };
  }

  #resolve(node: Node | null | undefined): Node | undefined {
    if (node === null || node === undefined) return undefined;
    if (isAlias(node)) return (node.resolve(this.#doc) as Node | undefined) ?? node;
    return node;
  }
}
