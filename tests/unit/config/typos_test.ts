/**
 * A typo never switches a feature off: keys no one defines stop the load with the
 * nearest known key, while MOSN keys Mosaic does not implement are warned about; filter
 * configs and every per_filter_config are parsed at load.
 */
import assert from "node:assert/strict";
import { BUILTIN_STREAM_FILTERS } from "../../../extensions/builtin.ts";
import type { LoadOptions } from "../../../src/config/load.ts";
import { parseConfig } from "../../../src/config/load.ts";
import { assertConfigError, BASE, FILE, lineOf, withReplaced } from "./_fixtures.ts";

const BUILTINS = new Map(BUILTIN_STREAM_FILTERS);
const OPTIONS: LoadOptions = {
  isKnownFilterType: (type) => BUILTINS.has(type),
  knownFilterTypes: () => BUILTINS.keys(),
  filterConfigParser: (type) => BUILTINS.get(type)?.parseConfig,
};
const LISTENER = "servers[0].listeners[0]";
const ROUTE = "servers[0].routers[0].virtual_hosts[0].routers[0]";

Deno.test("stream_filter (singular) is an error naming stream_filters, not a warning", () => {
  const text = withReplaced("        stream_filters:", "        stream_filter:");
  const error = assertConfigError(text, {
    line: lineOf(text, "stream_filter:"),
    path: `${LISTENER}.stream_filter`,
    problem: /^.*: unknown key; did you mean "stream_filters"\?$/,
  }, OPTIONS);
  assert.equal(
    error.message,
    `${FILE}:${
      lineOf(text, "stream_filter:")
    }: ${LISTENER}.stream_filter: unknown key; did you mean "stream_filters"?`,
  );
});

Deno.test("conifg: on a stream filter is an error naming config", () => {
  const text = withReplaced("config: { User: admin }", "conifg: { User: admin }");
  assertConfigError(text, {
    line: lineOf(text, "conifg:"),
    path: `${LISTENER}.stream_filters[0].conifg`,
    problem: /unknown key; did you mean "config"\?/,
  }, OPTIONS);
});

Deno.test("timout: on a route is an error naming timeout", () => {
  const text = withReplaced(
    "route: { cluster_name: serverCluster }",
    "route: { cluster_name: serverCluster, timout: 2s }",
  );
  assertConfigError(text, {
    line: lineOf(text, "timout"),
    path: `${ROUTE}.route.timout`,
    problem: /unknown key; did you mean "timeout"\?/,
  }, OPTIONS);
});

Deno.test("cluster_nmae is named in the error, with the key it was meant to be", () => {
  const text = withReplaced(
    "route: { cluster_name: serverCluster }",
    "route: { cluster_nmae: serverCluster }",
  );
  assertConfigError(text, {
    line: lineOf(text, "cluster_nmae"),
    path: `${ROUTE}.route.cluster_nmae`,
    problem: /unknown key; did you mean "cluster_name"\?/,
  }, OPTIONS);
});

Deno.test("a key far from every known one lists the keys of its place", () => {
  const text = withReplaced("admin:\n", "zzzzzz: 1\nadmin:\n");
  assertConfigError(text, {
    line: lineOf(text, "zzzzzz"),
    path: "zzzzzz",
    problem: /unknown key; the keys here are servers, cluster_manager, admin/,
  }, OPTIONS);
});

Deno.test("MOSN keys Mosaic does not implement still only warn", () => {
  const text = withReplaced(
    "        address: 127.0.0.1:2046",
    "        address: 127.0.0.1:2046\n        bind_port: true",
  ) +
    "tracing: { enable: true }\n";
  const { warnings } = parseConfig(text, FILE, OPTIONS);
  assert.deepEqual(warnings, [
    `${FILE}:${
      lineOf(text, "bind_port")
    }: ${LISTENER}.bind_port: not implemented by Mosaic, ignored`,
    `${FILE}:${lineOf(text, "tracing")}: tracing: not implemented by Mosaic, ignored`,
  ]);
});

