/**
 * Certificate providers through the real proxy process: the `plugin` provider with the
 * example cert_loader in TypeScript and Python, provider failures at start-up (the
 * process stops and names the provider and where), and on refresh and SIGHUP (the old
 * certificate stays, and the log says why).
 */

import assert from "node:assert/strict";
import { makeTestPki, type TestPki } from "../../helpers/certs.ts";
import { startProxy, writeConfig } from "../../helpers/proxy_process.ts";
import {
  countLines,
  curl,
  DIRECT_ROUTE,
  eventually,
  fingerprint,
  servedFingerprint,
  tlsYaml,
} from "./helpers.ts";
import { startRequestLoop } from "./load_loop.ts";

const ROOT = new URL("../../../", import.meta.url).pathname;
const EXAMPLE = `${ROOT}examples/cert_loader`;
const PLUGIN_FLAGS = [
  "--allow-net",
  "--allow-read",
  "--allow-write",
  "--allow-run",
  "--allow-env",
];
const first = await makeTestPki();
const second = await makeTestPki();

/** The example's plugin commands, reading certificates from `dir`. */
const LOADERS = {
  typescript: (dir: string) => `[node, ${EXAMPLE}/build/cert_loader.mjs, -d, ${dir}]`,
  python: (dir: string) => `[/usr/bin/python3, ${EXAMPLE}/python/cert_loader.py, -d, ${dir}]`,
};

