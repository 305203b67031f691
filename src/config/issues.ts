/**
 * Turns zod's issues into Mosaic's messages: `expected …, got …`, one issue per
 * offending field, the first in file order reported as a {@linkcode ConfigError}.
 *
 * @module
 */

import type { z } from "zod";
import type { ConfigError } from "./errors.ts";
import type { SourceDocument } from "./positions.ts";
import { describeValue } from "./values.ts";

const TYPE_NAMES: Record<string, string> = {
  string: "a string",
  number: "a number",
  int: "an integer",
  boolean: "true or false",
  object: "a mapping",
  record: "a mapping",
  map: "a mapping",
  array: "a list",
  tuple: "a list",
};

/** The raw issue zod hands to an error map. */
type RawIssue = z.core.$ZodRawIssue;

/**
 * The per-parse error map: words every issue zod raises without a message of its own.
 *
 * @param issue The issue as zod raises it.
 * @returns The message, e.g. `expected a list, got a mapping`.
 */
export function issueMessage(issue: RawIssue): string | undefined {
  const got = describeValue(issue.input);
  switch (issue.code) {
    case "invalid_type": {
      const expected = TYPE_NAMES[issue.expected] ?? issue.expected;
      return issue.input === undefined
        ? `missing; expected ${expected}`
        : `expected ${expected}, got ${got}`;
    }
    case "invalid_value":
      return `expected ${listOf(issue.values.map((v) => JSON.stringify(v)))}, got ${got}`;
    case "too_small":
      if (issue.origin === "string") return `expected a non-empty string, got ${got}`;
      if (issue.origin === "array") {
        return `expected at least ${issue.minimum} ${
          issue.minimum === 1 ? "entry" : "entries"
        }, got ${(issue.input as unknown[]).length}`;
      }
      return `expected at least ${issue.minimum}, got ${got}`;
    case "too_big":
      if (issue.origin === "array") {
        return `expected at most ${issue.maximum} entries, got ${
          (issue.input as unknown[]).length
        }`;
      }
      return `expected at most ${issue.maximum}, got ${got}`;
    case "invalid_format":
      return `expected ${issue.format} format, got ${got}`;
    default:
      return undefined;
  }
}

function listOf(items: string[]): string {
  if (items.length <= 1) return items.join("");
  if (items.length === 2) return `${items[0]} or ${items[1]}`;
  return `one of ${items.join(", ")}`;
}

/** An issue with its path from the top of the file. */
interface FlatIssue {
  path: PropertyKey[];
  message: string;
}

/**
 * Replaces union issues by the issues of the branch the value was meant for: a branch
 * whose every issue lies below the value matched its shape, so its issues say more
 * than "expected X or Y".
 *
 * @param issues Issues of a failed parse.
 * @param prefix Path of the enclosing union, for nested calls.
 * @returns The issues with full paths.
 */
export function flattenIssues(
  issues: readonly z.core.$ZodIssue[],
  prefix: PropertyKey[] = [],
): FlatIssue[] {
  const out: FlatIssue[] = [];
  for (const issue of issues) {
    const path = [...prefix, ...issue.path];
    if (issue.code === "invalid_union" && issue.errors.length > 0) {
      const branch = issue.errors.find((errors) =>
        errors.length > 0 && errors.every((e) => e.path.length > 0)
      );
      if (branch !== undefined) {
        out.push(...flattenIssues(branch, path));
        continue;
      }
    }
    out.push({ path, message: issue.message });
  }
  return out;
}

/**
 * The error to throw for a failed parse: the issue that comes first in the file.
 *
 * @param issues Issues of a failed parse (at least one).
 * @param source The parsed file, for lines.
 * @returns The error.
 */
export function firstIssueError(
  issues: readonly z.core.$ZodIssue[],
  source: SourceDocument,
): ConfigError {
  let best: { issue: FlatIssue; line: number } | undefined;
  for (const issue of flattenIssues(issues)) {
    const line = source.line(issue.path);
    if (best === undefined || line < best.line) best = { issue, line };
  }
  // flattenIssues never returns fewer issues than it is given, and zod gives at least one.
  const { issue } = best!;
  return source.error(issue.path, issue.message);
}
