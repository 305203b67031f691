import assert from "node:assert/strict";
import type { ClusterConfig, HostConfig } from "../../../src/config/types.ts";
import type {
  ConnectionPool,
  UpstreamRequest,
  UpstreamResponse,
} from "../../../src/upstream/types.ts";
import { UpstreamConnectError } from "../../../src/upstream/types.ts";
import { Cluster, ClusterManager, Host } from "../../../src/upstream/cluster.ts";

/** A cluster config with every field the loader would default. */
function clusterConfig(
  name: string,
  lbType: ClusterConfig["lbType"],
  ...ports: number[]
): ClusterConfig {
  return {
    name,
    type: "SIMPLE",
    lbType,
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
  };
}

/**
 * A pool that records what the cluster does with it. The cluster only makes and closes
 * pools, never sends through them, so recording is all these tests need.
 */
class RecordingPool implements ConnectionPool {
  closed = false;
  readonly size = 0;
  constructor(readonly host: HostConfig, readonly cluster: ClusterConfig) {}
  request(_request: UpstreamRequest): Promise<UpstreamResponse> {
    return Promise.reject(
      new UpstreamConnectError(`Cannot send to ${this.host.address}: the pool records only`),
    );
  }
  close(): void {
    this.closed = true;
  }
}

function recorder(): {
  pools: RecordingPool[];
  make: (h: HostConfig, c: ClusterConfig) => RecordingPool;
} {
  const pools: RecordingPool[] = [];
  return {
    pools,
    make(host, cluster) {
      const pool = new RecordingPool(host, cluster);
      pools.push(pool);
      return pool;
    },
  };
}

function manager(make: (h: HostConfig, c: ClusterConfig) => ConnectionPool): ClusterManager {
  const configs = new Map([
    ["web", clusterConfig("web", "LB_ROUNDROBIN", 8001, 8002, 8003)],
    ["unused", clusterConfig("unused", "LB_RANDOM", 9001)],
  ]);
  return new ClusterManager(configs, make);
}

Deno.test("the cluster manager finds clusters by name with their hosts", () => {
  const clusters = manager(recorder().make);
  const web = clusters.get("web");
  assert.ok(web instanceof Cluster);
  assert.equal(web.name, "web");
  assert.equal(web.config.lbType, "LB_ROUNDROBIN");
  assert.deepEqual(web.hosts.map((host) => host.address), [
    "127.0.0.1:8001",
    "127.0.0.1:8002",
    "127.0.0.1:8003",
  ]);
  assert.equal(clusters.get("missing"), undefined);
});

Deno.test("a host carries its address, weight, cluster name and an in-flight count", () => {
  const host = manager(recorder().make).get("web")!.hosts[1];
  assert.ok(host instanceof Host);
  assert.equal(host.address, "127.0.0.1:8002");
  assert.equal(host.hostname, "127.0.0.1");
  assert.equal(host.port, 8002);
  assert.equal(host.weight, 1);
  assert.equal(host.cluster, "web");
  assert.equal(host.active, 0);
});

Deno.test("a cluster picks hosts with its lb_type and honours exclude", () => {
  const web = manager(recorder().make).get("web")!;
  const ports = Array.from({ length: 4 }, () => web.choose()?.port);
  assert.deepEqual(ports, [8001, 8002, 8003, 8001]);
  // The round robin is at 8002 now; excluding it moves on to 8003.
  assert.equal(web.choose(web.hosts[1])?.port, 8003);
});

Deno.test("a cluster without hosts chooses none", () => {
  const empty = new Cluster(clusterConfig("empty", "LB_LEAST_REQUEST"), recorder().make);
  assert.equal(empty.choose(), undefined);
});

Deno.test("pools are made on a host's first use, once, and unused clusters open none", () => {
  const { pools, make } = recorder();
  const clusters = manager(make);
  assert.equal(pools.length, 0);
  const host = clusters.get("web")!.choose()!;
  assert.equal(pools.length, 0, "choosing a host must not make its pool");
  const pool = host.pool;
  assert.equal(host.pool, pool);
  assert.equal(pools.length, 1);
  assert.equal(pools[0].host.address, "127.0.0.1:8001");
  assert.equal(pools[0].cluster.name, "web");
  clusters.close();
});

Deno.test("closing the manager closes every pool that was made", () => {
  const { pools, make } = recorder();
  const clusters = manager(make);
  const web = clusters.get("web")!;
  void web.hosts[0].pool;
  void web.hosts[2].pool;
  clusters.close();
  assert.equal(pools.length, 2);
  assert.ok(pools.every((pool) => pool.closed));
  clusters.close();
});

Deno.test("a pool asked for after close is made closed", () => {
  const { pools, make } = recorder();
  const clusters = manager(make);
  clusters.close();
  const pool = clusters.get("unused")!.hosts[0].pool;
  assert.equal(pools.length, 1);
  assert.equal(pool, pools[0]);
  assert.ok(pools[0].closed);
});
