/**
 * The filter conformance suite: one list of behaviours every way of running a filter
 * must show. Each runner (built in, module by URL, Worker sandbox, plugin, …) calls
 * {@linkcode defineConformanceSuite} with the filter config that runs
 * `conformance_filter.ts` its way.
 *
 * @module
 */

import assert from "node:assert/strict";
import {
  createInProcessProxy,
  type InProcessFilter,
  type InProcessOptions,
} from "../../src/proxy/in_process.ts";

/** What the in-process upstream saw of a request. */
interface Seen {
  method: string;
  headers: Record<string, string>;
  body: string;
}

/** The upstream of the suite: echoes what it received as JSON. */
async function echo(request: Request): Promise<Response> {
  const seen: Seen = {
    method: request.method,
    headers: Object.fromEntries(request.headers),
    body: await request.text(),
  };
  return Response.json(seen);
}

/** Extra options for a runner, e.g. its module resolver. */
export type RunnerOptions = Omit<InProcessOptions, "upstream" | "streamFilters" | "routes">;

/**
 * Registers the suite's tests under `label`.
 *
 * @param label The way of running, e.g. "built in".
 * @param filter Makes the filter entry, given its failure mode and config.
 * @param skip Cases this way of running cannot express, by name, with the reason; each
 * is registered as ignored, its name carrying the reason.
 */
export function defineConformanceSuite(
  label: string,
  filter: (failureMode: "open" | "closed", config: unknown) => InProcessFilter,
  runner: RunnerOptions = {},
  skip: Readonly<Record<string, string>> = {},
): void {
  function test(name: string, fn: () => Promise<void>): void {
    const reason = skip[name];
    Deno.test({
      name: `conformance (${label}): ${name}${reason === undefined ? "" : ` (skipped: ${reason})`}`,
      ignore: reason !== undefined,
      fn,
    });
  }

  async function withProxy(
    options: { failureMode?: "open" | "closed"; perRouteTag?: string },
    body: (request: (path: string, init?: RequestInit) => Promise<Response>) => Promise<void>,
  ) {
    const proxy = await createInProcessProxy({
      ...runner,
      streamFilters: [filter(options.failureMode ?? "closed", { tag: "listener" })],
      routes: [
        ...(options.perRouteTag === undefined ? [] : [{
          match: { prefix: "/special", headers: [] },
          perFilterConfig: { conformance: { tag: options.perRouteTag } },
        }]),
        {},
      ],
      upstream: echo,
    });
    try {
      await body((path, init) => proxy.request(path, init));
    } finally {
      await proxy.close();
    }
  }

  test(`a filter adds a request header the upstream sees`, () =>
    withProxy({}, async (request) => {
      const response = await request("/");
      assert.equal(response.status, 200);
      const seen: Seen = await response.json();
      assert.equal(seen.headers["x-conformance"], "listener");
    }));

  test(`respond() denies with the filter's status and body`, () =>
    withProxy({}, async (request) => {
      const response = await request("/", { headers: { "x-deny": "1" } });
      assert.equal(response.status, 403);
      assert.equal(await response.text(), "denied by conformance filter");
    }));

  test(`a filter reads and replaces the request body`, () =>
    withProxy({}, async (request) => {
      const response = await request("/", {
        method: "POST",
        headers: { "x-upper-body": "1" },
        body: "hello body",
      });
      const seen: Seen = await response.json();
      assert.equal(seen.body, "HELLO BODY");
      assert.equal(seen.headers["content-length"], "10");
    }));

  test(`per_filter_config on the route overrides the listener config`, () =>
    withProxy({ perRouteTag: "route" }, async (request) => {
      const special: Seen = await (await request("/special/x")).json();
      assert.equal(special.headers["x-conformance"], "route");
      const plain: Seen = await (await request("/other")).json();
      assert.equal(plain.headers["x-conformance"], "listener");
    }));

  test(`metadata set on the request reaches the sender`, () =>
    withProxy({}, async (request) => {
      const response = await request("/", { headers: { "x-meta": "shared" } });
      await response.body?.cancel();
      assert.equal(response.headers.get("x-meta"), "shared");
    }));

  test(`a throw answers 500 under failure_mode closed`, () =>
    withProxy({ failureMode: "closed" }, async (request) => {
      const response = await request("/", { headers: { "x-throw": "1" } });
      await response.body?.cancel();
      assert.equal(response.status, 500);
    }));

  test(`a throw lets the request through under failure_mode open`, () =>
    withProxy({ failureMode: "open" }, async (request) => {
      const response = await request("/", { headers: { "x-throw": "1" } });
      assert.equal(response.status, 200);
      await response.body?.cancel();
    }));

  test(`onDestroy runs exactly once per stream`, () =>
    withProxy({}, async (request) => {
      for (let i = 0; i < 3; i++) await (await request("/")).text();
      await (await request("/", { headers: { "x-deny": "1" } })).text();
      const response = await request("/");
      await response.text();
      // Four streams ended before the fifth's sender ran; each was destroyed once.
      assert.equal(response.headers.get("x-created"), "5");
      assert.equal(response.headers.get("x-destroyed"), "4");
    }));
}
