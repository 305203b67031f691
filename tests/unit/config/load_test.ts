import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { loadConfig, parseConfig } from "../../../src/config/load.ts";
import { DEFAULT_ACCESS_LOG_FORMAT } from "../../../src/config/schema.ts";
import { BASE, FILE, lineOf, withReplaced } from "./_fixtures.ts";

const REPO = fileURLToPath(new URL("../../../", import.meta.url));
// A verbatim copy of the team reference ../shared/reference/mosn-style-config.json.
const REFERENCE = `${REPO}tests/unit/config/testdata/mosn-style-config.json`;
const EXAMPLE = `${REPO}examples/simple_streamfilter/config.yaml`;

Deno.test("MOSN's simple_streamfilter JSON loads unchanged, warning about what Mosaic ignores", async () => {
  const text = await Deno.readTextFile(REFERENCE);
  const { config, warnings } = parseConfig(text, "mosn.json");
  assert.deepEqual(warnings, [
    `mosn.json:${
      lineOf(text, '"bind_port"')
    }: servers[0].listeners[0].bind_port: not implemented by Mosaic, ignored`,
    `mosn.json:${
      lineOf(text, "conn_buffer_limit_bytes")
    }: cluster_manager.clusters[0].conn_buffer_limit_bytes: not implemented by Mosaic, ignored`,
  ]);
  assert.equal(config.logLevel, "info");
  assert.equal(config.logPath, "stdout");
  const [listener] = config.listeners;
  assert.equal(listener.name, "serverListener");
  assert.equal(listener.hostname, "127.0.0.1");
  assert.equal(listener.port, 2046);
  assert.deepEqual(listener.network, {
    type: "proxy",
    downstreamProtocol: "Http1",
    upstreamProtocol: "Http1",
    routerConfigName: "server_router",
    normalizePath: true,
    mergeSlashes: true,
    pathWithEscapedSlashesAction: "reject",
    useRemoteAddress: true,
    xffNumTrustedHops: 0,
    trustedProxies: [],
  });
  assert.deepEqual(listener.streamFilters.map((f) => [f.type, f.name, f.config, f.failureMode]), [
    ["demo", "demo", { User: "admin" }, "closed"],
  ]);
  const cluster = config.clusters.get("serverCluster");
  assert.equal(cluster?.lbType, "LB_RANDOM");
  assert.equal(cluster?.maxRequestPerConn, 1024);
  assert.deepEqual(cluster?.hosts, [
    { address: "127.0.0.1:8080", hostname: "127.0.0.1", port: 8080, weight: 1 },
  ]);
  assert.equal(
    config.routers.get("server_router")?.virtualHosts[0].routes[0].route?.clusterName,
    "serverCluster",
  );
  assert.deepEqual(config.admin, { hostname: "0.0.0.0", port: 34901 });
});

Deno.test("the simple_streamfilter example loads without warnings", async () => {
  const { config, warnings } = await loadConfig(EXAMPLE);
  assert.deepEqual(warnings, []);
  assert.equal(config.file, EXAMPLE);
  const [listener] = config.listeners;
  assert.equal(
    `${listener.name} ${listener.hostname}:${listener.port}`,
    "serverListener 127.0.0.1:2046",
  );
  assert.equal(
    listener.network.type === "proxy" && listener.network.routerConfigName,
    "server_router",
  );
  assert.deepEqual(listener.streamFilters.map((f) => [f.type, f.config]), [["demo", {
    User: "admin",
  }]]);
  assert.deepEqual(listener.accessLogs, [{ path: "stdout", format: DEFAULT_ACCESS_LOG_FORMAT }]);
  assert.deepEqual(config.clusters.get("serverCluster")?.hosts.map((h) => h.address), [
    "127.0.0.1:8080",
  ]);
  assert.deepEqual(config.admin, { hostname: "127.0.0.1", port: 34901 });
});

