import assert from "node:assert/strict";
import type { ClusterConfig } from "../../../src/config/types.ts";
import { Host } from "../../../src/upstream/cluster.ts";
import { createLoadBalancer } from "../../../src/upstream/load_balancer.ts";

const LB_TYPES: ClusterConfig["lbType"][] = [
  "LB_ROUNDROBIN",
  "LB_RANDOM",
  "LB_WEIGHTED_ROUNDROBIN",
  "LB_LEAST_REQUEST",
];

/** A cluster config with every field the loader would default. */
function clusterConfig(lbType: ClusterConfig["lbType"]): ClusterConfig {
  return {
    name: "c",
    type: "SIMPLE",
    lbType,
    hosts: [],
    maxRequestPerConn: 0,
    connectTimeoutMs: 3000,
    idleTimeoutMs: 90000,
    maxConnections: 1024,
    maxPendingRequests: 1024,
    protocol: "Http1",
    tls: undefined,
    position: { file: "test.yaml", line: 1, path: "cluster_manager.clusters[0]" },
  };
}

/** Hosts named a, b, c… on ports 8001, 8002…, with the given weights. */
function hosts(...weights: number[]): Host[] {
  const cluster = clusterConfig("LB_ROUNDROBIN");
  return weights.map((weight, i) =>
    new Host(
      { address: `127.0.0.1:${8001 + i}`, hostname: "127.0.0.1", port: 8001 + i, weight },
      cluster,
      () => {
        throw new Error("Load balancing must not open a pool");
      },
    )
  );
}

function letter(list: readonly Host[], host: Host | undefined): string {
  const index = host === undefined ? -1 : list.indexOf(host);
  return index < 0 ? "?" : String.fromCharCode(0x61 + index);
}

