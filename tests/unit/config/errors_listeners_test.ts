import assert from "node:assert/strict";
import { ConfigError } from "../../../src/config/errors.ts";
import { loadConfig } from "../../../src/config/load.ts";
import { assertConfigError, FILE, lineOf, withReplaced } from "./_fixtures.ts";

const LISTENER = "servers[0].listeners[0]";
const FILTER = `${LISTENER}.stream_filters[0]`;

const SECOND_LISTENER = `      - name: otherListener
        address: 127.0.0.1:2046
        filter_chains:
          - filters:
              - type: proxy
                config: { router_config_name: server_router }
cluster_manager:`;

Deno.test("a listener address that is not host:port names the field and the bad value", () => {
  const text = withReplaced("address: 127.0.0.1:2046", "address: 2046x");
  assertConfigError(text, {
    line: lineOf(text, "2046x"),
    path: `${LISTENER}.address`,
    problem: /expected host:port, got "2046x"$/,
  });
});

Deno.test("a listener without an address says the address is missing", () => {
  const text = withReplaced("        address: 127.0.0.1:2046\n", "");
  assertConfigError(text, {
    line: lineOf(text, "name: serverListener"),
    path: `${LISTENER}.address`,
    problem: /expected host:port, got nothing/,
  });
});

Deno.test("a proxy filter naming an undefined router lists the defined routers", () => {
  const text = withReplaced(
    "config: { router_config_name: server_router }",
    "config: { router_config_name: other_router }",
  );
  assertConfigError(text, {
    line: lineOf(text, "other_router"),
    path: `${LISTENER}.filter_chains[0].filters[0].config.router_config_name`,
    problem: /unknown router "other_router"; defined routers: "server_router"/,
  });
});

Deno.test("an unknown stream filter type stops the load and lists the known types", () => {
  const text = withReplaced("- type: demo", "- type: demox");
  const known = ["demo", "fault"];
  assertConfigError(text, {
    line: lineOf(text, "type: demox"),
    path: `${FILTER}.type`,
    problem: /unknown stream filter type "demox"; known types: "demo", "fault", "module", "plugin"/,
  }, { isKnownFilterType: (t) => known.includes(t), knownFilterTypes: () => known });
});

Deno.test("type: module without a module says what is missing", () => {
  const text = withReplaced("- type: demo", "- type: module");
  assertConfigError(text, {
    line: lineOf(text, "type: module"),
    path: `${FILTER}.module`,
    problem: /missing; type: module needs the module's URL or path/,
  });
});

Deno.test("a module with a scheme other than file, http or https is an error", () => {
  const text = withReplaced("- type: demo", "- type: module\n            module: npm:@x/filter");
  assertConfigError(text, {
    line: lineOf(text, "npm:"),
    path: `${FILTER}.module`,
    problem: /expected a path or a file:, http: or https: URL, got "npm:@x\/filter"/,
  });
});

Deno.test("an integrity that is not sha256-<base64 of 32 bytes> is an error", () => {
  const text = withReplaced(
    "- type: demo",
    "- type: module\n            module: ./auth.ts\n            integrity: sha256-abc",
  );
  assertConfigError(text, {
    line: lineOf(text, "integrity"),
    path: `${FILTER}.integrity`,
    problem:
      /expected "sha256-" and the base64 of a 32-byte SHA-256 digest \(44 characters\), got "sha256-abc"/,
  });
});

Deno.test("a sandbox on a filter that is not a module is an error, not ignored", () => {
  const text = withReplaced("config: { User: admin }", "sandbox: { isolation: worker }");
  assertConfigError(text, {
    line: lineOf(text, "sandbox"),
    path: `${FILTER}.sandbox`,
    problem: /only applies to type: module; this filter's type is "demo"/,
  });
});

Deno.test("a bad failure_mode names the two modes", () => {
  const text = withReplaced("config: { User: admin }", "failure_mode: maybe");
  assertConfigError(text, {
    line: lineOf(text, "failure_mode"),
    path: `${FILTER}.failure_mode`,
    problem: /expected "open" or "closed", got "maybe"/,
  });
});

