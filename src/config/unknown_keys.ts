/**
 * Finds the keys of a config that its schema does not know, and tells apart MOSN
 * features Mosaic does not implement (`conn_buffer_limit_bytes`, `tracing`, …: warned
 * about and ignored, so a MOSN config loads as is) from keys no one defines (typos such
 * as `stream_filter` or `conifg`, which would silently switch a feature off: errors).
 *
 * @module
 */

import type { z } from "zod";
import { isMosnKey, placeOf } from "./mosn_keys.ts";

type Schema = z.core.$ZodType;

interface SchemaDef {
  type: string;
  innerType?: Schema;
  in?: Schema;
  out?: Schema;
  shape?: Record<string, Schema>;
  element?: Schema;
  options?: Schema[];
  discriminator?: string;
  valueType?: Schema;
  getter?: () => Schema;
  values?: unknown[];
}

function defOf(schema: Schema): SchemaDef {
  return schema._zod.def as unknown as SchemaDef;
}

const WRAPPERS = new Set([
  "optional",
  "default",
  "prefault",
  "nullable",
  "nonoptional",
  "readonly",
  "catch",
]);

/** Strips wrappers and pipes down to the schema that decides the value's shape. */
function unwrap(schema: Schema): Schema {
  for (let i = 0; i < 32; i++) {
    const def = defOf(schema);
    if (WRAPPERS.has(def.type) && def.innerType) schema = def.innerType;
    else if (def.type === "pipe" && def.in && def.out) {
      schema = defOf(def.in).type === "transform" ? def.out : def.in;
    } else if (def.type === "lazy" && def.getter) schema = def.getter();
    else break;
  }
  return schema;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Picks the union branch meant for `value`: by discriminator, else by shape. */
function pickBranch(def: SchemaDef, value: unknown): Schema | undefined {
  const options = (def.options ?? []).map(unwrap);
  if (def.discriminator !== undefined && isPlainObject(value)) {
    const wanted = value[def.discriminator];
    return options.find((option) => {
      const field = defOf(option).shape?.[def.discriminator!];
      return field !== undefined && (defOf(unwrap(field)).values ?? []).includes(wanted);
    });
  }
  const kind = Array.isArray(value) ? "array" : isPlainObject(value) ? "object" : "scalar";
  return options.find((option) => {
    const type = defOf(option).type;
    if (kind === "array") return type === "array";
    if (kind === "object") return type === "object" || type === "record";
    return false;
  });
}

/** A key the schema does not declare. */
export interface UnknownKey {
  /** The key's path from the top of the file. */
  path: PropertyKey[];
  /** True when MOSN defines the key there: a feature Mosaic does not implement. */
  mosn: boolean;
  /** The keys Mosaic knows at that place, for a "did you mean" hint. */
  known: string[];
}

/**
 * Lists the keys in `value` that `schema` does not declare, each marked as MOSN's or
 * nobody's (see `mosn_keys.ts`). Free-form parts (a filter's `config`,
 * `per_filter_config` entries) are not looked into.
 *
 * @param schema The schema the value is checked against.
 * @param value The parsed file.
 * @returns The unknown keys, in document order.
 */
export function findUnknownKeys(schema: Schema, value: unknown): UnknownKey[] {
  const found: UnknownKey[] = [];
  walk(schema, value, [], [], found);
  return found;
}

function walk(
  schema: Schema,
  value: unknown,
  path: PropertyKey[],
  place: PropertyKey[],
  found: UnknownKey[],
): void {
  const base = unwrap(schema);
  const def = defOf(base);
  switch (def.type) {
    case "object": {
      if (!isPlainObject(value) || def.shape === undefined) return;
      for (const [key, child] of Object.entries(value)) {
        const field = def.shape[key];
        if (field === undefined) {
          found.push({
            path: [...path, key],
            mosn: isMosnKey(placeOf(place), key),
            known: Object.keys(def.shape),
          });
        } else walk(field, child, [...path, key], [...place, key], found);
      }
      return;
    }
    case "array":
      if (Array.isArray(value) && def.element) {
        value.forEach((item, i) => walk(def.element!, item, [...path, i], place, found));
      }
      return;
    case "record":
      if (isPlainObject(value) && def.valueType) {
        for (const [key, child] of Object.entries(value)) {
          walk(def.valueType, child, [...path, key], [...place, "*"], found);
        }
      }
      return;
    case "union": {
      const branch = pickBranch(def, value);
      if (branch !== undefined) walk(branch, value, path, place, found);
      return;
    }
    default:
      return;
  }
}

/**
 * The known key nearest to a misspelt one, when one is near enough to be meant.
 *
 * @param key The unknown key.
 * @param known The keys that are valid there.
 * @returns The suggestion, or undefined.
 */
export function nearestKey(key: string, known: Iterable<string>): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  const lower = key.toLowerCase();
  for (const candidate of known) {
    const distance = editDistance(lower, candidate.toLowerCase());
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  if (best === undefined) return undefined;
  const limit = Math.max(2, Math.floor(Math.max(key.length, best.length) / 3));
  return bestDistance <= limit ? best : undefined;
}

/** Optimal string alignment distance: edits, with a swap of neighbours as one edit. */
function editDistance(a: string, b: string): number {
  const rows: number[][] = [];
  for (let i = 0; i <= a.length; i++) rows.push([i]);
  for (let j = 1; j <= b.length; j++) rows[0][j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let d = Math.min(rows[i - 1][j] + 1, rows[i][j - 1] + 1, rows[i - 1][j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        d = Math.min(d, rows[i - 2][j - 2] + 1);
      }
      rows[i][j] = d;
    }
  }
  return rows[a.length][b.length];
}
