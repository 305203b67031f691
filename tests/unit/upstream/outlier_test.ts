import assert from "node:assert/strict";
import type { ClusterConfig, OutlierDetectionConfig } from "../../../src/config/types.ts";
import { Cluster } from "../../../src/upstream/cluster.ts";
import { OutlierDetector } from "../../../src/upstream/outlier.ts";
import { UpstreamConnectError } from "../../../src/upstream/types.ts";

function config(overrides: Partial<OutlierDetectionConfig> = {}): OutlierDetectionConfig {
  return {
    consecutive5xx: 3,
    consecutiveGatewayFailure: 2,
    enforcingConsecutive5xx: 100,
    enforcingConsecutiveGatewayFailure: 100,
    intervalMs: 10_000,
    baseEjectionTimeMs: 1000,
    maxEjectionTimeMs: 300_000,
    maxEjectionPercent: 100,
    ...overrides,
  };
}

function cluster(hosts: number, outlier: OutlierDetectionConfig): Cluster {
  const ports = Array.from({ length: hosts }, (_, i) => 9000 + i);
  const clusterConfig: ClusterConfig = {
    name: `outlier-${crypto.randomUUID()}`,
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
    outlierDetection: outlier,
    healthyPanicThreshold: 0,
  };
  return new Cluster(clusterConfig, () => ({
    size: 0,
    request: () => Promise.reject(new UpstreamConnectError("no pool")),
    close() {},
  }));
}

/** A detector on a clock the test moves, over a cluster's hosts. */
function detectorOf(hosts: number, overrides: Partial<OutlierDetectionConfig> = {}) {
  const c = cluster(hosts, config(overrides));
  const clock = { now: 0 };
  let changes = 0;
  const detector = new OutlierDetector(
    config(overrides),
    c.hosts,
    c.resilience,
    () => changes++,
    { now: () => clock.now },
  );
  return { c, detector, clock, changes: () => changes };
}

Deno.test("consecutive gateway failures eject; a success in between resets the count", () => {
  const { c, detector } = detectorOf(4);
  const [a] = c.hosts;
  detector.report(a, 503);
  detector.report(a, 200);
  detector.report(a, 502);
  assert.equal(a.ejected, false);
  detector.report(a, 504);
  assert.equal(a.ejected, true);
  assert.equal(a.ejections, 1);
  assert.equal(detector.ejectionsActive, 1);
  assert.equal(c.resilience.outlier_detection_ejections_enforced_consecutive_gateway_failure, 1);
  detector.close();
});

Deno.test("consecutive 5xx eject; 500s are not gateway failures", () => {
  const { c, detector } = detectorOf(4);
  const [, b] = c.hosts;
  detector.report(b, 500);
  detector.report(b, 503);
  assert.equal(b.ejected, false, "500 then 503: one gateway failure in a row");
  detector.report(b, 500);
  assert.equal(b.ejected, true);
  assert.equal(c.resilience.outlier_detection_ejections_enforced_consecutive_5xx, 1);
  detector.close();
});

Deno.test("without enforcement a reached threshold is only detected", () => {
  const { c, detector } = detectorOf(4, { enforcingConsecutiveGatewayFailure: 0 });
  const [a] = c.hosts;
  detector.report(a, 503);
  detector.report(a, 503);
  assert.equal(a.ejected, false);
  assert.equal(c.resilience.outlier_detection_ejections_detected_consecutive_gateway_failure, 1);
  detector.report(a, 503);
  assert.equal(a.ejected, true, "the third 5xx ejects by consecutive_5xx");
  detector.close();
});

Deno.test("the ejection lasts base_ejection_time times the ejections, then the sweep brings the host back", () => {
  const { c, detector, clock } = detectorOf(4, { baseEjectionTimeMs: 1000 });
  const [a] = c.hosts;
  const eject = () => {
    detector.report(a, 502);
    detector.report(a, 502);
  };
  eject();
  clock.now = 999;
  detector.sweep();
  assert.equal(a.ejected, true);
  clock.now = 1000;
  detector.sweep();
  assert.equal(a.ejected, false);
  eject();
  assert.equal(a.ejections, 2);
  clock.now = 2999;
  detector.sweep();
  assert.equal(a.ejected, true, "second ejection: 2 × base");
  clock.now = 3000;
  detector.sweep();
  assert.equal(a.ejected, false);
  // Each sweep that finds the host in the balancer lowers the multiplier (Envoy's backoff).
  detector.sweep();
  eject();
  clock.now = 4999;
  detector.sweep();
  assert.equal(a.ejected, true);
  clock.now = 5000;
  detector.sweep();
  assert.equal(a.ejected, false, "2 - 1 + 1 = 2: back after 2 × base, not 3 ×");
  detector.close();
});

Deno.test("max_ejection_percent caps ejections, though one host always may be ejected", () => {
  const { c, detector } = detectorOf(2, { maxEjectionPercent: 10 });
  const [a, b] = c.hosts;
  for (let i = 0; i < 2; i++) detector.report(a, 503);
  for (let i = 0; i < 3; i++) detector.report(b, 503);
  assert.equal(a.ejected, true);
  assert.equal(b.ejected, false);
  assert.ok(c.resilience.outlier_detection_ejections_overflow >= 1);
  detector.close();
});

Deno.test("the cluster's balancer skips ejected hosts and the detector ignores their late results", () => {
  const c = cluster(3, config({ maxEjectionPercent: 50 }));
  const [a, b, d] = c.hosts;
  c.report(a, 503);
  c.report(a, 503);
  assert.equal(a.ejected, true);
  const picked = new Set(Array.from({ length: 6 }, () => c.choose()!));
  assert.deepEqual(picked, new Set([b, d]));
  c.report(a, 200);
  c.report(a, 503);
  assert.equal(a.ejections, 1);
  assert.equal(c.healthyHosts, 2);
  c.close();
});
