import assert from "node:assert/strict";
import type { FilterStatus, ReceivePhase, RequestStream } from "../../../mod.ts";
import { registerStreamFilter } from "../../../mod.ts";
import { runReceivers, StreamFilters } from "../../../src/filter/chain.ts";
import { filterLogger } from "../../../src/log/logger.ts";
import { createInProcessProxy } from "../../../src/proxy/in_process.ts";
import { RequestState } from "../../../src/proxy/request_state.ts";
import { withLogCapture } from "../../helpers/log_capture.ts";

type Step = (s: RequestStream) => FilterStatus | Promise<FilterStatus>;

/** Registers a filter that runs `step` in `phase` and records its calls. */
function stepFilter(name: string, phase: ReceivePhase, step: Step, calls: string[]) {
  registerStreamFilter(name, () => ({
    createFilterChain(chain) {
      chain.addReceiver({
        onReceive(s) {
          calls.push(`${name}:${s.phase}`);
          return step(s);
        },
        onDestroy() {
          calls.push(`${name}:destroy`);
        },
      }, phase);
    },
  }));
}

const upstream = (request: Request) =>
  new Response(`upstream saw ${new URL(request.url).pathname}`, {
    headers: { "x-upstream": "1" },
  });

Deno.test("filters of a phase run in config order and phases run in lifecycle order", async () => {
  const calls: string[] = [];
  stepFilter("order_c", "after_choose_host", () => "continue", calls);
  stepFilter("order_b", "after_route", () => "continue", calls);
  stepFilter("order_a1", "before_route", () => "continue", calls);
  stepFilter("order_a2", "before_route", () => "continue", calls);
  const proxy = await createInProcessProxy({
    streamFilters: ["order_c", "order_b", "order_a1", "order_a2"].map((type) => ({ type })),
    upstream,
  });
  const response = await proxy.request("/");
  assert.equal(await response.text(), "upstream saw /");
  assert.deepEqual(calls.slice(0, 4), [
    "order_a1:before_route",
    "order_a2:before_route",
    "order_b:after_route",
    "order_c:after_choose_host",
  ]);
  assert.equal(calls.filter((c) => c.endsWith(":destroy")).length, 4);
  await proxy.close();
});

Deno.test("stop without respond() is answered 500 and logged with the filter's name", async () => {
  const calls: string[] = [];
  stepFilter("silent_stopper", "before_route", () => "stop", calls);
  await withLogCapture(async (lines) => {
    const proxy = await createInProcessProxy({
      streamFilters: [{ type: "silent_stopper" }],
      upstream,
    });
    const response = await proxy.request("/");
    assert.equal(response.status, 500);
    await response.body?.cancel();
    assert.ok(
      lines.some((l) => l.includes("silent_stopper") && l.includes("without respond()")),
      lines.join("\n"),
    );
    await proxy.close();
  });
});

Deno.test("respond() then continue runs the rest of the phase, skips upstream, runs senders", async () => {
  const calls: string[] = [];
  stepFilter("responder", "before_route", (s) => {
    s.respond(418, { body: "teapot", headers: { "x-local": "1" } });
    return "continue";
  }, calls);
  stepFilter("after_responder", "before_route", () => "continue", calls);
  stepFilter("never_routed", "after_route", () => "continue", calls);
  registerStreamFilter("sender_tagger", () => ({
    createFilterChain(chain) {
      chain.addSender({
        append(s) {
          s.headers.set("x-sender-saw-local", String(s.local));
          return "continue";
        },
      });
    },
  }));
  let upstreamCalls = 0;
  const proxy = await createInProcessProxy({
    streamFilters: ["responder", "after_responder", "never_routed", "sender_tagger"].map((
      type,
    ) => ({ type })),
    upstream: () => {
      upstreamCalls++;
      return new Response("no");
    },
  });
  const response = await proxy.request("/");
  assert.equal(response.status, 418);
  assert.equal(await response.text(), "teapot");
  assert.equal(response.headers.get("x-local"), "1");
  assert.equal(response.headers.get("x-sender-saw-local"), "true");
  assert.equal(upstreamCalls, 0);
  assert.ok(calls.includes("after_responder:before_route"));
  assert.ok(!calls.includes("never_routed:after_route"));
  await proxy.close();
});

Deno.test("rematch_route in after_route matches again and resumes after the asking filter", async () => {
  const calls: string[] = [];
  stepFilter("rewriter", "after_route", (s) => {
    if (s.path === "/old") {
      s.path = "/new";
      return "rematch_route";
    }
    return "continue";
  }, calls);
  stepFilter("route_reporter", "after_route", (s) => {
    s.headers.set("x-route", s.route?.name ?? "none");
    return "continue";
  }, calls);
  const proxy = await createInProcessProxy({
    streamFilters: [{ type: "rewriter" }, { type: "route_reporter" }],
    routes: [
      {
        name: "new-route",
        match: { prefix: "/new", headers: [] },
        directResponse: { status: 200, body: "new route" },
      },
      { name: "catch-all" },
    ],
    upstream,
  });
  const response = await proxy.request("/old");
  assert.equal(await response.text(), "new route");
  assert.deepEqual(calls.filter((c) => !c.endsWith("destroy")), [
    "rewriter:after_route",
    "route_reporter:after_route",
  ]);
  await proxy.close();
});

