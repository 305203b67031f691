import assert from "node:assert/strict";
import { parseConfig } from "../../../src/config/load.ts";
import type { ClusterConfig, HealthCheckConfig } from "../../../src/config/types.ts";
import { Cluster } from "../../../src/upstream/cluster.ts";
import { HostProbe } from "../../../src/upstream/health/probe.ts";
import { UpstreamConnectError } from "../../../src/upstream/types.ts";

const BASE = `cluster_manager:
  clusters:
    - name: web
      hosts: [{ address: 127.0.0.1:8080 }]
`;

function clusterOf(extra: string): ClusterConfig {
  const { config } = parseConfig(`${BASE}${extra}`, "conf/test.yaml");
  return config.clusters.get("web")!;
}

Deno.test("health_check loads in MOSN's shape with MOSN's defaults", () => {
  const check = clusterOf(`      health_check:
        protocol: Http1
        timeout: 2s
        interval: 5s
        interval_jitter: 500ms
        healthy_threshold: 2
        unhealthy_threshold: 3
        service_name: web
        check_config:
          http_check_config:
            path: /health?deep=1
            method: HEAD
            domain: web.internal
            port: 9090
            timeout: 1500ms
            codes: [{ start: 200, end: 299 }, { Start: 301, End: 302 }, 418]
`).healthCheck;
  assert.deepEqual(check, {
    protocol: "http",
    timeoutMs: 1500,
    intervalMs: 5000,
    intervalJitterMs: 500,
    healthyThreshold: 2,
    unhealthyThreshold: 3,
    serviceName: "web",
    http: {
      path: "/health?deep=1",
      method: "HEAD",
      domain: "web.internal",
      port: 9090,
      codes: [{ start: 200, end: 299 }, { start: 301, end: 302 }, { start: 418, end: 418 }],
    },
  });
  const tcp = clusterOf("      health_check: { protocol: tcp }\n").healthCheck;
  assert.deepEqual(tcp, {
    protocol: "tcp",
    timeoutMs: 1000,
    intervalMs: 15000,
    intervalJitterMs: 0,
    healthyThreshold: 1,
    unhealthyThreshold: 1,
    serviceName: "",
    http: undefined,
  });
  // MOSN checks an http health check without http_check_config by connecting only.
  assert.equal(clusterOf("      health_check: { protocol: http }\n").healthCheck?.http, undefined);
  const defaults = clusterOf(
    "      health_check: { protocol: http, check_config: { http_check_config: {} } }\n",
  ).healthCheck?.http;
  assert.deepEqual(defaults, {
    path: "/",
    method: "GET",
    domain: undefined,
    port: undefined,
    codes: [{ start: 200, end: 200 }],
  });
});

Deno.test("health_check errors name the field", () => {
  assert.throws(
    () => clusterOf("      health_check: { protocol: bolt }\n"),
    /health_check\.protocol: expected health check protocol "http" \(or MOSN's "Http1"\) or "tcp", got "bolt"/,
  );
  assert.throws(
    () => clusterOf("      health_check: { protocol: tcp, interval: 5 }\n"),
    /health_check\.interval: expected a duration such as "2s"/,
  );
  assert.throws(
    () =>
      clusterOf(
        "      health_check: { protocol: http, check_config: { http_check_config: { path: health } } }\n",
      ),
    /http_check_config\.path: expected a path starting with "\/"/,
  );
  assert.throws(
    () =>
      clusterOf(
        "      health_check: { protocol: http, check_config: { http_check_config: { codes: [{ start: 300, end: 200 }] } } }\n",
      ),
    /codes\[0\]: expected \{ start, end \} with statuses from 100 to 599 and start <= end/,
  );
});

Deno.test("circuit breakers, outlier detection and the panic threshold load with Envoy's defaults", () => {
  const cluster = clusterOf(`      circuit_breakers: [{ max_requests: 7, max_retries: 1 }]
      outlier_detection: { consecutive_gateway_failure: 2, base_ejection_time: 1s }
      healthy_panic_threshold: { value: 25 }
`);
  assert.equal(cluster.maxRequests, 7);
  assert.equal(cluster.maxRetries, 1);
  assert.equal(cluster.healthyPanicThreshold, 25);
  assert.deepEqual(cluster.outlierDetection, {
    consecutive5xx: 5,
    consecutiveGatewayFailure: 2,
    enforcingConsecutive5xx: 100,
    enforcingConsecutiveGatewayFailure: 100,
    intervalMs: 10000,
    baseEjectionTimeMs: 1000,
    maxEjectionTimeMs: 300000,
    maxEjectionPercent: 10,
  });
  const plain = clusterOf("      outlier_detection: {}\n");
  assert.equal(plain.outlierDetection?.enforcingConsecutiveGatewayFailure, 0);
  assert.equal(plain.maxRequests, 1024);
  assert.equal(plain.maxRetries, 3);
  assert.equal(plain.healthyPanicThreshold, 50);
});

/** A loopback HTTP upstream whose health answer the test sets. */
function upstream(status: { code: number }) {
  const seen: { path: string; host: string | null; method: string }[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
    const url = new URL(req.url);
    seen.push({
      path: url.pathname + url.search,
      host: req.headers.get("host"),
      method: req.method,
    });
    return new Response(status.code === 204 ? null : "ok", { status: status.code });
  });
  return { server, port: server.addr.port, seen };
}