Deno.test("a bad failure_mode inside config is found too", () => {
  const text = withReplaced("config: { User: admin }", "config: { failure_mode: sometimes }");
  assertConfigError(text, {
    line: lineOf(text, "sometimes"),
    path: `${FILTER}.config.failure_mode`,
    problem: /expected "open" or "closed", got "sometimes"/,
  });
});

Deno.test("a plugin filter naming an undefined plugin is an error", () => {
  const text = withReplaced(
    "- type: demo\n            config: { User: admin }",
    "- type: plugin\n            config: { plugin: checker }",
  );
  assertConfigError(text, {
    line: lineOf(text, "plugin: checker"),
    path: `${FILTER}.config.plugin`,
    problem: /unknown plugin "checker"; defined plugins: none/,
  });
});

Deno.test("two listeners on the same address are an error naming the first", () => {
  const text = withReplaced("cluster_manager:", SECOND_LISTENER);
  assertConfigError(text, {
    line: lineOf(text, "address: 127.0.0.1:2046", lineOf(text, "otherListener")),
    path: "servers[0].listeners[1].address",
    problem:
      /duplicate listener address 127\.0\.0\.1:2046; already bound by servers\[0\]\.listeners\[0\] \(line 12\)/,
  });
});

Deno.test("two listeners with the same name are an error", () => {
  const text = withReplaced(
    "cluster_manager:",
    SECOND_LISTENER.replace("otherListener", "serverListener").replace(":2046", ":2047"),
  );
  assertConfigError(text, {
    line: lineOf(text, "name: serverListener", lineOf(text, "name: serverListener")),
    path: "servers[0].listeners[1].name",
    problem:
      /duplicate listener name "serverListener"; first defined at servers\[0\]\.listeners\[0\]/,
  });
});

Deno.test("a YAML syntax error gives the file and line", () => {
  const text = withReplaced("lb_type: LB_ROUNDROBIN", "lb_type: LB_ROUNDROBIN: x");
  assertConfigError(text, {
    line: lineOf(text, "lb_type"),
    path: "",
    problem: /invalid YAML: Nested mappings are not allowed in compact mappings/,
  });
});

Deno.test("a repeated key in a mapping is a YAML error", () => {
  const text = withReplaced(
    "lb_type: LB_ROUNDROBIN",
    "lb_type: LB_ROUNDROBIN\n      lb_type: LB_RANDOM",
  );
  assertConfigError(text, {
    line: lineOf(text, "LB_RANDOM"),
    path: "",
    problem: /invalid YAML: Map keys must be unique/,
  });
});

Deno.test("a list at the top level is not a config", () => {
  assertConfigError("- servers: []\n", {
    line: 1,
    path: "(top level)",
    problem: /expected a mapping \(servers, cluster_manager, admin, \.\.\.\), got a list/,
  });
});

Deno.test("an empty file is not a config", () => {
  assertConfigError("# nothing here\n", {
    line: 1,
    path: "(top level)",
    problem: /expected a mapping .*, got null/,
  });
});

Deno.test("a listener with two network filters is an error", () => {
  const text = withReplaced(
    "config: { router_config_name: server_router }",
    "config: { router_config_name: server_router }\n              - type: tcp_proxy\n                config: { cluster: serverCluster }",
  );
  assertConfigError(text, {
    line: lineOf(text, "- filters:") + 1,
    path: `${LISTENER}.filter_chains[0].filters`,
    problem: /expected exactly one network filter \(proxy or tcp_proxy\), got 2/,
  });
});

Deno.test("a network filter type Mosaic does not have is an error", () => {
  const text = withReplaced("- type: proxy", "- type: connection_manager");
  assertConfigError(text, {
    line: lineOf(text, "connection_manager"),
    path: `${LISTENER}.filter_chains[0].filters[0].type`,
    problem: /expected network filter type "proxy" or "tcp_proxy", got "connection_manager"/,
  });
});

