import assert from "node:assert/strict";
import { startProxy, writeConfig } from "../../helpers/proxy_process.ts";

const MAIN = new URL("../../../main.ts", import.meta.url).pathname;

async function mosaic(args: string[], flags = ["--allow-read", "--allow-net", "--allow-env"]) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", ...flags, MAIN, ...args],
    env: { NO_COLOR: "1" },
  }).output();
  const decoder = new TextDecoder();
  return { code: out.code, stdout: decoder.decode(out.stdout), stderr: decoder.decode(out.stderr) };
}

Deno.test("check validates a config and prints the narrowest deno run flags", async () => {
  const example = new URL("../../../examples/simple_streamfilter/config.yaml", import.meta.url)
    .pathname;
  const result = await mosaic(["check", example], ["--allow-read"]);
  assert.equal(result.code, 0, result.stderr);
  assert.match(result.stdout, /OK/);
  assert.match(
    result.stdout,
    /^\.\/node_modules\/\.bin\/deno run --allow-net=127\.0\.0\.1:2046,127\.0\.0\.1:8080,127\.0\.0\.1:34901\S* --allow-read=\S*config\.yaml main\.ts /m,
  );
});

Deno.test("the proxy refuses to start on an unknown stream filter type, naming file, line and path", async () => {
  const file = await writeConfig(`servers:
  - routers:
      - router_config_name: r
        virtual_hosts: [{ name: v, domains: ["*"], routers: [{ match: { prefix: / }, direct_response: { status: 200 } }] }]
    listeners:
      - name: l
        address: 127.0.0.1:0
        filter_chains: [{ filters: [{ type: proxy, config: { router_config_name: r } }] }]
        stream_filters:
          - type: demo
            config: { User: admin }
          - type: authz_typo
`);
  const result = await mosaic([file]);
  assert.equal(result.code, 1);
  assert.match(
    result.stderr,
    new RegExp(`${file}:12: servers\\[0\\]\\.listeners\\[0\\]\\.stream_filters\\[1\\]\\.type`),
  );
  assert.match(result.stderr, /authz_typo/);
  assert.match(result.stderr, /demo/, "lists the known types");
});

Deno.test("a filter that rejects its config stops start-up with the filter's reason", async () => {
  const file = await writeConfig(`servers:
  - routers:
      - router_config_name: r
        virtual_hosts: [{ name: v, domains: ["*"], routers: [{ match: { prefix: / }, direct_response: { status: 200 } }] }]
    listeners:
      - name: l
        address: 127.0.0.1:0
        filter_chains: [{ filters: [{ type: proxy, config: { router_config_name: r } }] }]
        stream_filters:
          - type: fault
            config: { abort_percent: 300 }
`);
  const result = await mosaic([file]);
  assert.equal(result.code, 1);
  assert.match(
    result.stderr,
    /:11: servers\[0\]\.listeners\[0\]\.stream_filters\[0\]\.config\.abort_percent: expected a number from 0 to 100, got 300/,
  );
});

Deno.test("MOSN's own JSON config loads unchanged, warning about what Mosaic ignores", async () => {
  const reference = new URL("../../unit/config/testdata/mosn-style-config.json", import.meta.url)
    .pathname;
  const result = await mosaic(["check", reference], ["--allow-read"]);
  assert.equal(result.code, 0, result.stderr);
  assert.match(result.stderr, /conn_buffer_limit_bytes: not implemented by Mosaic, ignored/);
});

Deno.test("with watch: true, an edit of the config file takes over without a signal", async () => {
  const yaml = (body: string) =>
    `watch: true
servers:
  - routers:
      - router_config_name: r
        virtual_hosts: [{ name: v, domains: ["*"], routers: [{ match: { prefix: / }, direct_response: { status: 200, body: "${body}" } }] }]
    listeners:
      - name: l
        address: 127.0.0.1:0
        filter_chains: [{ filters: [{ type: proxy, config: { router_config_name: r } }] }]
`;
  const file = await writeConfig(yaml("first"));
  const proxy = await startProxy(file);
  try {
    const url = `http://${proxy.listeners.get("l")}/`;
    assert.equal(await (await fetch(url)).text(), "first");
    await Deno.writeTextFile(file, yaml("second"));
    let answer = "";
    for (let i = 0; i < 50 && answer !== "second"; i++) {
      await new Promise((r) => setTimeout(r, 100));
      answer = await (await fetch(url)).text();
    }
    assert.equal(answer, "second");
    await Deno.writeTextFile(file, "servers: [oops");
    await proxy.waitForOutput("Reload failed, the running config stays");
    assert.equal(await (await fetch(url)).text(), "second");
  } finally {
    await proxy.stop();
  }
});