/** A port nothing listens on. */
function closedPort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

function check(overrides: Partial<HealthCheckConfig> = {}): HealthCheckConfig {
  return {
    protocol: "http",
    timeoutMs: 5000,
    intervalMs: 1,
    intervalJitterMs: 0,
    healthyThreshold: 1,
    unhealthyThreshold: 1,
    serviceName: "",
    http: {
      path: "/health",
      method: "GET",
      domain: undefined,
      port: undefined,
      codes: [{ start: 200, end: 299 }],
    },
    ...overrides,
  };
}

function hostAt(port: number) {
  return { hostname: "127.0.0.1", port, address: `127.0.0.1:${port}` };
}

Deno.test("an http probe passes on an expected status, fails on another, and on no answer", async () => {
  const status = { code: 204 };
  const up = upstream(status);
  try {
    const probe = new HostProbe(hostAt(up.port), check());
    const signal = new AbortController().signal;
    assert.equal(await probe.run(signal), "healthy");
    status.code = 503;
    assert.equal(await probe.run(signal), "unhealthy");
    assert.deepEqual(up.seen[0], { path: "/health", host: `127.0.0.1:${up.port}`, method: "GET" });
    const domain = new HostProbe(
      hostAt(up.port),
      check({ http: { ...check().http!, domain: "web.internal", path: "/h?x=1" } }),
    );
    await domain.run(signal);
    assert.deepEqual(up.seen[2], { path: "/h?x=1", host: "web.internal", method: "GET" });
    assert.equal(await new HostProbe(hostAt(closedPort()), check()).run(signal), "network");
  } finally {
    await up.server.shutdown();
  }
});

Deno.test("a tcp probe connects; an aborted probe of a silent host is a network failure", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  const accepted: Deno.Conn[] = [];
  const accepting = (async () => {
    for await (const conn of listener) accepted.push(conn);
  })();
  try {
    const signal = new AbortController().signal;
    assert.equal(
      await new HostProbe(hostAt(port), check({ protocol: "tcp", http: undefined })).run(signal),
      "healthy",
    );
    assert.equal(
      await new HostProbe(hostAt(closedPort()), check({ protocol: "tcp", http: undefined })).run(
        signal,
      ),
      "network",
    );
    // The listener accepts and never answers: the http probe waits until aborted.
    const controller = new AbortController();
    const pending = new HostProbe(hostAt(port), check()).run(controller.signal);
    while (accepted.length < 2) await new Promise((r) => setTimeout(r, 1));
    controller.abort();
    assert.equal(await pending, "network");
  } finally {
    listener.close();
    await accepting.catch(() => {});
    for (const conn of accepted) conn.close();
  }
});