Deno.test("a tcp_proxy to an undefined cluster is an error", () => {
  const text = withReplaced(
    "- type: proxy\n                config: { router_config_name: server_router }\n        stream_filters:\n          - type: demo\n            config: { User: admin }",
    "- type: tcp_proxy\n                config: { routes: [{ cluster: nowhere }] }",
  );
  assertConfigError(text, {
    line: lineOf(text, "nowhere"),
    path: `${LISTENER}.filter_chains[0].filters[0].config.routes[0].cluster`,
    problem: /unknown cluster "nowhere"/,
  });
});

Deno.test("stream filters on a tcp_proxy listener are an error, not skipped", () => {
  const text = withReplaced(
    "- type: proxy\n                config: { router_config_name: server_router }",
    "- type: tcp_proxy\n                config: { cluster: serverCluster }",
  );
  assertConfigError(text, {
    line: lineOf(text, "- type: demo"),
    path: `${LISTENER}.stream_filters`,
    problem: /stream filters need the proxy network filter; this listener uses tcp_proxy/,
  });
});

Deno.test("a listener with TLS on and no certificate is an error", () => {
  const text = withReplaced(
    "        stream_filters:",
    "            tls_context: { status: true, private_key: ./key.pem }\n        stream_filters:",
  );
  assertConfigError(text, {
    line: lineOf(text, "tls_context"),
    path: `${LISTENER}.filter_chains[0].tls_context.cert_chain`,
    problem: /missing; a listener with TLS on \(status: true\) needs a certificate chain/,
  });
});

Deno.test("an unreadable config file names the file", async () => {
  const missing = "/nonexistent/mosaic/config.yaml";
  await assert.rejects(loadConfig(missing), (error: unknown) => {
    assert.ok(error instanceof ConfigError);
    assert.equal(error.message, `${missing}: config file not found`);
    assert.equal(error.file, missing);
    return true;
  });
});

Deno.test("messages use the file name as the caller gave it", () => {
  const text = withReplaced("address: 127.0.0.1:2046", "address: nope");
  const error = assertConfigError(text, {
    line: lineOf(text, "address: nope"),
    path: `${LISTENER}.address`,
    problem: /got "nope"/,
  });
  assert.ok(error.message.startsWith(`${FILE}:`));
  assert.equal(error.problem, 'expected host:port, got "nope"');
});

Deno.test("the HTTP server's timeouts on a tcp_proxy listener are refused, not ignored", () => {
  const text = withReplaced(
    "- type: proxy\n                config: { router_config_name: server_router }\n        stream_filters:\n          - type: demo\n            config: { User: admin }",
    "- type: tcp_proxy\n                config: { cluster: serverCluster }",
  ).replace(
    "        address: 127.0.0.1:2046\n",
    "        address: 127.0.0.1:2046\n        connection_idle_timeout: 10s\n",
  );
  assertConfigError(text, {
    line: lineOf(text, "connection_idle_timeout"),
    path: `${LISTENER}.connection_idle_timeout`,
    problem: /needs the proxy network filter; tcp_proxy has idle_timeout in its config/,
  });
});

Deno.test("the HTTP server's timeouts default to nginx's; a set value and 0 (off) are read", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const plain = `${dir}/plain.yaml`;
    await Deno.writeTextFile(
      plain,
      withReplaced("address: 127.0.0.1:2046", "address: 127.0.0.1:2046"),
    );
    const listener = (await loadConfig(plain)).config.listeners[0];
    assert.deepEqual(
      [listener.headerReadTimeoutMs, listener.idleTimeoutMs, listener.bodyReadTimeoutMs],
      [60_000, 75_000, 60_000],
    );
    const tls = `${dir}/tls.yaml`;
    await Deno.writeTextFile(
      tls,
      withReplaced(
        "        address: 127.0.0.1:2046\n",
        "        address: 127.0.0.1:2046\n        header_read_timeout: 10s\n        body_read_timeout: 0s\n",
      ),
    );
    const tlsListener = (await loadConfig(tls)).config.listeners[0];
    assert.equal(tlsListener.headerReadTimeoutMs, 10_000);
    assert.equal(tlsListener.bodyReadTimeoutMs, 0);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
