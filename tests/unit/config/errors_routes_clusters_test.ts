import assert from "node:assert/strict";
import { assertConfigError, BASE, FILE, lineOf, withReplaced } from "./_fixtures.ts";

const ROUTE = "servers[0].routers[0].virtual_hosts[0].routers[0]";
const CLUSTER = "cluster_manager.clusters[0]";

Deno.test("a route to an undefined cluster lists the defined clusters", () => {
  const text = withReplaced("cluster_name: serverCluster", "cluster_name: nope");
  assertConfigError(text, {
    line: lineOf(text, "cluster_name: nope"),
    path: `${ROUTE}.route.cluster_name`,
    problem: /unknown cluster "nope"; defined clusters: "serverCluster"/,
  });
});

Deno.test("a weighted cluster that is not defined is an error too", () => {
  const text = withReplaced(
    "route: { cluster_name: serverCluster }",
    "route: { weighted_clusters: [{ cluster: { name: serverCluster, weight: 90 } }, { cluster: { name: canary, weight: 10 } }] }",
  );
  assertConfigError(text, {
    line: lineOf(text, "canary"),
    path: `${ROUTE}.route.weighted_clusters[1].cluster.name`,
    problem: /unknown cluster "canary"/,
  });
});

Deno.test("an lb_type Mosaic does not have lists the ones it has", () => {
  const text = withReplaced("lb_type: LB_ROUNDROBIN", "lb_type: LB_MAGLEV");
  assertConfigError(text, {
    line: lineOf(text, "LB_MAGLEV"),
    path: `${CLUSTER}.lb_type`,
    problem:
      /expected one of "LB_ROUNDROBIN", "LB_RANDOM", "LB_WEIGHTED_ROUNDROBIN", "LB_LEAST_REQUEST", got "LB_MAGLEV"/,
  });
});

Deno.test("a cluster type other than SIMPLE is reported as not supported", () => {
  const text = withReplaced("lb_type: LB_ROUNDROBIN", "type: EDS");
  assertConfigError(text, {
    line: lineOf(text, "type: EDS"),
    path: `${CLUSTER}.type`,
    problem: /cluster type "EDS" is not supported by Mosaic; only "SIMPLE"/,
  });
});

Deno.test("a duration without a unit is an error that shows good durations", () => {
  const text = withReplaced("connect_timeout: 3s", "connect_timeout: 3 seconds");
  assertConfigError(text, {
    line: lineOf(text, "3 seconds"),
    path: `${CLUSTER}.connect_timeout`,
    problem: /expected a duration such as "2s" or "500ms", got "3 seconds"$/,
  });
});

