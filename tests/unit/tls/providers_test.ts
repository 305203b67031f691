import { testTlsContext } from "./tls_context.ts";
import assert from "node:assert/strict";
import { createCertificateProvider as createFileProvider } from "../../../extensions/cert_providers/file/mod.ts";
import { createCertificateProvider as createPluginProvider } from "../../../extensions/cert_providers/plugin/mod.ts";
import { ConfigError } from "../../../src/config/errors.ts";
import type { TlsContextConfig } from "../../../src/config/types.ts";
import type { PluginCaller, PluginRequest, PluginResponse } from "../../../src/filter/api.ts";
import { CertificateProviderError } from "../../../src/tls/errors.ts";
import { createTlsProvider, resolveTlsMaterial } from "../../../src/tls/material.ts";
import {
  getCertificateProvider,
  registerCertificateProvider,
  registeredCertificateProviders,
} from "../../../src/tls/providers.ts";
import { makeTestPki } from "../../helpers/certs.ts";

const pki = await makeTestPki();

// The registry is per process: register the built-ins once, as main.ts does.
if (getCertificateProvider("file") === undefined) {
  registerCertificateProvider("file", createFileProvider);
  registerCertificateProvider("plugin", createPluginProvider);
}

function tlsContext(overrides: Partial<TlsContextConfig> = {}): TlsContextConfig {
  return testTlsContext(`${pki.dir}/config.yaml`, {
    position: {
      file: `${pki.dir}/config.yaml`,
      line: 12,
      path: "servers[0].listeners[0].filter_chains[0].tls_context",
    },
    ...overrides,
  });
}

/** A stand-in for the plugin host: records calls and answers what the test says. */
class FakePlugins implements PluginCaller {
  calls: { name: string; request: PluginRequest; timeoutMs?: number }[] = [];
  constructor(readonly answer: (name: string) => PluginResponse | Promise<PluginResponse>) {}
  async call(name: string, request: PluginRequest, options?: { timeoutMs?: number }) {
    this.calls.push({ name, request, timeoutMs: options?.timeoutMs });
    return await this.answer(name);
  }
}

const noPlugins = new FakePlugins((name) => {
  throw new Error(`unknown plugin "${name}"`);
});

function jsonAnswer(body: unknown, status = 0): PluginResponse {
  return {
    header: {},
    trailer: {},
    body: new TextEncoder().encode(JSON.stringify(body)),
    status,
  };
}

Deno.test("registering a provider name twice fails with a clear error", () => {
  assert.throws(
    () => registerCertificateProvider("file", createFileProvider),
    { message: 'Cannot register certificate provider "file": the name is already registered' },
  );
  assert.throws(() => registerCertificateProvider("", createFileProvider), /non-empty string/);
  assert.deepEqual(
    registeredCertificateProviders().filter((n) => n === "file" || n === "plugin"),
    ["file", "plugin"],
  );
});

Deno.test("a third-party provider is chosen by type and receives extend_verify", async () => {
  let seen: unknown;
  registerCertificateProvider("test-static", (config) => {
    seen = config;
    return { fetch: () => Promise.resolve({ cert: pki.serverCert, key: pki.serverKey }) };
  });
  const material = await resolveTlsMaterial(
    tlsContext({ type: "test-static", extendVerify: { vault: "x" } }),
    { plugins: noPlugins },
  );
  assert.deepEqual(seen, { vault: "x" });
  assert.equal(material.cert, pki.serverCert);
});

Deno.test("the file provider reads PEM from paths relative to the config file", async () => {
  const material = await resolveTlsMaterial(
    tlsContext({ certChain: "server.crt", privateKey: "server.key", caCert: pki.paths.caCert }),
    { plugins: noPlugins },
  );
  assert.equal(material.cert, pki.serverCert);
  assert.equal(material.key, pki.serverKey);
  assert.equal(material.ca, pki.caCert);
});

Deno.test("the file provider takes inline PEM text", async () => {
  const material = await resolveTlsMaterial(
    tlsContext({ type: "", certChain: pki.serverCert, privateKey: pki.serverKey }),
    { plugins: noPlugins },
  );
  assert.equal(material.cert, pki.serverCert);
  assert.equal(material.key, pki.serverKey);
  assert.equal(material.ca, undefined);
});

Deno.test("a missing certificate file names the provider, the position and the cause", async () => {
  await assert.rejects(
    resolveTlsMaterial(
      tlsContext({ certChain: "missing.crt", privateKey: "server.key" }),
      { plugins: noPlugins },
    ),
    (error: unknown) => {
      assert.ok(error instanceof CertificateProviderError);
      assert.equal(error.provider, "file");
      assert.match(
        error.message,
        new RegExp(
          `^${pki.dir}/config\\.yaml:12: servers\\[0\\]\\.listeners\\[0\\]\\.filter_chains\\[0\\]\\.tls_context: ` +
            `certificate provider "file" failed: cert_chain: cannot read ${pki.dir}/missing\\.crt: `,
        ),
      );
      return true;
    },
  );
});

