/**
 * One Lua 5.4 state in its own wasmoon WebAssembly instance, driven through Lua's C API
 * directly (not wasmoon's JS-object bridge, whose conversions cost microseconds a call).
 *
 * - A stream's call runs on a pooled Lua thread (Envoy runs a coroutine per stream); what
 *   must wait (a body, an HTTP call) yields to the host, which resumes the thread later.
 * - An instruction budget per call: a count hook every {@linkcode HOOK_EVERY}
 *   instructions, shared by every coroutine the script makes, errors once the budget is
 *   spent, then on every instruction, so `pcall` cannot swallow it.
 * - A memory ceiling for the state, enforced while Lua runs (wasmoon's allocator hook);
 *   host pushes between runs are not limited, so they never hit Lua's panic path.
 *
 * @module
 */

import { LuaEngine, LuaFactory, type LuaWasm } from "wasmoon";
import { PRELUDE } from "./prelude.ts";

const REGISTRY = -1001000;
const LUA_OK = 0;
const LUA_YIELD = 1;
const MASK_COUNT = 8;
/** Instructions between two calls of the budget hook. */
export const HOOK_EVERY = 1000;

/** What a yield asks the host for (the first value a script's coroutine yields). */
export const Yield = { responded: 1, body: 2, httpCall: 3 } as const;

/** A Lua error raised by a script (its message carries Lua's `name:line:`). */
export class LuaScriptError extends Error {
  /** Makes the error. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "LuaScriptError";
  }
}

// deno-lint-ignore no-explicit-any
type Module = any;

/** Handles one host call from Lua: reads its arguments from `T`, pushes results, returns how many. */
export type HostDispatch = (vm: LuaVm, T: number, op: number) => number;

/** Handles a yield: returns the values to resume with, via `push` calls in `resume`. */
export type YieldHandler = (
  vm: LuaVm,
  T: number,
  op: number,
  base: number,
  context: unknown,
) => Promise<(T: number) => number> | undefined;

/** Options of {@linkcode LuaVm.create}. */
export interface LuaVmOptions {
  /** Instructions one call may run. */
  instructionBudget: number;
  /** Bytes the Lua state may hold while a script runs. */
  memoryLimit: number;
  /** Host calls (`host(op, …)` in the prelude). */
  dispatch: HostDispatch;
}

/** What a finished call tells the filter. */
export type CallOutcome = "continue" | "stop";

const latin1Decoder = { decode: latin1 };
const utf8 = new TextDecoder();
const utf8Encoder = new TextEncoder();

function latin1(bytes: Uint8Array): string {
  if (bytes.length < 4096) return String.fromCharCode.apply(null, bytes as unknown as number[]);
  let out = "";
  for (let i = 0; i < bytes.length; i += 4096) {
    out += String.fromCharCode.apply(null, bytes.subarray(i, i + 4096) as unknown as number[]);
  }
  return out;
}

/** A Lua state, its prelude and its pool of threads. */
export class LuaVm {
  readonly #engine: LuaEngine;
  readonly #m: Module;
  readonly #L: number;
  readonly #budget: number;
  readonly #memoryLimit: number;
  readonly #dispatch: HostDispatch;
  #scratch = 0;
  #scratchSize = 0;
  readonly #lenPtr: number;
  readonly #nresPtr: number;
  readonly #hook: number;
  readonly #host: number;
  readonly #panic: number;
  #used = 0;
  #exhausted = false;
  #threads: number[] = [];
  #compileRef = 0n;
  #collectRef = 0n;
  /** What the running call's host calls act on (set while Lua runs). */
  context: unknown;
  /** Registry refs of the request and response handles. */
  readonly handles: [bigint, bigint] = [0n, 0n];
  #closed = false;
  #broken: string | undefined;

