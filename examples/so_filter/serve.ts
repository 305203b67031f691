/**
 * A tiny static server for the example's module: serves the files of this folder at
 * `http://127.0.0.1:8801/<name>`, with a TypeScript content type for `.ts`.
 *
 * ```sh
 * deno run --allow-net=127.0.0.1:8801 --allow-read=examples/so_filter examples/so_filter/serve.ts [port]
 * ```
 *
 * @module
 */

const port = Number(Deno.args[0] ?? 8801);
const folder = new URL("./", import.meta.url);

Deno.serve({ hostname: "127.0.0.1", port, onListen: () => {} }, async (request) => {
  const name = new URL(request.url).pathname.slice(1);
  // Only plain file names of this folder: no subfolders, no way up.
  if (!/^[\w.-]+$/.test(name) || name.startsWith(".")) {
    return new Response("not found\n", { status: 404 });
  }
  try {
    const body = await Deno.readFile(new URL(name, folder));
    const type = name.endsWith(".ts") ? "application/typescript" : "text/plain";
    return new Response(body, { headers: { "content-type": `${type}; charset=utf-8` } });
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return new Response("not found\n", { status: 404 });
    throw error;
  }
});
console.log(`module server listening on http://127.0.0.1:${port}/`);
