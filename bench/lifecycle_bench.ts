/**
 * The cost of Mosaic's own request lifecycle, without sockets: `handleStream` from a
 * parsed request to the response to write, against a pool that answers at once with a
 * buffered body (what the HTTP/1.1 pool returns for a small Content-Length response).
 * What is left of a request's time under load is Deno's I/O and the parsers.
 *
 * Run: `./node_modules/.bin/deno bench --allow-all bench/lifecycle_bench.ts`. For a profile,
 * run it as a loop instead: `MOSAIC_LIFECYCLE_LOOP=200000 ./node_modules/.bin/deno run
 * --allow-all --cpu-prof --cpu-prof-dir=/tmp/prof bench/lifecycle_bench.ts`, then
 * `./node_modules/.bin/deno run --allow-read bench/profile/top.ts /tmp/prof/*.cpuprofile`.
 *
 * @module
 */

import { BUILTIN_STREAM_FILTERS } from "../extensions/builtin.ts";
import { isKnownFilterType, registerStreamFilter } from "../src/filter/registry.ts";
import type { DownstreamRequest } from "../src/proxy/downstream.ts";
import { createInProcessProxy } from "../src/proxy/in_process.ts";
import type { ConnectionPool, UpstreamResponse } from "../src/upstream/types.ts";

for (const [name, create] of BUILTIN_STREAM_FILTERS) {
  if (!isKnownFilterType(name)) registerStreamFilter(name, create);
}

const BODY = new TextEncoder().encode("ok\n");
const TRAILERS = Promise.resolve(new Headers());

/** A pool that answers every request with `200 ok`, its body already read. */
const instantPool = (): ConnectionPool => ({
  request(): Promise<UpstreamResponse> {
    const headers = new Headers();
    headers.append("server", "nginx");
    headers.append("content-type", "text/plain");
    headers.append("content-length", "3");
    return Promise.resolve({
      status: 200,
      statusText: "OK",
      headers,
      body: null,
      bufferedBody: BODY,
      trailers: TRAILERS,
    });
  },
  size: 0,
  close() {},
});

const signal = new AbortController().signal;

/** A request as Mosaic's HTTP/1.1 server hands it over (what wrk sends). */
function request(): DownstreamRequest {
  const headers = new Headers();
  headers.append("host", "127.0.0.1:2046");
  headers.append("user", "admin");
  return {
    method: "GET",
    target: "/",
    authority: "127.0.0.1:2046",
    headers,
    body: null,
    signal,
    sanitized: true,
  };
}

const upstream = () => new Response("unused");
const plain = await createInProcessProxy({ upstream, pool: instantPool });
const demo = await createInProcessProxy({
  upstream,
  pool: instantPool,
  streamFilters: [{ type: "demo", config: { User: "admin" } }],
});

Deno.bench("lifecycle, no filter", { group: "lifecycle", baseline: true }, async () => {
  await plain.handle(request());
});

Deno.bench("lifecycle, demo", { group: "lifecycle" }, async () => {
  const response = await demo.handle(request());
  if (response.status !== 200) throw new Error(`demo answered ${response.status}`);
});

Deno.bench("building the request alone", { group: "lifecycle" }, () => {
  request();
});

const loops = Number(Deno.env.get("MOSAIC_LIFECYCLE_LOOP") ?? 0);
if (loops > 0) {
  const start = performance.now();
  for (let i = 0; i < loops; i++) await demo.handle(request());
  console.log(`lifecycle, demo: ${((performance.now() - start) * 1000 / loops).toFixed(2)} µs`);
}

globalThis.addEventListener("unload", () => {
  plain.close();
  demo.close();
});