Deno.test("defaults fill in every field a config leaves out", () => {
  const text = `servers:
  - routers:
      - router_config_name: r
        virtual_hosts: [{ domains: ["*"], routers: [{ match: { prefix: / }, route: { cluster_name: c } }] }]
    listeners:
      - address: 127.0.0.1:0
        filter_chains: [{ filters: [{ type: proxy, config: { router_config_name: r } }] }]
        stream_filters: [{ type: demo }, { type: module, module: ./f.ts, sandbox: {} }]
        access_logs: [{}]
cluster_manager:
  clusters: [{ name: c, hosts: [{ address: 127.0.0.1:8080 }] }]
plugins:
  checker: { command: ./checker }
`;
  const { config, warnings } = parseConfig(text, "/srv/mosaic/config.yaml");
  assert.deepEqual(warnings, []);
  assert.equal(config.logLevel, "info");
  assert.equal(config.logPath, "stderr");
  assert.equal(config.drainTimeoutMs, 30_000);
  assert.equal(config.watch, false);
  assert.equal(config.admin, undefined);
  const [listener] = config.listeners;
  assert.equal(listener.name, "listener0");
  assert.deepEqual(listener.network, {
    type: "proxy",
    downstreamProtocol: "Auto",
    upstreamProtocol: "Http1",
    routerConfigName: "r",
    normalizePath: true,
    mergeSlashes: true,
    pathWithEscapedSlashesAction: "reject",
    useRemoteAddress: true,
    xffNumTrustedHops: 0,
    trustedProxies: [],
  });
  assert.equal(listener.maxHeaderBytes, 32768);
  assert.equal(listener.tls, undefined);
  assert.deepEqual(listener.accessLogs, [{ path: "stdout", format: DEFAULT_ACCESS_LOG_FORMAT }]);
  const [demo, module] = listener.streamFilters;
  assert.deepEqual({ ...demo, position: undefined }, {
    type: "demo",
    name: "demo",
    config: {},
    failureMode: "closed",
    overrides: [],
    position: undefined,
  });
  assert.equal(module.module, "file:///srv/mosaic/f.ts");
  assert.equal(module.export, "createStreamFilterFactory");
  assert.equal(module.integrity, undefined);
  assert.deepEqual(module.sandbox, { isolation: "worker", permissions: {}, timeoutMs: 1000 });
  assert.deepEqual({ ...config.clusters.get("c"), position: undefined }, {
    name: "c",
    type: "SIMPLE",
    lbType: "LB_ROUNDROBIN",
    hosts: [{ address: "127.0.0.1:8080", hostname: "127.0.0.1", port: 8080, weight: 1 }],
    maxRequestPerConn: 0,
    connectTimeoutMs: 3000,
    idleTimeoutMs: 90_000,
    maxConnections: 1024,
    maxPendingRequests: 1024,
    maxRequests: 1024,
    maxRetries: 3,
    healthCheck: undefined,
    outlierDetection: undefined,
    healthyPanicThreshold: 50,
    protocol: "Http1",
    tls: undefined,
    position: undefined,
  });
  const vhost = config.routers.get("r")?.virtualHosts[0];
  assert.equal(vhost?.name, "virtual_host0");
  assert.deepEqual(vhost?.routes[0].route, {
    clusterName: "c",
    weightedClusters: [],
    timeoutMs: 15_000,
    retryPolicy: undefined,
    prefixRewrite: undefined,
    hostRewrite: undefined,
  });
  assert.deepEqual({ ...config.plugins.get("checker"), position: undefined }, {
    name: "checker",
    command: ["./checker"],
    args: [],
    env: {},
    cwd: "/srv/mosaic",
    network: "unix",
    startTimeoutMs: 10_000,
    maxProcs: 1,
    position: undefined,
  });
});

Deno.test("durations accept Go strings wherever a duration goes", () => {
  const text =
    BASE.replace("connect_timeout: 3s", "connect_timeout: 1m30s\n      idle_timeout: 250ms")
      .replace(
        "route: { cluster_name: serverCluster }",
        "route: { cluster_name: serverCluster, timeout: 1.5s, retry_policy: { retry_on: true, retry_timeout: 500ms, num_retries: 2 } }",
      ) +
    "drain_timeout: 2h\n";
  const { config } = parseConfig(text, FILE);
  const cluster = config.clusters.get("serverCluster");
  assert.equal(cluster?.connectTimeoutMs, 90_000);
  assert.equal(cluster?.idleTimeoutMs, 250);
  assert.equal(config.drainTimeoutMs, 7_200_000);
  const route = config.routers.get("server_router")?.virtualHosts[0].routes[0].route;
  assert.equal(route?.timeoutMs, 1500);
  assert.deepEqual(route?.retryPolicy, { numRetries: 2, retryOn5xx: true, perTryTimeoutMs: 500 });
});

Deno.test("addresses may be IPv6 in brackets, and admin may use MOSN's socket_address", () => {
  const text = withReplaced("address: 127.0.0.1:2046", 'address: "[::1]:2046"')
    .replace("address: 127.0.0.1:8080", 'address: "[::1]:8080"')
    .replace(
      "address: 127.0.0.1:34901",
      "address: { socket_address: { address: '::', port_value: 34901 } }",
    );
  const { config } = parseConfig(text, FILE);
  assert.deepEqual([config.listeners[0].hostname, config.listeners[0].port], ["::1", 2046]);
  assert.deepEqual(config.clusters.get("serverCluster")?.hosts[0], {
    address: "[::1]:8080",
    hostname: "::1",
    port: 8080,
    weight: 1,
  });
  assert.deepEqual(config.admin, { hostname: "::", port: 34901 });
});