Deno.test("rechoose_host asks the load balancer again, avoiding the first host", async () => {
  const calls: string[] = [];
  const seen: string[] = [];
  stepFilter("picky", "after_choose_host", (s) => {
    seen.push(s.host!.address);
    return "rechoose_host";
  }, calls);
  stepFilter("host_reporter", "after_choose_host", (s) => {
    seen.push(s.host!.address);
    return "continue";
  }, calls);
  const proxy = await createInProcessProxy({
    streamFilters: [{ type: "picky" }, { type: "host_reporter" }],
    upstream: (request) => new Response(`${new URL(request.url).hostname}:80`),
    upstreamHosts: 2,
  });
  const response = await proxy.request("/");
  const answeredBy = await response.text();
  assert.equal(seen.length, 2);
  assert.notEqual(seen[0], seen[1]);
  assert.equal(answeredBy, seen[1]);
  await proxy.close();
});

Deno.test("a status not allowed in its phase fails the filter", async () => {
  const calls: string[] = [];
  stepFilter("misplaced_rematch", "before_route", () => "rematch_route", calls);
  await withLogCapture(async (lines) => {
    const proxy = await createInProcessProxy({
      streamFilters: [{ type: "misplaced_rematch" }],
      upstream,
    });
    const response = await proxy.request("/");
    assert.equal(response.status, 500);
    await response.body?.cancel();
    assert.ok(lines.some((l) => l.includes("not allowed in before_route")), lines.join("\n"));
    await proxy.close();
  });
});

Deno.test("an async rejection follows the failure mode like a throw", async () => {
  const calls: string[] = [];
  stepFilter("async_thrower", "before_route", () => Promise.reject(new Error("boom")), calls);
  const closed = await createInProcessProxy({
    streamFilters: [{ type: "async_thrower" }],
    upstream,
  });
  const denied = await closed.request("/");
  assert.equal(denied.status, 500);
  await denied.body?.cancel();
  await closed.close();
  const open = await createInProcessProxy({
    streamFilters: [{ type: "async_thrower", failureMode: "open" }],
    upstream,
  });
  const passed = await open.request("/");
  assert.equal(passed.status, 200);
  await passed.body?.cancel();
  await open.close();
});

Deno.test("a sender that stops skips later senders; a sender can rewrite the response", async () => {
  registerStreamFilter("sender_stop", () => ({
    createFilterChain(chain) {
      chain.addSender({
        async append(s) {
          const text = new TextDecoder().decode(await s.body());
          s.setBody(text + " (seen)");
          s.status = 202;
          return "stop" as const;
        },
      });
    },
  }));
  registerStreamFilter("sender_never", () => ({
    createFilterChain(chain) {
      chain.addSender({
        append(s) {
          s.headers.set("x-never", "1");
          return "continue";
        },
      });
    },
  }));
  const proxy = await createInProcessProxy({
    streamFilters: [{ type: "sender_stop" }, { type: "sender_never" }],
    upstream,
  });
  const response = await proxy.request("/x");
  assert.equal(response.status, 202);
  assert.equal(await response.text(), "upstream saw /x (seen)");
  assert.equal(response.headers.get("x-never"), null);
  assert.equal(response.headers.get("content-length"), String("upstream saw /x (seen)".length));
  await proxy.close();
});

Deno.test("a phase of synchronous filters returns its status without a promise", () => {
  const entry = {
    name: "sync",
    config: undefined,
    failureMode: "closed" as const,
    logger: filterLogger("sync"),
    factory: {
      createFilterChain(chain: { addReceiver(f: unknown, p: ReceivePhase): void }) {
        chain.addReceiver({ onReceive: () => "continue" }, "before_route");
      },
    },
  };
  const filters = new StreamFilters([entry, entry, entry]);
  const state = new RequestState(
    "GET",
    "/",
    new Headers(),
    null,
    { hostname: "127.0.0.1", port: 1 },
    new AbortController().signal,
  );
  const status = runReceivers(filters, "before_route", state);
  assert.equal(status, "continue");
});

Deno.test("body({ maxBytes }) rejects a larger body with BodyTooLargeError", async () => {
  registerStreamFilter("limited_reader", () => ({
    createFilterChain(chain) {
      chain.addReceiver({
        async onReceive(s) {
          try {
            await s.body({ maxBytes: 4 });
            return "continue" as const;
          } catch (error) {
            s.respond(413, { body: (error as Error).name });
            return "stop" as const;
          }
        },
      }, "before_route");
    },
  }));
  const proxy = await createInProcessProxy({
    streamFilters: [{ type: "limited_reader" }],
    upstream,
  });
  const small = await proxy.request("/", { method: "POST", body: "abc" });
  assert.equal(small.status, 200);
  await small.body?.cancel();
  const big = await proxy.request("/", { method: "POST", body: "abcdefgh" });
  assert.equal(big.status, 413);
  assert.equal(await big.text(), "BodyTooLargeError");
  await proxy.close();
});

Deno.test("after more than 8 rematches, after_choose_host filters still run (no resume point leaks)", async () => {
  const calls: string[] = [];
  stepFilter("leak_host", "after_choose_host", () => "continue", calls);
  const names: string[] = [];
  for (let i = 0; i < 9; i++) {
    const name = `leak_rematch_${i}`;
    names.push(name);
    stepFilter(name, "after_route", (s) => {
      if (s.metadata.has(name)) return "continue";
      s.metadata.set(name, true);
      return "rematch_route";
    }, calls);
  }
  const proxy = await createInProcessProxy({
    streamFilters: [{ type: "leak_host" }, ...names.map((type) => ({ type }))],
    upstream,
  });
  const response = await proxy.request("/x");
  assert.equal(response.status, 200);
  await response.body?.cancel();
  assert.ok(calls.includes("leak_host:after_choose_host"), calls.join(" "));
  await proxy.close();
});
