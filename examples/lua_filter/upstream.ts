/**
 * The Lua example's upstream: answers with what it got, including the headers the Lua
 * filter added.
 *
 * ```sh
 * ./node_modules/.bin/deno run --allow-net=127.0.0.1:8080 examples/lua_filter/upstream.ts
 * ```
 *
 * @module
 */

Deno.serve({ hostname: "127.0.0.1", port: 8080, onListen: () => {} }, (request) => {
  const url = new URL(request.url);
  const greeting = request.headers.get("x-greeting") ?? "-";
  const size = request.headers.get("request_body_size");
  return new Response(
    `upstream got ${request.method} ${url.pathname}, x-greeting: ${greeting}${
      size === null ? "" : `, body size: ${size}`
    }\n`,
    { headers: { "content-type": "text/plain" } },
  );
});
console.log("example upstream listening on http://127.0.0.1:8080/");
