/**
 * Micro-benchmarks of the router and the load balancers: `deno bench bench/router_bench.ts`.
 *
 * The router has 50 virtual hosts (40 exact domains, 9 wildcards, one `*`) of 20 routes
 * each (prefixes, exact paths, a regex, a header-matched route), the shape of a mid-sized
 * gateway config.
 *
 * @module
 */

import type { ClusterConfig, RouteConfig, VirtualHostConfig } from "../src/config/types.ts";
import { Router } from "../src/router/router.ts";
import { Host } from "../src/upstream/cluster.ts";
import { createLoadBalancer } from "../src/upstream/load_balancer.ts";

function route(match: Partial<RouteConfig["match"]>, cluster: string): RouteConfig {
  return {
    name: undefined,
    match: { headers: [], ...match },
    route: {
      clusterName: cluster,
      weightedClusters: [],
      timeoutMs: 0,
      retryPolicy: undefined,
      prefixRewrite: undefined,
      hostRewrite: undefined,
    },
    directResponse: undefined,
    requestHeadersToAdd: [],
    requestHeadersToRemove: [],
    responseHeadersToAdd: [],
    responseHeadersToRemove: [],
    perFilterConfig: {},
  };
}

function routes(service: number): RouteConfig[] {
  const list: RouteConfig[] = [];
  list.push(route({ prefix: "/", headers: [{ name: "x-canary", value: "1", regex: false }] }, "c"));
  for (let j = 0; j < 14; j++) list.push(route({ prefix: `/svc${service}/r${j}/` }, `c${j}`));
  list.push(route({ path: "/healthz" }, "health"));
  list.push(route({ path: "/metrics" }, "metrics"));
  list.push(route({ regex: "/users/\\d+/orders/\\d+" }, "orders"));
  list.push(route({ prefix: "/static/" }, "static"));
  list.push(route({ prefix: "/" }, "default"));
  return list;
}

function virtualHost(i: number): VirtualHostConfig {
  const domains = i === 49 ? ["*"] : i >= 40 ? [`*.wild${i}.test`] : [`svc${i}.example.com`];
  return {
    name: `vh${i}`,
    domains,
    routes: routes(i),
    requestHeadersToAdd: [],
    requestHeadersToRemove: [],
    responseHeadersToAdd: [],
    responseHeadersToRemove: [],
    perFilterConfig: {},
  };
}

const router = new Router({
  name: "bench",
  virtualHosts: Array.from({ length: 50 }, (_, i) => virtualHost(i)),
});
const headers = new Headers({ "user-agent": "bench", accept: "*/*" });

function expect(actual: string | undefined, expected: string): void {
  if (actual !== expected) throw new Error(`Bench routed to ${actual}, expected ${expected}`);
}

Deno.bench("Router.match: exact host, first prefix route", { group: "router" }, () => {
  expect(router.match("svc20.example.com", "/svc20/r0/items?page=2", headers)?.clusterName, "c0");
});

Deno.bench("Router.match: exact host with port, 20th route", { group: "router" }, () => {
  expect(router.match("svc20.example.com:8080", "/anything", headers)?.clusterName, "default");
});

Deno.bench("Router.match: exact host, regex route", { group: "router" }, () => {
  expect(
    router.match("svc20.example.com", "/users/42/orders/7?x=1", headers)?.clusterName,
    "orders",
  );
});

Deno.bench("Router.match: wildcard host, exact path", { group: "router" }, () => {
  expect(router.match("api.wild45.test", "/healthz", headers)?.clusterName, "health");
});

Deno.bench("Router.match: unknown host falls to *", { group: "router" }, () => {
  expect(router.match("nowhere.org", "/static/app.js", headers)?.clusterName, "static");
});

const clusterConfig: ClusterConfig = {
  name: "bench",
  type: "SIMPLE",
  lbType: "LB_ROUNDROBIN",
  hosts: [],
  maxRequestPerConn: 0,
  connectTimeoutMs: 3000,
  idleTimeoutMs: 90000,
  maxConnections: 1024,
  maxPendingRequests: 1024,
  protocol: "Http1",
  tls: undefined,
  position: { file: "bench", line: 1, path: "cluster_manager.clusters[0]" },
};

const hosts: readonly Host[] = Array.from({ length: 10 }, (_, i) => {
  const host = new Host(
    { address: `127.0.0.1:${8000 + i}`, hostname: "127.0.0.1", port: 8000 + i, weight: 1 + i % 3 },
    clusterConfig,
    () => {
      throw new Error("The bench must not open a pool");
    },
  );
  host.active = i % 4;
  return host;
});

for (
  const type of [
    "LB_ROUNDROBIN",
    "LB_RANDOM",
    "LB_WEIGHTED_ROUNDROBIN",
    "LB_LEAST_REQUEST",
  ] as const
) {
  const lb = createLoadBalancer(type);
  Deno.bench(`${type}.choose over 10 hosts`, { group: "load balancer" }, () => {
    if (lb.choose(hosts) === undefined) throw new Error("The bench chose no host");
  });
  Deno.bench(`${type}.choose over 10 hosts, one excluded`, { group: "load balancer" }, () => {
    if (lb.choose(hosts, hosts[3]) === hosts[3]) {
      throw new Error("The bench chose the excluded host");
    }
  });
}