Deno.test("a relative module path resolves against the config file's directory", () => {
  const text = withReplaced(
    "- type: demo\n            config: { User: admin }",
    `- type: module
            module: ./filters/auth.ts
          - { type: module, name: abs, module: /opt/filters/a.ts }
          - { type: module, name: url, module: "https://filters.example.com/auth.ts", export: create }
          - { type: module, name: file, module: "file:///opt/b.ts" }`,
  );
  const { config } = parseConfig(text, "/etc/mosaic/config.yaml");
  assert.deepEqual(config.listeners[0].streamFilters.map((f) => [f.name, f.module, f.export]), [
    ["module", "file:///etc/mosaic/filters/auth.ts", "createStreamFilterFactory"],
    ["abs", "file:///opt/filters/a.ts", "createStreamFilterFactory"],
    ["url", "https://filters.example.com/auth.ts", "create"],
    ["file", "file:///opt/b.ts", "createStreamFilterFactory"],
  ]);
});

Deno.test("a relative config file name becomes absolute in the config", () => {
  const { config } = parseConfig(BASE, "conf/x.yaml");
  assert.equal(config.file, `${Deno.cwd()}/conf/x.yaml`);
});

Deno.test("keys Mosaic does not implement are warned about once per path, with their line", () => {
  const text = `${BASE}tracing: { enable: true }
pprof: { debug: true }
`.replace(
    "    - name: serverCluster",
    "    - name: serverCluster\n      lb_subset_config: { fallback_policy: 1 }",
  );
  const { warnings } = parseConfig(text, FILE);
  assert.deepEqual(warnings, [
    `${FILE}:${
      lineOf(text, "lb_subset_config")
    }: cluster_manager.clusters[0].lb_subset_config: not implemented by Mosaic, ignored`,
    `${FILE}:${lineOf(text, "tracing")}: tracing: not implemented by Mosaic, ignored`,
    `${FILE}:${lineOf(text, "pprof")}: pprof: not implemented by Mosaic, ignored`,
  ]);
});

Deno.test("a filter's own config and per_filter_config are not checked for unknown keys", () => {
  const text = withReplaced(
    "route: { cluster_name: serverCluster }",
    "route: { cluster_name: serverCluster }\n                per_filter_config: { demo: { anything: 1 } }",
  );
  const { config, warnings } = parseConfig(text, FILE);
  assert.deepEqual(warnings, []);
  const route = config.routers.get("server_router")?.virtualHosts[0].routes[0];
  assert.deepEqual(route?.perFilterConfig, { demo: { anything: 1 } });
});

Deno.test("module and plugin types pass the known-type check without being asked about", () => {
  const asked: string[] = [];
  const text = withReplaced(
    "- type: demo\n            config: { User: admin }",
    "- { type: demo }\n          - { type: module, module: ./m.ts }\n          - { type: plugin, config: { plugin: checker } }",
  ) + "plugins:\n  checker: { command: [python3, checker.py] }\n";
  parseConfig(text, FILE, { isKnownFilterType: (t) => (asked.push(t), t === "demo") });
  assert.deepEqual(asked, ["demo"]);
});

Deno.test("failure_mode may sit inside config, as MOSN's plugin agent reads it", () => {
  const text = withReplaced(
    "config: { User: admin }",
    "config: { User: admin, failure_mode: open }",
  );
  const { config } = parseConfig(text, FILE);
  assert.equal(config.listeners[0].streamFilters[0].failureMode, "open");
});

Deno.test("log levels are case-insensitive and WARN becomes warning", () => {
  const { config } = parseConfig(
    withReplaced("default_log_level: INFO", "default_log_level: warn"),
    FILE,
  );
  assert.equal(config.logLevel, "warning");
});

Deno.test("circuit breakers load in MOSN's list form and in Envoy's thresholds form", () => {
  const mosn = withReplaced(
    "connect_timeout: 3s",
    "circuit_breakers: [{ max_connections: 10, max_pending_requests: 5 }]",
  );
  const envoy = withReplaced(
    "connect_timeout: 3s",
    "circuit_breakers: { thresholds: [{ max_connections: 20 }] }",
  );
  const a = parseConfig(mosn, FILE).config.clusters.get("serverCluster");
  const b = parseConfig(envoy, FILE).config.clusters.get("serverCluster");
  assert.deepEqual([a?.maxConnections, a?.maxPendingRequests], [10, 5]);
  assert.deepEqual([b?.maxConnections, b?.maxPendingRequests], [20, 1024]);
});

