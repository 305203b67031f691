/**
 * Constants of the proxy-wasm ABI (0.1.0, 0.2.0, 0.2.1) and the checks made on a module
 * before it is instantiated.
 *
 * @module
 */

/** The ABI versions this host speaks, detected from the `proxy_abi_version_*` export. */
export type AbiVersion = "0.1.0" | "0.2.0" | "0.2.1";

/** `WasmResult` codes returned by host functions. */
export const Result = {
  Ok: 0,
  NotFound: 1,
  BadArgument: 2,
  SerializationFailure: 3,
  InvalidMemoryAccess: 6,
  Empty: 7,
  CasMismatch: 8,
  InternalFailure: 10,
  Unimplemented: 12,
} as const;

/** Header map types. */
export const MapType = {
  RequestHeaders: 0,
  RequestTrailers: 1,
  ResponseHeaders: 2,
  ResponseTrailers: 3,
  GrpcInitialMetadata: 4,
  GrpcTrailingMetadata: 5,
  HttpCallResponseHeaders: 6,
  HttpCallResponseTrailers: 7,
} as const;

/** Buffer types. */
export const BufferType = {
  RequestBody: 0,
  ResponseBody: 1,
  DownstreamData: 2,
  UpstreamData: 3,
  HttpCallResponseBody: 4,
  GrpcReceiveBuffer: 5,
  VmConfiguration: 6,
  PluginConfiguration: 7,
  CallData: 8,
} as const;

/** Stream types of `proxy_continue_stream` / `proxy_close_stream`. */
export const StreamType = { Request: 0, Response: 1, Downstream: 2, Upstream: 3 } as const;

/** Log levels, trace to critical. */
export const LOG_LEVELS = ["trace", "debug", "info", "warn", "error", "critical"] as const;

/**
 * The header actions a callback returns: 0 goes on, 2 (`ContinueAndEndStream`) goes on,
 * the others pause.
 */
export function isPause(action: number): boolean {
  return action !== 0 && action !== 2;
}

/**
 * The data actions a body callback returns: only 0 goes on; 2 is `StopIterationAndWatermark`
 * there, a pause like 1 (`StopIterationAndBuffer`) and 3 (`StopIterationNoBuffer`).
 */
export function isDataPause(action: number): boolean {
  return action !== 0;
}

/** The module's ABI version, or undefined when it exports none this host speaks. */
export function abiVersionOf(exports: readonly string[]): AbiVersion | undefined {
  if (exports.includes("proxy_abi_version_0_2_1")) return "0.2.1";
  if (exports.includes("proxy_abi_version_0_2_0")) return "0.2.0";
  if (exports.includes("proxy_abi_version_0_1_0")) return "0.1.0";
  return undefined;
}

/**
 * What a module lacks of the exports every proxy-wasm host needs: memory, an allocator
 * (`proxy_on_memory_allocate` or `malloc`), an ABI version marker and
 * `proxy_on_context_create`. Empty when the module has all of them.
 */
export function missingExports(module: WebAssembly.Module): string[] {
  const names = WebAssembly.Module.exports(module).map((e) => e.name);
  const missing: string[] = [];
  if (!names.includes("memory")) missing.push("memory");
  if (!names.includes("proxy_on_memory_allocate") && !names.includes("malloc")) {
    missing.push("proxy_on_memory_allocate (or malloc)");
  }
  if (abiVersionOf(names) === undefined) {
    missing.push("proxy_abi_version_0_2_1 (or _0_2_0, _0_1_0)");
  }
  if (!names.includes("proxy_on_context_create")) missing.push("proxy_on_context_create");
  return missing;
}