Deno.test("a bare number where a duration goes is an error, not milliseconds", () => {
  const text = withReplaced(
    "route: { cluster_name: serverCluster }",
    "route: { cluster_name: serverCluster, timeout: 2 }",
  );
  const error = assertConfigError(text, {
    line: lineOf(text, "timeout: 2"),
    path: `${ROUTE}.route.timeout`,
    problem: /expected a duration such as "2s" or "500ms", got 2 \(a number needs a unit/,
  });
  assert.equal(
    error.message,
    `${FILE}:${lineOf(text, "timeout: 2")}: ${ROUTE}.route.timeout: ` +
      'expected a duration such as "2s" or "500ms", got 2 (a number needs a unit: ns, us, ms, s, m or h)',
  );
});

Deno.test("a route regex that does not compile is an error", () => {
  const text = withReplaced("match: { prefix: / }", 'match: { regex: "/api/([a-z+" }');
  assertConfigError(text, {
    line: lineOf(text, "regex:"),
    path: `${ROUTE}.match.regex`,
    problem: /expected a valid regular expression, got "\/api\/\(\[a-z\+"/,
  });
});

Deno.test("a header matcher with regex: true must compile too", () => {
  const text = withReplaced(
    "match: { prefix: / }",
    'match: { prefix: /, headers: [{ name: x-v, value: "(", regex: true }] }',
  );
  assertConfigError(text, {
    line: lineOf(text, "x-v"),
    path: `${ROUTE}.match.headers[0].value`,
    problem: /expected a valid regular expression \(regex: true\), got "\("/,
  });
});

Deno.test("a match with both prefix and path is ambiguous", () => {
  const text = withReplaced("match: { prefix: / }", "match: { prefix: /, path: /a }");
  assertConfigError(text, {
    line: lineOf(text, "match:"),
    path: `${ROUTE}.match`,
    problem: /expected only one of prefix, path or regex, got prefix and path/,
  });
});

Deno.test("a route with both route and direct_response is an error", () => {
  const text = withReplaced(
    "route: { cluster_name: serverCluster }",
    "route: { cluster_name: serverCluster }\n                direct_response: { status: 200 }",
  );
  assertConfigError(text, {
    line: lineOf(text, "match: { prefix"),
    path: ROUTE,
    problem: /expected either "route" or "direct_response", got both/,
  });
});

Deno.test("a route with neither route nor direct_response is an error", () => {
  const text = withReplaced(
    "route: { cluster_name: serverCluster }",
    "redirect: { path_redirect: /b }",
  );
  assertConfigError(text, {
    line: lineOf(text, "match: { prefix"),
    path: ROUTE,
    problem: /expected "route" or "direct_response", got neither/,
  });
});

Deno.test("a direct response status outside 100..599 is an error", () => {
  const text = withReplaced(
    "route: { cluster_name: serverCluster }",
    "direct_response: { status: 700, body: no }",
  );
  assertConfigError(text, {
    line: lineOf(text, "status: 700"),
    path: `${ROUTE}.direct_response.status`,
    problem: /expected an integer from 100 to 599, got 700/,
  });
});

Deno.test("two clusters with the same name are an error", () => {
  const text = `${BASE.replace(/admin:[\s\S]*/, "")}    - name: serverCluster
      hosts: [{ address: 127.0.0.1:8081 }]
`;
  assertConfigError(text, {
    line: lineOf(text, "- name: serverCluster", lineOf(text, "- name: serverCluster")),
    path: "cluster_manager.clusters[1].name",
    problem:
      /duplicate cluster name "serverCluster"; first defined at cluster_manager\.clusters\[0\]/,
  });
});

Deno.test("two routers with the same name are an error", () => {
  const text = withReplaced(
    "    listeners:",
    "      - router_config_name: server_router\n    listeners:",
  );
  assertConfigError(text, {
    line: lineOf(text, "router_config_name: server_router", 4),
    path: "servers[0].routers[1].router_config_name",
    problem: /duplicate router name "server_router"/,
  });
});

Deno.test("a host weight outside 1..128 is an error", () => {
  const text = withReplaced("weight: 1", "weight: 200");
  assertConfigError(text, {
    line: lineOf(text, "weight: 200"),
    path: `${CLUSTER}.hosts[0].weight`,
    problem: /expected an integer from 1 to 128, got 200/,
  });
});

Deno.test("an upstream host needs a real port, not 0", () => {
  const text = withReplaced("address: 127.0.0.1:8080", "address: 127.0.0.1:0");
  assertConfigError(text, {
    line: lineOf(text, "127.0.0.1:0"),
    path: `${CLUSTER}.hosts[0].address`,
    problem: /expected host:port with a port from 1 to 65535, got "127\.0\.0\.1:0"/,
  });
});

Deno.test("an admin address that is neither host:port nor socket_address is an error", () => {
  const text = withReplaced("address: 127.0.0.1:34901", "address: localhost");
  assertConfigError(text, {
    line: lineOf(text, "address: localhost"),
    path: "admin.address",
    problem:
      /expected host:port or \{ socket_address: \{ address, port_value \} \}, got "localhost"/,
  });
});

Deno.test("an admin socket_address with a bad port points into the socket_address", () => {
  const text = withReplaced(
    "address: 127.0.0.1:34901",
    "address:\n    socket_address: { address: 127.0.0.1, port_value: 70000 }",
  );
  assertConfigError(text, {
    line: lineOf(text, "port_value"),
    path: "admin.address.socket_address.port_value",
    problem: /expected a port from 0 to 65535, got 70000/,
  });
});

Deno.test("a log level MOSN does not have lists MOSN's levels", () => {
  const text = withReplaced("default_log_level: INFO", "default_log_level: LOUD");
  assertConfigError(text, {
    line: lineOf(text, "LOUD"),
    path: "servers[0].default_log_level",
    problem: /expected one of TRACE, DEBUG, INFO, WARN, ERROR, FATAL, got "LOUD"/,
  });
});

Deno.test("a known key with the wrong type is an error, not a warning", () => {
  const text = withReplaced("connect_timeout: 3s", "max_request_per_conn: lots");
  assertConfigError(text, {
    line: lineOf(text, "lots"),
    path: `${CLUSTER}.max_request_per_conn`,
    problem: /expected an integer of at least 0, got "lots"/,
  });
});

Deno.test("a mapping where a list belongs says so", () => {
  const text = withReplaced(
    "hosts:\n        - address: 127.0.0.1:8080\n          weight: 1",
    "hosts:\n        address: 127.0.0.1:8080",
  );
  assertConfigError(text, {
    line: lineOf(text, "address: 127.0.0.1:8080"),
    path: `${CLUSTER}.hosts`,
    problem: /expected a list, got a mapping/,
  });
});

Deno.test("a wildcard in the middle of a domain is an error", () => {
  const text = withReplaced('domains: ["*"]', 'domains: ["api.*"]');
  assertConfigError(text, {
    line: lineOf(text, "api.*"),
    path: "servers[0].routers[0].virtual_hosts[0].domains[0]",
    problem: /expected an exact domain, "\*\.suffix" or "\*", got "api\.\*"/,
  });
});