/** Mulberry32: a small seeded PRNG so that distributions are reproducible. */
function seeded(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function countPicks(list: readonly Host[], picks: number, pick: () => Host | undefined): number[] {
  const counts = list.map(() => 0);
  for (let i = 0; i < picks; i++) {
    const host = pick();
    assert.ok(host !== undefined);
    counts[list.indexOf(host)]++;
  }
  return counts;
}

Deno.test("round robin cycles through the hosts in order", () => {
  const list = hosts(1, 1, 1);
  const lb = createLoadBalancer("LB_ROUNDROBIN");
  const sequence = Array.from({ length: 7 }, () => letter(list, lb.choose(list))).join("");
  assert.equal(sequence, "abcabca");
});

Deno.test("weighted round robin with weights 5:1:1 gives nginx's smooth sequence", () => {
  const list = hosts(5, 1, 1);
  const lb = createLoadBalancer("LB_WEIGHTED_ROUNDROBIN");
  const sequence = Array.from({ length: 14 }, () => letter(list, lb.choose(list))).join("");
  assert.equal(sequence, "aabacaa" + "aabacaa");
});

Deno.test("weighted round robin honours weights over a cycle and skips weight 0", () => {
  const list = hosts(3, 0, 2, 1);
  const lb = createLoadBalancer("LB_WEIGHTED_ROUNDROBIN");
  assert.deepEqual(countPicks(list, 60, () => lb.choose(list)), [30, 0, 20, 10]);
});

Deno.test("weighted round robin falls back to equal turns when every weight is 0", () => {
  const list = hosts(0, 0);
  const lb = createLoadBalancer("LB_WEIGHTED_ROUNDROBIN");
  assert.deepEqual(countPicks(list, 10, () => lb.choose(list)), [5, 5]);
});

Deno.test("weighted round robin starts a new cycle when given a new host list", () => {
  const lb = createLoadBalancer("LB_WEIGHTED_ROUNDROBIN");
  const first = hosts(1, 1);
  assert.equal(letter(first, lb.choose(first)), "a");
  const second = hosts(1, 5);
  const sequence = Array.from({ length: 6 }, () => letter(second, lb.choose(second))).join("");
  assert.equal(sequence, "bbabbb");
});

Deno.test("random picks are roughly uniform over 10,000 picks", () => {
  const list = hosts(1, 1, 1, 1);
  const lb = createLoadBalancer("LB_RANDOM", seeded(7));
  for (const count of countPicks(list, 10_000, () => lb.choose(list))) {
    assert.ok(Math.abs(count - 2_500) < 200, `a host was picked ${count} times, expected ~2500`);
  }
});

Deno.test("least request always picks the less busy of two hosts", () => {
  const list = hosts(1, 1);
  list[0].active = 3;
  const lb = createLoadBalancer("LB_LEAST_REQUEST", seeded(1));
  assert.deepEqual(countPicks(list, 100, () => lb.choose(list)), [0, 100]);
});

Deno.test("least request prefers the idle host and never picks the busiest", () => {
  const list = hosts(1, 1, 1, 1, 1, 1, 1, 1, 1, 1);
  list.forEach((host, i) => host.active = 10 + i);
  list[4].active = 0;
  const lb = createLoadBalancer("LB_LEAST_REQUEST", seeded(3));
  const counts = countPicks(list, 10_000, () => lb.choose(list));
  // Two of ten hosts are sampled per pick: the idle one wins whenever it is sampled (20%),
  // twice its uniform share; the busiest one loses to anyone it is sampled with.
  assert.ok(Math.abs(counts[4] - 2_000) < 200, `the idle host was picked ${counts[4]} times`);
  assert.equal(counts[9], 0);
  assert.ok(counts[0] > counts[8], "a less busy host is picked more often than a busier one");
});

Deno.test("least request breaks ties with the random source", () => {
  const list = hosts(1, 1);
  const lb = createLoadBalancer("LB_LEAST_REQUEST", seeded(11));
  const [a, b] = countPicks(list, 10_000, () => lb.choose(list));
  assert.ok(Math.abs(a - b) < 400, `ties split ${a}:${b}, expected about even`);
});

for (const type of LB_TYPES) {
  Deno.test(`${type} avoids the excluded host when another exists`, () => {
    const list = hosts(2, 1, 1);
    list[0].active = 0;
    list[1].active = 5;
    list[2].active = 5;
    const lb = createLoadBalancer(type, seeded(5));
    const counts = countPicks(list, 1_000, () => lb.choose(list, list[0]));
    assert.equal(counts[0], 0);
    assert.ok(counts[1] > 0 && counts[2] > 0, `picks were ${counts}, expected both others`);
  });

  Deno.test(`${type} still picks the excluded host when it is the only one`, () => {
    const list = hosts(1);
    const lb = createLoadBalancer(type, seeded(5));
    assert.equal(lb.choose(list, list[0]), list[0]);
  });

  Deno.test(`${type} returns undefined for no hosts`, () => {
    const lb = createLoadBalancer(type, seeded(5));
    assert.equal(lb.choose([]), undefined);
    assert.equal(lb.choose([], hosts(1)[0]), undefined);
  });

  Deno.test(`${type} ignores an excluded host that is not in the list`, () => {
    const list = hosts(1, 1);
    const lb = createLoadBalancer(type, seeded(5));
    const counts = countPicks(list, 100, () => lb.choose(list, hosts(1)[0]));
    assert.equal(counts[0] + counts[1], 100);
  });
}

Deno.test("random with an excluded host spreads evenly over the others", () => {
  const list = hosts(1, 1, 1, 1);
  const lb = createLoadBalancer("LB_RANDOM", seeded(9));
  const counts = countPicks(list, 9_000, () => lb.choose(list, list[1]));
  assert.equal(counts[1], 0);
  for (const i of [0, 2, 3]) {
    assert.ok(Math.abs(counts[i] - 3_000) < 200, `host ${i} was picked ${counts[i]} times`);
  }
});

Deno.test("round robin with an excluded host moves on to the next one", () => {
  const list = hosts(1, 1, 1);
  const lb = createLoadBalancer("LB_ROUNDROBIN");
  const sequence = Array.from({ length: 6 }, () => letter(list, lb.choose(list, list[1])))
    .join("");
  assert.equal(sequence, "acacac");
});