async function setupExample(): Promise<void> {
  const out = await new Deno.Command("sh", {
    args: [`${EXAMPLE}/setup.sh`],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = (b: Uint8Array) => new TextDecoder().decode(b);
  assert.ok(out.success, `cert_loader/setup.sh failed:\n${text(out.stdout)}${text(out.stderr)}`);
}

/** Copies a PKI's server certificate, key and CA where the loader reads them. */
async function install(dir: string, pki: TestPki): Promise<void> {
  const files = [[pki.serverCert, "server.crt"], [pki.serverKey, "server.key"], [
    pki.caCert,
    "ca.crt",
  ]];
  for (const [text, name] of files) {
    await Deno.writeTextFile(`${dir}/${name}.tmp`, text);
    await Deno.rename(`${dir}/${name}.tmp`, `${dir}/${name}`);
  }
}

function pluginYaml(language: keyof typeof LOADERS, dir: string, refresh = ""): string {
  return tlsYaml({
    tls: `{ status: true, type: plugin, extend_verify: { plugin: loader, timeout: 5s${refresh} } }`,
    routes: [DIRECT_ROUTE],
    topLevel: `plugins:\n  loader:\n    command: ${LOADERS[language](dir)}\n    network: unix\n`,
  });
}

/** The 1-based line of the first line of `yaml` that contains `text`. */
function lineOf(yaml: string, text: string): number {
  return yaml.split("\n").findIndex((line) => line.includes(text)) + 1;
}

await setupExample();

for (const language of ["typescript", "python"] as const) {
  Deno.test(`the plugin provider serves the certificate from the ${language} cert_loader`, async () => {
    const dir = await Deno.makeTempDir({ prefix: "mosaic-certs-" });
    await install(dir, first);
    const proxy = await startProxy(await writeConfig(pluginYaml(language, dir)), {
      flags: PLUGIN_FLAGS,
    });
    try {
      const address = proxy.listeners.get("l")!;
      const port = address.split(":")[1];
      const plain = await curl([`http://127.0.0.1:${port}/`]);
      assert.notEqual(plain.code, 0, "http:// to the TLS port must fail");
      const untrusted = await curl([`https://127.0.0.1:${port}/`]);
      assert.equal(untrusted.code, 60, untrusted.stderr);
      const trusted = await curl([
        "--cacert",
        first.paths.caCert,
        "-w",
        " %{http_code}",
        `https://127.0.0.1:${port}/`,
      ]);
      assert.equal(trusted.stdout, "hello over tls 200");
      assert.equal(await servedFingerprint(address, [first.caCert]), fingerprint(first.serverCert));
    } finally {
      await proxy.stop();
      await Deno.remove(dir, { recursive: true });
    }
  });
}

Deno.test("a provider that fails at start-up stops start-up, naming it and where", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "mosaic-certs-" });
  try {
    await t.step("file: a missing key file", async () => {
      const yaml = tlsYaml({
        tls:
          `{ status: true, cert_chain: ${first.paths.serverCert}, private_key: ${dir}/nokey.pem }`,
        routes: [DIRECT_ROUTE],
      });
      const file = await writeConfig(yaml);
      const proxy = await startProxy(file, { args: ["run"] });
      const status = await proxy.status;
      assert.equal(status.code, 1);
      const where = `${file}:${lineOf(yaml, "tls_context")}: ` +
        "servers[0].listeners[0].filter_chains[0].tls_context";
      assert.ok(
        proxy.output().includes(
          `${where}: certificate provider "file" failed: private_key: cannot read ${dir}/nokey.pem`,
        ),
        proxy.output(),
      );
    });
    await t.step("plugin: the loader refuses (no certificate in its folder)", async () => {
      const yaml = pluginYaml("typescript", dir);
      const file = await writeConfig(yaml);
      const proxy = await startProxy(file, { args: ["run"], flags: PLUGIN_FLAGS });
      const status = await proxy.status;
      assert.equal(status.code, 1);
      assert.match(
        proxy.output(),
        new RegExp(
          `config\\.yaml:${lineOf(yaml, "tls_context")}: servers\\[0\\]\\.listeners\\[0\\]` +
            `\\.filter_chains\\[0\\]\\.tls_context: certificate provider "plugin" failed: ` +
            `plugin "loader" answered status -1`,
        ),
      );
      assert.doesNotMatch(proxy.output(), /Mosaic running/);
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a refresh that fails keeps the certificate and says why; the next one rotates with no failed request", async () => {
  const dir = await Deno.makeTempDir({ prefix: "mosaic-certs-" });
  await install(dir, first);
  const proxy = await startProxy(
    await writeConfig(pluginYaml("typescript", dir, ", refresh: 300ms")),
    { flags: PLUGIN_FLAGS },
  );
  const address = proxy.listeners.get("l")!;
  const cas = [first.caCert, second.caCert];
  const loop = startRequestLoop({
    hostname: "localhost",
    port: Number(address.split(":")[1]),
    caCerts: cas,
  });
  try {
    await Deno.remove(`${dir}/server.key`);
    const kept =
      /Listener "l" keeps its certificate: .*certificate provider "plugin" failed: plugin "loader" answered status -1/;
    await eventually(() => countLines(proxy.output(), kept) >= 2, "two failed refreshes logged");
    assert.equal(await servedFingerprint(address, cas), fingerprint(first.serverCert));

    await install(dir, second);
    const rotated = /Listener "l" serves a new certificate \(refresh\)/;
    await eventually(() => countLines(proxy.output(), rotated) === 1, "the refresh that rotates");
    assert.equal(await servedFingerprint(address, cas), fingerprint(second.serverCert));
    const seen = loop.ok;
    await eventually(() => loop.ok > seen + 50, "requests after the rotation");
    const result = await loop.stop();
    assert.deepEqual(result.failures, [], `${result.failures.length} of ${result.ok} failed`);
    // The material did not change between refreshes after that: no second rotation.
    assert.equal(countLines(proxy.output(), rotated), 1);
  } finally {
    await loop.stop();
    await proxy.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("SIGHUP with an unreadable certificate file keeps the certificate and says why", async () => {
  const dir = await Deno.makeTempDir({ prefix: "mosaic-certs-" });
  await install(dir, first);
  const file = await writeConfig(
    tlsYaml({
      tls: "{ status: true, cert_chain: server.crt, private_key: server.key }",
      routes: [DIRECT_ROUTE],
    }),
    dir,
  );
  const proxy = await startProxy(file);
  try {
    const address = proxy.listeners.get("l")!;
    await Deno.remove(`${dir}/server.key`);
    proxy.kill("SIGHUP");
    await proxy.waitForOutput(/Reloaded/);
    assert.match(
      proxy.output(),
      /Listener "l" keeps its certificate: .*certificate provider "file" failed: private_key: cannot read/,
    );
    assert.equal(await servedFingerprint(address, [first.caCert]), fingerprint(first.serverCert));
  } finally {
    await proxy.stop();
    await Deno.remove(dir, { recursive: true });
  }
});