Deno.test("tls_context takes MOSN's keys, resolves file paths and keeps PEM text", () => {
  const text = withReplaced(
    "        stream_filters:",
    `            tls_context:
              status: true
              cert_chain: ./certs/cert.pem
              private_key: "-----BEGIN PRIVATE KEY-----\\nabc\\n-----END PRIVATE KEY-----"
              alpn: "h2, http/1.1"
              verify_client: true
        stream_filters:`,
  ).replace("connect_timeout: 3s", "tls_context: { status: false, cert_chain: x }");
  const { config } = parseConfig(text, "/etc/mosaic/config.yaml");
  const tls = config.listeners[0].tls;
  assert.equal(tls?.certChain, "/etc/mosaic/certs/cert.pem");
  assert.match(tls?.privateKey ?? "", /^-----BEGIN PRIVATE KEY-----\n/);
  assert.deepEqual(tls?.alpn, ["h2", "http/1.1"]);
  assert.equal(tls?.type, "file");
  assert.equal(tls?.requireClientCert, true);
  assert.equal(tls?.insecureSkip, false);
  assert.equal(tls?.position.path, "servers[0].listeners[0].filter_chains[0].tls_context");
  assert.equal(config.clusters.get("serverCluster")?.tls, undefined, "status: false means no TLS");
});

Deno.test("MOSN's header lists inside route join the ones beside it", () => {
  const text = withReplaced(
    "route: { cluster_name: serverCluster }",
    `route:
                  cluster_name: serverCluster
                  request_headers_to_add: [{ header: { key: x-a, value: 1 } }]
                request_headers_to_add: [{ header: { key: x-b, value: b }, append: true }]
                response_headers_to_remove: [server]`,
  );
  const route = parseConfig(text, FILE).config.routers.get("server_router")?.virtualHosts[0]
    .routes[0];
  assert.deepEqual(route?.requestHeadersToAdd, [
    { key: "x-b", value: "b", append: true },
    { key: "x-a", value: "1", append: false },
  ]);
  assert.deepEqual(route?.responseHeadersToRemove, ["server"]);
});

Deno.test("a tcp_proxy takes its cluster from config.cluster or MOSN's routes[0].cluster", () => {
  const text = withReplaced(
    "- type: proxy\n                config: { router_config_name: server_router }\n        stream_filters:\n          - type: demo\n            config: { User: admin }",
    "- type: tcp_proxy\n                config: { routes: [{ cluster: serverCluster }], idle_timeout: 1m }",
  );
  assert.deepEqual(parseConfig(text, FILE).config.listeners[0].network, {
    type: "tcp_proxy",
    cluster: "serverCluster",
    idleTimeoutMs: 60_000,
  });
});

Deno.test("listeners on port 0 never clash: the OS picks a port for each", () => {
  const text = withReplaced("address: 127.0.0.1:2046", "address: 127.0.0.1:0").replace(
    "cluster_manager:",
    `      - address: 127.0.0.1:0
        filter_chains: [{ filters: [{ type: proxy, config: { router_config_name: server_router } }] }]
cluster_manager:`,
  );
  assert.deepEqual(parseConfig(text, FILE).config.listeners.map((l) => l.name), [
    "serverListener",
    "listener1",
  ]);
});

Deno.test("the loaded config is deep-frozen, maps included", () => {
  const { config } = parseConfig(BASE, FILE);
  assert.ok(Object.isFrozen(config));
  assert.ok(Object.isFrozen(config.listeners[0].streamFilters[0].config));
  assert.ok(Object.isFrozen(config.clusters.get("serverCluster")?.hosts[0]));
  assert.throws(() => config.clusters.set("x", config.clusters.get("serverCluster")!), TypeError);
  assert.throws(() => config.routers.delete("server_router"), TypeError);
  assert.throws(() => config.plugins.clear(), TypeError);
  assert.throws(() => {
    (config.listeners as unknown[]).push(1);
  }, TypeError);
});

Deno.test("positions point at the entry in the file", () => {
  const { config } = parseConfig(BASE, FILE);
  assert.deepEqual(config.listeners[0].position, {
    file: FILE,
    line: lineOf(BASE, "name: serverListener"),
    path: "servers[0].listeners[0]",
  });
  assert.equal(config.listeners[0].streamFilters[0].position.line, lineOf(BASE, "type: demo"));
});

Deno.test("a route's timeout is Envoy's 15 s unless set, and 0s turns it off", () => {
  const route = (timeout: string) =>
    parseConfig(
      withReplaced(
        "route: { cluster_name: serverCluster }",
        `route: { cluster_name: serverCluster${timeout} }`,
      ),
      "t.yaml",
    ).config.routers.get("server_router")!.virtualHosts[0].routes[0].route!;
  assert.equal(route("").timeoutMs, 15_000);
  assert.equal(route(", timeout: 0s").timeoutMs, 0);
  assert.equal(route(", timeout: 2s").timeoutMs, 2000);
});