Deno.test("a bad built-in filter config fails the load with the field's line and path", () => {
  const text = withReplaced(
    "          - type: demo\n            config: { User: admin }",
    "          - type: payload_limit\n            config:\n              max_entity_sise: 10",
  );
  assertConfigError(text, {
    line: lineOf(text, "max_entity_sise"),
    path: `${LISTENER}.stream_filters[0].config.max_entity_sise`,
    problem: /unknown key; did you mean "max_entity_size"\?/,
  }, OPTIONS);
});

Deno.test("an ip_access CIDR with a /33 prefix fails the load", () => {
  const text = withReplaced(
    "          - type: demo\n            config: { User: admin }",
    "          - type: ip_access\n            config:\n              rules:\n" +
      '                - { action: allow, addrs: ["127.0.0.1/33"] }',
  );
  assertConfigError(text, {
    line: lineOf(text, "127.0.0.1/33"),
    path: `${LISTENER}.stream_filters[0].config.rules[0].addrs[0]`,
    problem: /expected an address or CIDR .*got "127.0.0.1\/33"/,
  }, OPTIONS);
});

Deno.test("a bad per_filter_config fails the load with its line and path", () => {
  const text = withReplaced(
    "route: { cluster_name: serverCluster }",
    "route: { cluster_name: serverCluster }\n                per_filter_config:\n" +
      "                  demo: { User: [admin] }",
  );
  assertConfigError(text, {
    line: lineOf(text, "demo: { User: [admin] }"),
    path: `${ROUTE}.per_filter_config.demo.User`,
    problem: /expected a string, got \["admin"\]/,
  }, OPTIONS);
});

Deno.test("a per_filter_config naming no filter is an error naming the nearest filter", () => {
  const text = withReplaced(
    "route: { cluster_name: serverCluster }",
    "route: { cluster_name: serverCluster }\n                per_filter_config:\n" +
      "                  dmeo: { User: root }",
  );
  assertConfigError(text, {
    line: lineOf(text, "dmeo"),
    path: `${ROUTE}.per_filter_config.dmeo`,
    problem: /no stream filter named "dmeo" on listener "serverListener".*did you mean "demo"\?/,
  }, OPTIONS);
});

Deno.test("parsed configs ride along in the loaded config for the filters to use", () => {
  const text = withReplaced(
    "route: { cluster_name: serverCluster }",
    "route: { cluster_name: serverCluster }\n                per_filter_config:\n" +
      "                  demo: { User: root }",
  );
  const { config } = parseConfig(text, FILE, OPTIONS);
  const filter = config.listeners[0].streamFilters[0];
  assert.deepEqual(filter.parsedConfig?.value, [["user", "admin"]]);
  assert.equal(filter.overrides?.length, 1);
  const route = config.routers.get("server_router")!.virtualHosts[0].routes[0];
  assert.equal(filter.overrides![0].config, route.perFilterConfig.demo);
  assert.deepEqual(filter.overrides![0].parsed?.value, [["user", "root"]]);
  void BASE;
});

Deno.test("an unquoted * domain gets the hint to quote it", () => {
  const text = withReplaced('domains: ["*"]', "domains: [*]");
  assertConfigError(text, {
    line: lineOf(text, "domains: [*]"),
    path: "",
    problem: /Alias cannot be an empty string \(a value starting with \* is a YAML alias: quote/,
  }, OPTIONS);
});

Deno.test("a host address that is no IPv4 address, or a port above 65535, says why", () => {
  let text = withReplaced("address: 127.0.0.1:8080", "address: 127.0.0.300:8080");
  assertConfigError(text, {
    line: lineOf(text, "127.0.0.300"),
    path: "cluster_manager.clusters[0].hosts[0].address",
    problem:
      /got "127.0.0.300:8080": "127.0.0.300" is not an IPv4 address \(four parts, each 0 to 255\)/,
  }, OPTIONS);
  text = withReplaced("address: 127.0.0.1:2046", "address: 127.0.0.1:70000");
  assertConfigError(text, {
    line: lineOf(text, "70000"),
    path: `${LISTENER}.address`,
    problem: /got "127.0.0.1:70000": port 70000 is above 65535/,
  }, OPTIONS);
});
