/**
 * The example's upstream: answers every request with the `x-user` header it got, which
 * only the plugin's answer sets.
 *
 * ```sh
 * ./node_modules/.bin/deno run --allow-net=127.0.0.1:8060 examples/module_with_plugin/upstream.ts
 * ```
 *
 * @module
 */

const port = Number(Deno.args[0] ?? 8060);

Deno.serve({ hostname: "127.0.0.1", port, onListen: () => {} }, (request) => {
  const url = new URL(request.url);
  const user = request.headers.get("x-user") ?? "-";
  return new Response(
    `Hello ${user}, from the upstream on ${port}: ${request.method} ${url.pathname}\n`,
    { headers: { "content-type": "text/plain" } },
  );
});
console.log(`example upstream listening on http://127.0.0.1:${port}/`);