  private constructor(engine: LuaEngine, lua: LuaWasm, options: LuaVmOptions) {
    this.#engine = engine;
    this.#m = lua.module;
    this.#L = engine.global.address;
    this.#budget = options.instructionBudget;
    this.#memoryLimit = options.memoryLimit;
    this.#dispatch = options.dispatch;
    const m = this.#m;
    this.#lenPtr = m._malloc(8);
    this.#nresPtr = m._malloc(8);
    this.#hook = m.addFunction((T: number) => this.#onHook(T), "vii");
    this.#host = m.addFunction((T: number) => this.#onHost(T), "ii");
    this.#panic = m.addFunction((T: number) => {
      this.#broken = `Lua panic: ${this.toUtf8(T, -1) ?? "unknown error"}`;
      throw new LuaScriptError(this.#broken);
    }, "ii");
  }

  /**
   * Makes a state with base, string, table, math, utf8 and coroutine, runs the prelude
   * and sandboxes the globals.
   */
  static async create(options: LuaVmOptions): Promise<LuaVm> {
    const path = wasmoonModulePath();
    if (path !== undefined) {
      if (Deno.permissions.querySync({ name: "read", path }).state !== "granted") {
        throw new LuaScriptError(
          `Lua runs on wasmoon, whose WebAssembly module the proxy must read: add --allow-read=${path}`,
        );
      }
    }
    const factory = new LuaFactory();
    const lua = await factory.getLuaModule();
    const engine = new LuaEngine(lua, {
      openStandardLibs: false,
      injectObjects: false,
      enableProxy: false,
      traceAllocations: true,
    });
    const vm = new LuaVm(engine, lua, options);
    vm.#init();
    return vm;
  }