const TYPO_BASE = `servers:
  - routers:
      - router_config_name: r
        virtual_hosts: [{ name: v, domains: ["*"], routers: [{ match: { prefix: / }, direct_response: { status: 200 } }] }]
    listeners:
      - name: l
        address: 127.0.0.1:0
        filter_chains: [{ filters: [{ type: proxy, config: { router_config_name: r } }] }]
`;

Deno.test("check and run refuse stream_filter (singular): no proxy without its filters", async () => {
  const file = await writeConfig(
    TYPO_BASE +
      "        stream_filter:\n          - type: demo\n            config: { User: admin }\n",
  );
  try {
    const expected =
      `${file}:9: servers[0].listeners[0].stream_filter: unknown key; did you mean "stream_filters"?`;
    const checked = await mosaic(["check", file], ["--allow-read"]);
    assert.equal(checked.code, 1);
    assert.equal(checked.stderr.trim(), expected);
    const ran = await mosaic([file]);
    assert.equal(ran.code, 1);
    assert.equal(ran.stderr.trim(), `mosaic: ${expected}`);
  } finally {
    await Deno.remove(file.slice(0, file.lastIndexOf("/")), { recursive: true });
  }
});

for (
  const [what, filter, pattern] of [
    [
      "payload_limit with max_entity_sise",
      "- type: payload_limit\n            config: { max_entity_sise: 10 }",
      /:11: servers\[0\]\.listeners\[0\]\.stream_filters\[0\]\.config\.max_entity_sise: unknown key; did you mean "max_entity_size"\?/,
    ],
    [
      "ip_access with 127.0.0.1/33",
      '- type: ip_access\n            config: { rules: [{ action: allow, addrs: ["127.0.0.1/33"] }] }',
      /:11: servers\[0\]\.listeners\[0\]\.stream_filters\[0\]\.config\.rules\[0\]\.addrs\[0\]: expected an address or CIDR/,
    ],
  ] as const
) {
  Deno.test(`check fails as run does on ${what}`, async () => {
    const file = await writeConfig(
      TYPO_BASE + "        stream_filters:\n          " + filter + "\n",
    );
    try {
      const checked = await mosaic(["check", file], ["--allow-read"]);
      assert.equal(checked.code, 1, checked.stdout);
      assert.match(checked.stderr, pattern);
      const ran = await mosaic([file]);
      assert.equal(ran.code, 1);
      assert.match(ran.stderr, pattern);
    } finally {
      await Deno.remove(file.slice(0, file.lastIndexOf("/")), { recursive: true });
    }
  });
}

Deno.test("check imports a module filter and fails on the config its parser refuses", async () => {
  const dir = await Deno.makeTempDir({ prefix: "mosaic-e2e-" });
  try {
    await Deno.writeTextFile(
      `${dir}/strict.ts`,
      `export const createStreamFilterFactory = () => ({ createFilterChain() {} });
createStreamFilterFactory.parseConfig = (config) => {
  if (typeof config?.header !== "string") throw new Error("header: expected a header name");
  return config;
};
`,
    );
    const file = await writeConfig(
      TYPO_BASE.replace(
        "routers: [{ match: { prefix: / }, direct_response: { status: 200 } }]",
        "routers: [{ match: { prefix: / }, direct_response: { status: 200 }, per_filter_config: { module: { header: 7 } } }]",
      ) +
        "        stream_filters:\n          - { type: module, module: ./strict.ts, config: { header: x-a } }\n",
      dir,
    );
    const checked = await mosaic(["check", file], ["--allow-read"]);
    assert.equal(checked.code, 1, checked.stdout);
    assert.match(
      checked.stderr,
      /:4: servers\[0\]\.routers\[0\]\.virtual_hosts\[0\]\.routers\[0\]\.per_filter_config\.module: header: expected a header name/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
