/**
 * The example's reputation service: `GET /check?user=<name>` answers `deny` for
 * `mallory` and `allow` for everyone else.
 *
 * ```sh
 * deno run --allow-net=127.0.0.1:8802 examples/sandboxed_filter/reputation_service.ts [port]
 * ```
 *
 * @module
 */

const port = Number(Deno.args[0] ?? 8802);

Deno.serve({ hostname: "127.0.0.1", port, onListen: () => {} }, (request) => {
  const user = new URL(request.url).searchParams.get("user");
  return new Response(user === "mallory" ? "deny\n" : "allow\n");
});
console.log(`reputation service listening on http://127.0.0.1:${port}/check`);