  #init(): void {
    const m = this.#m, L = this.#L;
    m._lua_atpanic(L, this.#panic);
    m._luaopen_base(L);
    m._lua_settop(L, 0);
    const libs: [string, (L: number) => number][] = [
      ["string", m._luaopen_string],
      ["table", m._luaopen_table],
      ["math", m._luaopen_math],
      ["utf8", m._luaopen_utf8],
      ["coroutine", m._luaopen_coroutine],
    ];
    for (const [name, open] of libs) {
      open(L);
      m._lua_setglobal(L, this.#cstring(name));
    }
    m._lua_sethook(L, this.#hook, MASK_COUNT, HOOK_EVERY);
    this.#load(PRELUDE, "=lua prelude");
    m._lua_pushcclosure(L, this.#host, 0);
    this.#protectedCall(1, 4);
    this.#collectRef = this.#ref(L);
    this.handles[1] = this.#ref(L);
    this.handles[0] = this.#ref(L);
    this.#compileRef = this.#ref(L);
  }

  /** True after {@linkcode close}, or after Lua panicked. */
  get usable(): boolean {
    return !this.#closed && this.#broken === undefined;
  }

  /** Bytes the Lua state holds now. */
  get memoryUsed(): number {
    return this.#engine.global.getMemoryUsed();
  }

  /**
   * Compiles a script in a fresh sandboxed environment and runs its top level (under
   * the budget). Returns registry refs of `envoy_on_request` / `envoy_on_response`
   * (0n when the script does not define one).
   *
   * @throws {LuaScriptError} with Lua's message, e.g. `inline_code:3: '=' expected near 'x'`.
   */
  compile(code: string, name: string): { onRequest: bigint; onResponse: bigint } {
    const m = this.#m, L = this.#L;
    this.#check();
    m._lua_rawgeti(L, REGISTRY, this.#compileRef);
    this.pushUtf8(L, code);
    this.pushUtf8(L, name);
    this.#protectedCall(2, 2);
    const onResponse = m._lua_type(L, -1) === 6 ? this.#ref(L) : (m._lua_settop(L, -2), 0n);
    const onRequest = m._lua_type(L, -1) === 6 ? this.#ref(L) : (m._lua_settop(L, -2), 0n);
    return { onRequest, onResponse };
  }

  /**
   * Calls `fn(handle)` on a pooled thread. Finishes synchronously unless the script
   * waits for something; `onYield` serves what it waits for.
   *
   * @throws {LuaScriptError} when the script errors or runs out of budget or memory.
   */
  call(
    fn: bigint,
    handle: bigint,
    context: unknown,
    onYield: YieldHandler,
  ): CallOutcome | Promise<CallOutcome> {
    this.#check();
    const m = this.#m;
    const T = this.#threads.pop() ?? this.#newThread();
    m._lua_rawgeti(T, REGISTRY, fn);
    m._lua_rawgeti(T, REGISTRY, handle);
    return this.#resume(T, 1, context, onYield);
  }

  #resume(
    T: number,
    nargs: number,
    context: unknown,
    onYield: YieldHandler,
  ): CallOutcome | Promise<CallOutcome> {
    const m = this.#m;
    this.#used = 0;
    this.context = context;
    const stats = this.#engine.global;
    stats.setMemoryMax(this.#memoryLimit);
    let status: number;
    try {
      status = m._lua_resume(T, this.#L, nargs, this.#nresPtr);
    } catch (error) {
      // Only a panic or a host bug gets here: the state cannot be trusted any more.
      this.#broken ??= `Lua state failed: ${error}`;
      throw new LuaScriptError(this.#broken, { cause: error });
    } finally {
      stats.setMemoryMax(undefined);
      this.context = undefined;
    }
    if (status === LUA_OK) {
      m._lua_settop(T, 0);
      this.#threads.push(T);
      return "continue";
    }
    if (status === LUA_YIELD) {
      const n = m.HEAP32[this.#nresPtr >> 2];
      const base = m._lua_gettop(T) - n + 1;
      const op = n > 0 ? m._lua_tonumberx(T, base, 0) : 0;
      if (op === Yield.responded) {
        this.#release(T);
        return "stop";
      }
      const waiting = onYield(this, T, op, base, context);
      if (waiting === undefined) {
        this.#release(T);
        throw new LuaScriptError(`coroutine.yield() outside a coroutine of the script`);
      }
      return waiting.then(
        (push) => {
          m._lua_settop(T, base - 1);
          return this.#resume(T, push(T), context, onYield);
        },
        (error) => {
          this.#release(T);
          throw error;
        },
      );
    }
    const message = this.toUtf8(T, -1) ?? `Lua error ${status}`;
    this.#release(T);
    throw new LuaScriptError(message);
  }

  /** Resets a thread that errored or was abandoned and pools it again. */
  #release(T: number): void {
    const m = this.#m;
    m._lua_resetthread(T);
    m._lua_settop(T, 0);
    if (this.#exhausted) {
      this.#exhausted = false;
      m._lua_sethook(T, this.#hook, MASK_COUNT, HOOK_EVERY);
    }
    this.#threads.push(T);
    if (this.memoryUsed > this.#memoryLimit / 2) this.collect();
  }

  /** Runs a full garbage collection. */
  collect(): void {
    const m = this.#m, L = this.#L;
    m._lua_rawgeti(L, REGISTRY, this.#collectRef);
    if (m._lua_pcallk(L, 0, 0, 0, 0, 0) !== LUA_OK) m._lua_settop(L, 0);
  }

  #onHook(T: number): void {
    this.#used += HOOK_EVERY;
    if (this.#used <= this.#budget) return;
    if (!this.#exhausted) {
      this.#exhausted = true;
      // From now on every instruction of this thread errors: pcall cannot loop past it.
      this.#m._lua_sethook(T, this.#hook, MASK_COUNT, 1);
    }
    this.pushUtf8(T, `instruction budget of ${this.#budget} exceeded`);
    this.#m._lua_error(T);
  }

  #onHost(T: number): number {
    try {
      return this.#dispatch(this, T, this.#m._lua_tonumberx(T, 1, 0));
    } catch (error) {
      // Lua's own errors (a longjmp is a thrown number) pass through untouched.
      if (typeof error === "number") throw error;
      this.pushUtf8(T, error instanceof Error ? error.message : String(error));
      return this.#m._lua_error(T);
    }
  }

  #newThread(): number {
    const T = this.#m._lua_newthread(this.#L);
    this.#ref(this.#L);
    return T;
  }

  #check(): void {
    if (this.#closed) throw new LuaScriptError("The Lua state is closed");
    if (this.#broken !== undefined) throw new LuaScriptError(this.#broken);
  }

  #load(code: string, chunkName: string): void {
    const m = this.#m, L = this.#L;
    const bytes = utf8Encoder.encode(code);
    const ptr = this.#reserve(bytes.length);
    m.HEAPU8.set(bytes, ptr);
    const name = this.#cstring(chunkName);
    const status = m._luaL_loadbufferx(L, ptr, bytes.length, name, this.#cstring("t"));
    m._free(name);
    if (status !== LUA_OK) {
      const message = this.toUtf8(L, -1);
      m._lua_settop(L, 0);
      throw new LuaScriptError(message ?? "cannot load chunk");
    }
  }

  #protectedCall(nargs: number, nresults: number): void {
    const m = this.#m, L = this.#L;
    this.#used = 0;
    const stats = this.#engine.global;
    stats.setMemoryMax(this.#memoryLimit);
    let status: number;
    try {
      status = m._lua_pcallk(L, nargs, nresults, 0, 0, 0);
    } finally {
      stats.setMemoryMax(undefined);
    }
    if (this.#exhausted) {
      this.#exhausted = false;
      m._lua_sethook(L, this.#hook, MASK_COUNT, HOOK_EVERY);
    }
    if (status !== LUA_OK) {
      const message = this.toUtf8(L, -1);
      m._lua_settop(L, 0);
      throw new LuaScriptError(message ?? `Lua error ${status}`);
    }
  }

  #ref(L: number): bigint {
    return BigInt(this.#m._luaL_ref(L, REGISTRY));
  }

  /** Makes a registry ref of the value on top of `T`'s stack (popping it). */
  ref(T: number): bigint {
    return this.#ref(T);
  }

  /** Pushes the value a registry ref names. */
  pushRef(T: number, ref: bigint): void {
    this.#m._lua_rawgeti(T, REGISTRY, ref);
  }

  #cstring(s: string): number {
    return this.#m.stringToNewUTF8(s);
  }

  #reserve(size: number): number {
    if (size > this.#scratchSize) {
      if (this.#scratch !== 0) this.#m._free(this.#scratch);
      this.#scratchSize = Math.max(size, 4096);
      this.#scratch = this.#m._malloc(this.#scratchSize);
    }
    return this.#scratch;
  }

  // --- values between JS and Lua -------------------------------------------------------

  /** Pushes a byte string (a header name or value: one char per byte). */
  pushLatin1(T: number, s: string): void {
    const n = s.length;
    const ptr = this.#reserve(n);
    const heap = this.#m.HEAPU8;
    for (let i = 0; i < n; i++) heap[ptr + i] = s.charCodeAt(i);
    this.#m._lua_pushlstring(T, ptr, n);
  }

  /** Pushes text as UTF-8. */
  pushUtf8(T: number, s: string): void {
    this.pushBytes(T, utf8Encoder.encode(s));
  }

  /** Pushes bytes as a Lua string. */
  pushBytes(T: number, bytes: Uint8Array): void {
    const ptr = this.#reserve(bytes.length);
    this.#m.HEAPU8.set(bytes, ptr);
    this.#m._lua_pushlstring(T, ptr, bytes.length);
  }

  /** Pushes an integer (as a Lua integer, so `tostring` shows no `.0`). */
  pushInteger(T: number, n: number): void {
    this.#m._lua_pushinteger(T, BigInt(Math.trunc(n)));
  }

  /** Pushes nil. */
  pushNil(T: number): void {
    this.#m._lua_pushnil(T);
  }

  /** The bytes of the string at `idx`; undefined when it is not a string or number. */
  toBytes(T: number, idx: number): Uint8Array | undefined {
    const m = this.#m;
    const ptr = m._lua_tolstring(T, idx, this.#lenPtr);
    if (ptr === 0) return undefined;
    return m.HEAPU8.slice(ptr, ptr + m.HEAPU32[this.#lenPtr >> 2]);
  }

  /** The string at `idx` as a byte string (one char per byte). */
  toLatin1(T: number, idx: number): string | undefined {
    const m = this.#m;
    const ptr = m._lua_tolstring(T, idx, this.#lenPtr);
    if (ptr === 0) return undefined;
    return latin1Decoder.decode(m.HEAPU8.subarray(ptr, ptr + m.HEAPU32[this.#lenPtr >> 2]));
  }

  /** The string at `idx` decoded as UTF-8. */
  toUtf8(T: number, idx: number): string | undefined {
    const m = this.#m;
    const ptr = m._lua_tolstring(T, idx, this.#lenPtr);
    if (ptr === 0) return undefined;
    return utf8.decode(m.HEAPU8.subarray(ptr, ptr + m.HEAPU32[this.#lenPtr >> 2]));
  }

  /** The number at `idx` (0 when it is not one). */
  toNumber(T: number, idx: number): number {
    return this.#m._lua_tonumberx(T, idx, 0);
  }

  /** Lua's type code at `idx` (0 nil, 1 boolean, 3 number, 4 string, 5 table). */
  typeOf(T: number, idx: number): number {
    return this.#m._lua_type(T, idx);
  }

  /** Converts the Lua value at `idx` to JSON-like JS (tables become arrays or objects). */
  toJs(T: number, idx: number, depth = 0): unknown {
    const m = this.#m;
    switch (m._lua_type(T, idx)) {
      case 1:
        return m._lua_toboolean(T, idx) !== 0;
      case 3:
        return m._lua_tonumberx(T, idx, 0);
      case 4:
        return this.toUtf8(T, idx);
      case 5: {
        if (depth > 16) throw new Error("table nested more than 16 deep");
        const abs = m._lua_absindex(T, idx);
        const entries: [unknown, unknown][] = [];
        m._lua_pushnil(T);
        while (m._lua_next(T, abs) !== 0) {
          const key = m._lua_type(T, -2) === 3 ? m._lua_tonumberx(T, -2, 0) : this.toUtf8(T, -2);
          entries.push([key, this.toJs(T, -1, depth + 1)]);
          m._lua_settop(T, -2);
        }
        const isArray = entries.length > 0 &&
          entries.every(([k]) => typeof k === "number" && Number.isInteger(k) && k >= 1) &&
          entries.length === Math.max(...entries.map(([k]) => k as number));
        if (isArray) {
          const out: unknown[] = [];
          for (const [k, v] of entries) out[(k as number) - 1] = v;
          return out;
        }
        const out: Record<string, unknown> = {};
        for (const [k, v] of entries) out[String(k)] = v;
        return out;
      }
      default:
        return undefined;
    }
  }

  /** Pushes JSON-like JS as Lua (arrays and objects become tables; others nil). */
  pushJs(T: number, value: unknown, depth = 0): void {
    const m = this.#m;
    if (typeof value === "string") this.pushUtf8(T, value);
    else if (typeof value === "number") {
      if (Number.isSafeInteger(value)) this.pushInteger(T, value);
      else m._lua_pushnumber(T, value);
    } else if (typeof value === "boolean") m._lua_pushboolean(T, value ? 1 : 0);
    else if (value !== null && typeof value === "object" && depth <= 16) {
      const entries = value instanceof Map
        ? [...value.entries()]
        : Array.isArray(value)
        ? value.map((v, i) => [i + 1, v] as const)
        : Object.entries(value);
      m._lua_createtable(T, 0, entries.length);
      for (const [k, v] of entries) {
        if (typeof k === "number") this.pushInteger(T, k);
        else this.pushUtf8(T, String(k));
        this.pushJs(T, v, depth + 1);
        m._lua_settable(T, -3);
      }
    } else m._lua_pushnil(T);
  }

  /** Frees the state and its wasm instance's functions. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.#engine.global.close();
    } finally {
      this.#m.removeFunction(this.#hook);
      this.#m.removeFunction(this.#host);
      this.#m.removeFunction(this.#panic);
    }
  }
}

/** The file of wasmoon's WebAssembly module, which the proxy reads; undefined when remote. */
export function wasmoonModulePath(): string | undefined {
  const wasm = new URL("./glue.wasm", import.meta.resolve("wasmoon"));
  return wasm.protocol === "file:" ? decodeURIComponent(wasm.pathname) : undefined;
}
