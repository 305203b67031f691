/**
 * Deep freezing for the loaded config: one immutable object per load, shared by every
 * stream without copies or locks.
 *
 * @module
 */

function refuseChange(): never {
  throw new TypeError("Cannot change a loaded config: it is frozen; load a new one instead");
}

/**
 * Freezes `value` and everything reachable from it. A `Map` cannot be frozen by
 * `Object.freeze`, so its `set`, `delete` and `clear` are replaced on the instance by
 * methods that throw; its entries are frozen too.
 *
 * @param value The value to freeze, in place.
 * @returns The same value.
 *
 * @example
 * ```ts
 * import { deepFreeze } from "./freeze.ts";
 *
 * const config = deepFreeze({ routes: new Map([["a", { timeoutMs: 0 }]]) });
 * Object.isFrozen(config.routes.get("a")); // true
 * ```
 */
export function deepFreeze<T>(value: T): T {
  if (typeof value !== "object" || value === null || Object.isFrozen(value)) return value;
  if (value instanceof Map) {
    for (const method of ["set", "delete", "clear"]) {
      Object.defineProperty(value, method, { value: refuseChange });
    }
    Object.freeze(value);
    for (const [key, entry] of value) {
      deepFreeze(key);
      deepFreeze(entry);
    }
    return value;
  }
  if (value instanceof Set) {
    for (const method of ["add", "delete", "clear"]) {
      Object.defineProperty(value, method, { value: refuseChange });
    }
    Object.freeze(value);
    for (const entry of value) deepFreeze(entry);
    return value;
  }
  // Freeze before descending, so a cycle (possible with YAML aliases) ends the walk.
  Object.freeze(value);
  for (const key of Reflect.ownKeys(value)) {
    deepFreeze((value as Record<PropertyKey, unknown>)[key]);
  }
  return value;
}
