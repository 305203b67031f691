import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { loadConfig, parseConfig } from "../../../src/config/load.ts";
import { narrowestPermissionFlags } from "../../../src/config/permissions.ts";
import { BASE, withReplaced } from "./_fixtures.ts";

const EXAMPLE = fileURLToPath(
  new URL("../../../examples/simple_streamfilter/config.yaml", import.meta.url),
);

Deno.test("the example needs only its addresses and its own file, and no --allow-env", async () => {
  const { config } = await loadConfig(EXAMPLE);
  const flags = narrowestPermissionFlags(config);
  assert.ok(
    flags[0].startsWith("--allow-net=127.0.0.1:2046,127.0.0.1:8080,127.0.0.1:34901"),
    flags.join(" "),
  );
  assert.deepEqual(flags.slice(1), [`--allow-read=${EXAMPLE}`]);
});

Deno.test("TLS files, modules, log files and plugins each add the flag they need", () => {
  const text = withReplaced(
    "        stream_filters:\n          - type: demo\n            config: { User: admin }",
    `            tls_context:
              status: true
              cert_chain: certs/cert.pem
              private_key: "-----BEGIN PRIVATE KEY-----\\nabc\\n-----END PRIVATE KEY-----"
        stream_filters:
          - { type: module, module: ./filters/auth.ts }
          - { type: module, name: b, module: ./filters/other.ts }
          - type: module
            name: remote
            module: https://filters.example.com/auth.ts
            integrity: sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=
          - { type: module, name: plain, module: "http://127.0.0.1:4507/f.ts" }
          - type: module
            name: boxed
            module: /opt/f/boxed.ts
            sandbox: { isolation: worker, permissions: { net: [api.example.com:443], env: [HOME] } }
          - { type: plugin, config: { plugin: checker } }
        access_logs: [{ log_path: logs/access.log }, { log_path: stdout }]`,
  ).replace(
    "default_log_level: INFO",
    "default_log_level: INFO\n    default_log_path: logs/error.log",
  ) +
    `plugins:
  checker: { command: [python3, ./checker.py], network: tcp }
  local: { command: ./bin/agent, cwd: /opt/agent, network: tcp }
`;
  const { config } = parseConfig(text, "/etc/mosaic/config.yaml");
  assert.deepEqual(narrowestPermissionFlags(config), [
    "--allow-net=127.0.0.1:2046,127.0.0.1:8080,127.0.0.1:34901,127.0.0.1,filters.example.com:443,api.example.com:443",
    "--allow-read=/etc/mosaic/config.yaml,/etc/mosaic/certs/cert.pem,/etc/mosaic/filters,/opt/f",
    "--allow-write=/etc/mosaic/logs/error.log,/etc/mosaic/logs/access.log",
    "--allow-import=filters.example.com:443,127.0.0.1:4507",
    "--allow-run=python3,/opt/agent/bin/agent",
    "--allow-env=HOME",
  ]);
});

Deno.test("repeated addresses appear once and port 0 binds allow the whole host", () => {
  const text = withReplaced("address: 127.0.0.1:2046", "address: 127.0.0.1:0")
    .replace("address: 127.0.0.1:34901", "address: 127.0.0.1:8080")
    .replace(
      "          weight: 1",
      "          weight: 1\n        - address: 127.0.0.1:8080\n          weight: 2",
    );
  const { config } = parseConfig(text, "/c.yaml");
  assert.deepEqual(narrowestPermissionFlags(config), [
    "--allow-net=127.0.0.1,127.0.0.1:8080",
    "--allow-read=/c.yaml",
  ]);
});

Deno.test("a sandbox granted everything makes the flag unrestricted", () => {
  const text = withReplaced(
    "- type: demo\n            config: { User: admin }",
    "- { type: module, module: /m/f.ts, sandbox: { permissions: { net: true } } }",
  );
  const flags = narrowestPermissionFlags(parseConfig(text, "/c.yaml").config);
  assert.deepEqual(flags, [
    "--allow-net",
    "--allow-read=/c.yaml,/m",
  ]);
});

Deno.test("a config with only the basics asks for no write, import, run or env", () => {
  const flags = narrowestPermissionFlags(parseConfig(BASE, "/c.yaml").config);
  assert.ok(
    flags.every((f) => f.startsWith("--allow-net=") || f.startsWith("--allow-read=")),
    flags.join(" "),
  );
});

Deno.test("watch: true adds read access to the config's folder, which the watcher watches", () => {
  const flags = narrowestPermissionFlags(
    parseConfig(`watch: true\n${BASE}`, "/etc/m/c.yaml").config,
  );
  assert.ok(flags.includes("--allow-read=/etc/m/c.yaml,/etc/m"), flags.join(" "));
});

Deno.test("a unix-socket plugin needs all of --allow-net, plus the temp directory", () => {
  const { config } = parseConfig(
    BASE + "plugins:\n  checker: { command: [python3, ./checker.py], network: unix }\n",
    "/etc/mosaic/config.yaml",
  );
  const flags = narrowestPermissionFlags(config);
  assert.equal(flags[0], "--allow-net");
  assert.ok(flags.includes("--allow-write=/tmp"), flags.join(" "));
  assert.ok(flags.some((f) => f.startsWith("--allow-read=") && f.endsWith(",/tmp")));
});

Deno.test("a registered filter's declared permissions are printed: lua's wasm and script files", async () => {
  const { BUILTIN_STREAM_FILTERS } = await import("../../../extensions/builtin.ts");
  const lua = new Map(BUILTIN_STREAM_FILTERS).get("lua")!;
  const dir = await Deno.makeTempDir({ prefix: "mosaic-permissions-" });
  try {
    await Deno.writeTextFile(`${dir}/f.lua`, "function envoy_on_request(h) end\n");
    await Deno.writeTextFile(`${dir}/config.yaml`, "{}\n");
    const parsed = lua.parseConfig!({ source_file: "f.lua" }, {
      name: "lua",
      source: "config",
      configFile: `${dir}/config.yaml`,
    });
    const config = parseConfig(BASE, `${dir}/config.yaml`).config;
    const filter = { ...config.listeners[0].streamFilters[0], type: "lua" };
    const flags = narrowestPermissionFlags(
      { ...config, listeners: [{ ...config.listeners[0], streamFilters: [filter] }] },
      { filterPermissions: () => lua.permissions!(parsed) },
    );
    const read = flags.find((f) => f.startsWith("--allow-read="))!;
    assert.match(read, /node_modules\/wasmoon\/dist\/glue\.wasm/);
    assert.ok(read.includes(`${dir}/f.lua`), read);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