function clusterConfig(ports: number[], extra: Partial<ClusterConfig>): ClusterConfig {
  return {
    name: `health-${crypto.randomUUID()}`,
    type: "SIMPLE",
    lbType: "LB_ROUNDROBIN",
    hosts: ports.map((port) => ({
      address: `127.0.0.1:${port}`,
      hostname: "127.0.0.1",
      port,
      weight: 1,
    })),
    maxRequestPerConn: 0,
    connectTimeoutMs: 3000,
    idleTimeoutMs: 90000,
    maxConnections: 1024,
    maxPendingRequests: 1024,
    protocol: "Http1",
    tls: undefined,
    position: { file: "test.yaml", line: 1, path: "cluster_manager.clusters[0]" },
    ...extra,
  };
}

const noPool = () => ({
  size: 0,
  request: () => Promise.reject(new UpstreamConnectError("no pool in this test")),
  close() {},
});

function picks(cluster: Cluster, n: number): string[] {
  return Array.from({ length: n }, () => cluster.choose()!.address);
}

Deno.test("a host failing unhealthy_threshold checks leaves the balancer and returns after healthy_threshold passes", async () => {
  const a = { code: 200 };
  const b = { code: 200 };
  const upA = upstream(a);
  const upB = upstream(b);
  const cluster = new Cluster(
    clusterConfig([upA.port, upB.port], {
      healthCheck: check({ unhealthyThreshold: 2, healthyThreshold: 3 }),
      healthyPanicThreshold: 50,
    }),
    noPool,
  );
  const checker = cluster.healthChecker!;
  try {
    await checker.nextRound();
    assert.equal(cluster.healthyHosts, 2);
    b.code = 500;
    await checker.nextRound();
    // One failure of two: still in.
    assert.equal(cluster.hosts[1].healthy, true);
    await checker.nextRound();
    assert.equal(cluster.hosts[1].failedActiveHealthCheck, true);
    assert.equal(cluster.healthyHosts, 1);
    assert.deepEqual(new Set(picks(cluster, 6)), new Set([`127.0.0.1:${upA.port}`]));
    b.code = 200;
    await checker.nextRound();
    await checker.nextRound();
    assert.equal(cluster.hosts[1].healthy, false, "two passes of three: still out");
    await checker.nextRound();
    assert.equal(cluster.hosts[1].healthy, true);
    assert.deepEqual(
      new Set(picks(cluster, 6)),
      new Set([`127.0.0.1:${upA.port}`, `127.0.0.1:${upB.port}`]),
    );
    const stats = cluster.resilience;
    assert.ok(stats.health_check_attempt >= 12);
    assert.ok(stats.health_check_failure >= 2);
    assert.equal(stats.health_check_network_failure, 0);
  } finally {
    cluster.close();
    await upA.server.shutdown();
    await upB.server.shutdown();
  }
});

Deno.test("below the panic threshold the balancer uses every host; at 0 it picks none", async () => {
  const up = upstream({ code: 200 });
  const dead = [closedPort(), closedPort(), closedPort()];
  const panicking = new Cluster(
    clusterConfig([up.port, ...dead], { healthCheck: check(), healthyPanicThreshold: 50 }),
    noPool,
  );
  const strict = new Cluster(
    clusterConfig(dead, { healthCheck: check(), healthyPanicThreshold: 0 }),
    noPool,
  );
  try {
    await panicking.healthChecker!.nextRound();
    await strict.healthChecker!.nextRound();
    assert.equal(panicking.healthyHosts, 1);
    assert.equal(panicking.panic, true);
    assert.equal(new Set(picks(panicking, 8)).size, 4);
    assert.equal(panicking.resilience.lb_healthy_panic, 8);
    assert.ok(panicking.resilience.health_check_network_failure >= 3);
    assert.equal(strict.healthyHosts, 0);
    assert.equal(strict.choose(), undefined);
  } finally {
    panicking.close();
    strict.close();
    await up.server.shutdown();
  }
});

Deno.test("closing the cluster stops its health checks", async () => {
  const up = upstream({ code: 200 });
  const cluster = new Cluster(clusterConfig([up.port], { healthCheck: check() }), noPool);
  try {
    await cluster.healthChecker!.nextRound();
    cluster.close();
    const seen = up.seen.length;
    // A stopped checker resolves waiters at once and schedules nothing more.
    await cluster.healthChecker!.nextRound();
    await new Promise((r) => setTimeout(r, 20));
    assert.ok(up.seen.length <= seen + 1);
  } finally {
    await up.server.shutdown();
  }
});