Deno.test("a key where the certificate belongs is caught by the file provider", async () => {
  await assert.rejects(
    resolveTlsMaterial(tlsContext({ certChain: "server.key", privateKey: "server.key" }), {
      plugins: noPlugins,
    }),
    /certificate provider "file" failed: cert_chain: file .*server\.key holds no "CERTIFICATE" PEM block/,
  );
  await assert.rejects(
    resolveTlsMaterial(tlsContext({ certChain: "server.crt" }), { plugins: noPlugins }),
    /certificate provider "file" failed: private_key: required/,
  );
});

Deno.test("an unknown provider type is a config error listing the registered ones", async () => {
  await assert.rejects(
    createTlsProvider(tlsContext({ type: "nope" }), { plugins: noPlugins }),
    (error: unknown) => {
      assert.ok(error instanceof ConfigError);
      assert.equal(error.path, "servers[0].listeners[0].filter_chains[0].tls_context.type");
      assert.match(
        error.message,
        /:12: .*tls_context\.type: unknown certificate provider "nope" \(registered: .*"file", "plugin"/,
      );
      return true;
    },
  );
});

Deno.test("the plugin provider calls its plugin with an empty request and reads the PEM", async () => {
  const plugins = new FakePlugins(() =>
    jsonAnswer({ cert_pem: pki.serverCert, key_pem: pki.serverKey, ca_pem: pki.caCert })
  );
  const provider = await createTlsProvider(
    tlsContext({
      type: "plugin",
      extendVerify: { plugin: "cert_loader", refresh: "2m", timeout: "1500ms" },
    }),
    { plugins },
  );
  const material = await provider.fetch();
  assert.deepEqual(plugins.calls, [{ name: "cert_loader", request: {}, timeoutMs: 1500 }]);
  assert.deepEqual(material, {
    cert: pki.serverCert,
    key: pki.serverKey,
    ca: pki.caCert,
    refreshAfterMs: 120_000,
  });
  // Each fetch asks the plugin again: that is how refresh and SIGHUP get new certificates.
  await provider.fetch();
  assert.equal(plugins.calls.length, 2);
});

Deno.test("the plugin provider's failures say which plugin and why", async () => {
  const cases: [PluginResponse | Error, RegExp][] = [
    [
      new Error("plugin cert_loader is down"),
      /calling plugin "cert_loader" failed: plugin cert_loader is down/,
    ],
    [jsonAnswer({}, -1), /plugin "cert_loader" answered status -1/],
    [
      { header: {}, trailer: {}, body: new TextEncoder().encode("nope"), status: 0 },
      /answered a body that is not JSON/,
    ],
    [jsonAnswer({ key_pem: pki.serverKey }), /answered no "cert_pem"/],
    [
      jsonAnswer({ cert_pem: pki.serverCert, key_pem: "secret" }),
      /answered a "key_pem" with no "PRIVATE KEY" PEM block/,
    ],
  ];
  for (const [answer, expected] of cases) {
    const plugins = new FakePlugins(() => {
      if (answer instanceof Error) throw answer;
      return answer;
    });
    await assert.rejects(
      resolveTlsMaterial(tlsContext({ type: "plugin", extendVerify: { plugin: "cert_loader" } }), {
        plugins,
      }),
      (error: unknown) => {
        assert.ok(error instanceof CertificateProviderError);
        assert.match(
          error.message,
          /config\.yaml:12: .*tls_context: certificate provider "plugin" failed: /,
        );
        assert.match(error.message, expected);
        return true;
      },
    );
  }
});

Deno.test("the plugin provider rejects a malformed extend_verify at creation", async () => {
  const bad: [unknown, RegExp][] = [
    [undefined, /extend_verify: expected \{ plugin: <name> \}, got nothing/],
    [{ plugin: 3 }, /extend_verify\.plugin: expected the name of an entry of plugins:, got 3/],
    [
      { plugin: "x", refresh: 30 },
      /extend_verify\.refresh: expected a positive duration such as "30s"/,
    ],
    [{ plugin: "x", every: "1s" }, /extend_verify\.every: unknown field/],
  ];
  for (const [extendVerify, expected] of bad) {
    await assert.rejects(
      createTlsProvider(tlsContext({ type: "plugin", extendVerify }), { plugins: noPlugins }),
      (error: unknown) => {
        assert.ok(error instanceof CertificateProviderError);
        assert.match(error.message, /certificate provider "plugin" failed: /);
        assert.match(error.message, expected);
        return true;
      },
    );
  }
});

Deno.test("a provider returning no key is reported, not passed on", async () => {
  registerCertificateProvider("test-broken", () => ({
    fetch: () => Promise.resolve({ cert: pki.serverCert, key: "" }),
  }));
  await assert.rejects(
    resolveTlsMaterial(tlsContext({ type: "test-broken" }), { plugins: noPlugins }),
    /certificate provider "test-broken" failed: fetch\(\) returned no private key/,
  );
});
