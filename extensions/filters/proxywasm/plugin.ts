/**
 * A plugin: one compiled module with one configuration, and its pool of started VMs.
 * The module is read, checked against its pin and compiled once per config load.
 *
 * @module
 */

import { createHash } from "node:crypto";
import type { FilterLogger, FilterMetrics } from "../../../mod.ts";
import { missingExports } from "./abi.ts";
import type { ProxyWasmConfig, VmSource } from "./config.ts";
import { WasmVm } from "./vm.ts";

/** Reads a module's bytes from a path or URL. */
async function readModule(location: string): Promise<Uint8Array<ArrayBuffer>> {
  if (/^https?:/.test(location)) {
    const response = await fetch(location);
    if (!response.ok) throw new Error(`GET ${location} answered ${response.status}`);
    return new Uint8Array(await response.arrayBuffer());
  }
  return await Deno.readFile(location.startsWith("file:") ? new URL(location) : location);
}

/**
 * Reads, pins and compiles a module.
 *
 * @throws {Error} when the bytes do not match `md5`/`sha256`, do not compile, or lack
 * the exports a proxy-wasm host needs (all of them are listed).
 */
export async function compileModule(source: VmSource): Promise<WebAssembly.Module> {
  const bytes = await readModule(source.location);
  for (const algorithm of ["md5", "sha256"] as const) {
    const pin = source[algorithm];
    if (pin === undefined) continue;
    const actual = createHash(algorithm).update(bytes).digest("hex");
    if (actual !== pin) {
      throw new Error(
        `module ${source.location} has ${algorithm} ${actual}, but vm_config.${algorithm} pins ${pin}`,
      );
    }
  }
  const module = await WebAssembly.compile(bytes);
  const missing = missingExports(module);
  if (missing.length > 0) {
    throw new Error(
      `module ${source.location} is not a proxy-wasm module: it lacks the export${
        missing.length === 1 ? "" : "s"
      } ${missing.join(", ")}`,
    );
  }
  return module;
}

/** A module with a configuration and its VMs, handed out round robin. */
export class Plugin {
  #module: WebAssembly.Module;
  #name: string;
  #logger: FilterLogger;
  #metrics: FilterMetrics | undefined;
  #vms: WasmVm[];
  #next = 0;
  #closed = false;

  /**
   * Starts `config.instanceNum` VMs.
   *
   * @throws {Error} when a VM refuses to start or to configure.
   */
  constructor(
    module: WebAssembly.Module,
    readonly config: ProxyWasmConfig,
    options: { name: string; logger: FilterLogger; metrics?: FilterMetrics },
  ) {
    this.#module = module;
    this.#name = options.name;
    this.#logger = options.logger;
    this.#metrics = options.metrics;
    this.#vms = Array.from({ length: config.instanceNum }, () => this.#start());
  }

  /** The compiled module (a per-route configuration reuses it). */
  get module(): WebAssembly.Module {
    return this.#module;
  }

  #start(): WasmVm {
    return new WasmVm(this.#module, {
      name: this.#name,
      config: this.config,
      logger: this.#logger,
      metrics: this.#metrics,
    });
  }

  /** A working VM; a broken one is replaced by a fresh instance here. */
  acquire(): WasmVm {
    if (this.#closed) throw new Error(`proxywasm filter "${this.#name}" was shut down`);
    const i = this.#next;
    this.#next = (i + 1) % this.#vms.length;
    let vm = this.#vms[i];
    if (vm.broken) {
      this.#logger.warn("replacing a wasm instance after a trap");
      vm.close();
      vm = this.#vms[i] = this.#start();
    }
    return vm;
  }

  /** Stops every VM. */
  close(): void {
    this.#closed = true;
    for (const vm of this.#vms) vm.close();
  }
}
