/**
 * Finds the keys of a config that its schema does not know: MOSN features Mosaic does
 * not implement (`conn_buffer_limit_bytes`, `tracing`, …) and typos. They are warned
 * about and ignored, so a MOSN config loads as is.
 *
 * @module
 */

import type { z } from "zod";

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

/**
 * Lists the paths of keys in `value` that `schema` does not declare. Free-form parts
 * (a filter's `config`, `per_filter_config` entries) are not looked into.
 *
 * @param schema The schema the value is checked against.
 * @param value The parsed file.
 * @returns Paths of unknown keys, in document order.
 */
export function findUnknownKeys(schema: Schema, value: unknown): PropertyKey[][] {
  const found: PropertyKey[][] = [];
  walk(schema, value, [], found);
  return found;
}

function walk(schema: Schema, value: unknown, path: PropertyKey[], found: PropertyKey[][]): void {
  const base = unwrap(schema);
  const def = defOf(base);
  switch (def.type) {
    case "object": {
      if (!isPlainObject(value) || def.shape === undefined) return;
      for (const [key, child] of Object.entries(value)) {
        const field = def.shape[key];
        if (field === undefined) found.push([...path, key]);
        else walk(field, child, [...path, key], found);
      }
      return;
    }
    case "array":
      if (Array.isArray(value) && def.element) {
        value.forEach((item, i) => walk(def.element!, item, [...path, i], found));
      }
      return;
    case "record":
      if (isPlainObject(value) && def.valueType) {
        for (const [key, child] of Object.entries(value)) {
          walk(def.valueType, child, [...path, key], found);
        }
      }
      return;
    case "union": {
      const branch = pickBranch(def, value);
      if (branch !== undefined) walk(branch, value, path, found);
      return;
    }
    default:
      return;
  }
}
