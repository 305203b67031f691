/**
 * The filter chain's per-request cost: `deno bench bench/chain_bench.ts`.
 *
 * Each case does what `src/proxy/stream.ts` does for one request's filters: make the
 * {@linkcode RequestState}, create the stream's filter instances, run the three receiver
 * phases, run the senders (when there are any), destroy the instances. The `0 filters`
 * case is the baseline; a filter's own cost is `(time of N filters − baseline) / N`, and
 * the goal is at most 1 µs per in-process filter (see bench/README.md).
 *
 * The `in-process` group sends whole requests through `handleStream` (router, load
 * balancer, a function upstream, no sockets) with and without `demo`.
 *
 * @module
 */

import type {
  CreateStreamFilterFactory,
  FactoryContext,
  ReceivePhase,
  StreamFilterFactory,
} from "../src/filter/api.ts";
import { type FilterEntry, runReceivers, runSenders, StreamFilters } from "../src/filter/chain.ts";
import { isKnownFilterType, registerStreamFilter } from "../src/filter/registry.ts";
import { filterLogger } from "../src/log/logger.ts";
import { createInProcessProxy } from "../src/proxy/in_process.ts";
import { RequestState } from "../src/proxy/request_state.ts";
import { ResponseState } from "../src/proxy/response_state.ts";
import { createStreamFilterFactory as createDemo } from "../extensions/filters/demo/mod.ts";

const PHASES: readonly ReceivePhase[] = [
  "before_route",
  "after_route",
  "after_choose_host",
];

const noPlugins = {
  call: (name: string) => Promise.reject(new Error(`Plugin "${name}" is not declared`)),
};

async function entry(
  name: string,
  create: CreateStreamFilterFactory,
  config: unknown,
): Promise<FilterEntry> {
  const logger = filterLogger(name);
  const context: FactoryContext = {
    name,
    listener: "bench",
    configFile: "<bench>",
    logger,
    plugins: noPlugins,
  };
  const factory = await create(config, context);
  return { name, config, failureMode: "closed", factory, logger };
}

const demoConfig = { User: "admin" };

async function demoEntries(count: number): Promise<FilterEntry[]> {
  const entries: FilterEntry[] = [];
  for (let i = 0; i < count; i++) {
    entries.push(await entry("demo", createDemo, demoConfig));
  }
  return entries;
}

/** A receiver that answers through a promise, as a filter that awaits something does. */
const createAsyncFilter: CreateStreamFilterFactory = () => {
  const filter = {
    onReceive: () => Promise.resolve("continue" as const),
  };
  return {
    createFilterChain(chain) {
      chain.addReceiver(filter, "before_route");
    },
  } satisfies StreamFilterFactory;
};

/** A sender that sets a header: the cost of the response side. */
const createHeaderSender: CreateStreamFilterFactory = () => {
  const filter = {
    append(stream: { headers: Headers }) {
      stream.headers.set("x-bench", "1");
      return "continue" as const;
    },
  };
  return {
    createFilterChain(chain) {
      chain.addSender(filter);
    },
  } satisfies StreamFilterFactory;
};

const requestHeaders = new Headers({
  host: "bench.local",
  "user-agent": "wrk",
  accept: "*/*",
  user: "admin",
});
const remoteAddr = { hostname: "127.0.0.1", port: 40000 };
const signal = new AbortController().signal;

class UnexpectedStatusError extends Error {
  override name = "UnexpectedStatusError";
}

/** One request's filter work, all filters synchronous: no promise may appear. */
function runSync(entries: readonly FilterEntry[]): void {
  const req = new RequestState(
    "GET",
    "/",
    requestHeaders,
    null,
    remoteAddr,
    signal,
  );
  if (entries.length === 0) return;
  const filters = new StreamFilters(entries);
  for (const phase of PHASES) {
    req.phase = phase;
    const status = runReceivers(filters, phase, req);
    if (status !== "continue") {
      throw new UnexpectedStatusError(`${phase} gave ${status}`);
    }
  }
  if (filters.senders.length > 0) {
    const res = new ResponseState(
      200,
      new Headers(),
      null,
      req,
      req.metadata,
      undefined,
      undefined,
      false,
    );
    if (runSenders(filters, res) !== undefined) {
      throw new UnexpectedStatusError("a sync sender returned a promise");
    }
  }
  filters.destroy();
}

/** One request's filter work when some filter may answer through a promise. */
async function runAsync(entries: readonly FilterEntry[]): Promise<void> {
  const req = new RequestState(
    "GET",
    "/",
    requestHeaders,
    null,
    remoteAddr,
    signal,
  );
  const filters = new StreamFilters(entries);
  for (const phase of PHASES) {
    req.phase = phase;
    let status = runReceivers(filters, phase, req);
    if (typeof status !== "string") status = await status;
    if (status !== "continue") {
      throw new UnexpectedStatusError(`${phase} gave ${status}`);
    }
  }
  filters.destroy();
}

const none: FilterEntry[] = [];
const oneDemo = await demoEntries(1);
const fiveDemo = await demoEntries(5);
const oneAsync = [await entry("async", createAsyncFilter, undefined)];
const oneSender = [await entry("sender", createHeaderSender, undefined)];

Deno.bench(
  "0 filters (RequestState only)",
  { group: "chain", baseline: true },
  () => {
    runSync(none);
  },
);

Deno.bench("1 demo filter", { group: "chain" }, () => {
  runSync(oneDemo);
});

Deno.bench("5 demo filters", { group: "chain" }, () => {
  runSync(fiveDemo);
});

Deno.bench(
  "1 sync sender (ResponseState + header set)",
  { group: "chain" },
  () => {
    runSync(oneSender);
  },
);

Deno.bench("1 async filter (Promise.resolve)", { group: "chain" }, async () => {
  await runAsync(oneAsync);
});

// The in-process proxy finds filters by type, as a config load does.
if (!isKnownFilterType("demo")) registerStreamFilter("demo", createDemo);
const upstream = () => new Response("ok\n");
const plain = await createInProcessProxy({ upstream });
const withDemo = await createInProcessProxy({
  streamFilters: [{ type: "demo", config: demoConfig }],
  upstream,
});
const benchRequest = { headers: { "user": "admin" } };

Deno.bench(
  "handleStream, no filter",
  { group: "in-process", baseline: true },
  async () => {
    const response = await plain.request("/", benchRequest);
    await response.arrayBuffer();
  },
);

Deno.bench("handleStream, demo", { group: "in-process" }, async () => {
  const response = await withDemo.request("/", benchRequest);
  if (response.status !== 200) {
    throw new UnexpectedStatusError(`demo gave ${response.status}`);
  }
  await response.arrayBuffer();
});

globalThis.addEventListener("unload", () => {
  plain.close();
  withDemo.close();
});
