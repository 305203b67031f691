/**
 * The example upstream: answers every request with a short text naming what it got.
 *
 * ```sh
 * deno run --allow-net=127.0.0.1:8080 examples/simple_streamfilter/upstream.ts [port]
 * ```
 *
 * @module
 */

const port = Number(Deno.args[0] ?? 8080);

Deno.serve({ hostname: "127.0.0.1", port, onListen: () => {} }, (request) => {
  const url = new URL(request.url);
  const user = request.headers.get("user") ?? "-";
  return new Response(
    `Hello from the upstream on ${port}: ${request.method} ${url.pathname} (User: ${user})\n`,
    { headers: { "content-type": "text/plain" } },
  );
});
console.log(`example upstream listening on http://127.0.0.1:${port}/`);
