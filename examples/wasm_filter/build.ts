/**
 * Builds `assembly/index.ts` into `build/filter.wasm` with AssemblyScript and
 * `@gcoredev/proxy-wasm-sdk-as` (ABI 0.2.1), both installed by `npm ci`:
 *
 * ```sh
 * ./node_modules/.bin/deno run --allow-read --allow-write --allow-env examples/wasm_filter/build.ts
 * ```
 *
 * `buildAssemblyScript` builds any guest written with that SDK; the tests use it too.
 *
 * @module
 */

import asc from "assemblyscript/asc";

const ROOT = new URL("../../", import.meta.url);
// What `@assemblyscript/wasi-shim/asconfig.json` sets (the SDK logs through WASI
// `fd_write`), with the SDK's own abort, which logs through the host.
const WASI_SHIM = "node_modules/@assemblyscript/wasi-shim/assembly";
const WASI_USES = [
  "ASC_WASI=1",
  "abort=abort_proc_exit",
  "trace=wasi_trace",
  "seed=wasi_seed",
  "console=wasi_console",
  "crypto=wasi_crypto",
  "performance=wasi_performance",
  "process=wasi_process",
  "Date=wasi_Date",
];

async function newer(source: URL, output: URL): Promise<boolean> {
  try {
    const [s, o] = await Promise.all([Deno.stat(source), Deno.stat(output)]);
    return (s.mtime?.getTime() ?? 0) > (o.mtime?.getTime() ?? 0);
  } catch {
    return true;
  }
}

/**
 * Compiles an AssemblyScript proxy-wasm guest written with `@gcoredev/proxy-wasm-sdk-as`,
 * unless the output is newer than the source.
 *
 * @param source The guest's entry file, inside this repository.
 * @param output Where the `.wasm` goes.
 * @returns The output path.
 * @throws {Error} with the compiler's messages when the guest does not compile.
 */
export async function buildAssemblyScript(source: URL, output: URL): Promise<string> {
  if (!await newer(source, output)) return output.pathname;
  await Deno.mkdir(new URL("./", output), { recursive: true });
  // Written aside and renamed: test files that build the same guest may run at once.
  const partial = `${output.pathname}.${Deno.pid}.partial`;
  const { error, stderr } = await asc.main([
    "--baseDir",
    ROOT.pathname,
    source.pathname.slice(ROOT.pathname.length),
    "--outFile",
    partial,
    "--optimize",
    "--runtime",
    "incremental",
    "--lib",
    WASI_SHIM,
    "--use",
    WASI_USES.join(","),
    "--exportStart",
    "_initialize",
  ]);
  if (error) throw new Error(`Cannot build ${source.pathname}: ${error.message}\n${stderr}`);
  await Deno.rename(partial, output);
  return output.pathname;
}

if (import.meta.main) {
  const output = await buildAssemblyScript(
    new URL("assembly/index.ts", import.meta.url),
    new URL("build/filter.wasm", import.meta.url),
  );
  console.log(`built ${output.slice(Deno.cwd().length + 1)}`);
}
