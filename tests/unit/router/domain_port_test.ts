import assert from "node:assert/strict";
import { parseConfig } from "../../../src/config/load.ts";
import { Router, RouterConfigError } from "../../../src/router/router.ts";

const config = (domains: string) =>
  `servers:
  - routers:
      - router_config_name: r
        virtual_hosts:
${domains}
`;
const vh = (name: string, domains: string) =>
  `          - name: ${name}
            domains: ${domains}
            routers: [{ match: { prefix: / }, direct_response: { status: 200, body: ${name} } }]`;

Deno.test("a virtual host may list a domain with and without its port", () => {
  const { config: loaded } = parseConfig(
    config(vh("local", '["127.0.0.1", "127.0.0.1:2046"]')),
    "c.yaml",
  );
  const router = new Router(loaded.routers.get("r")!);
  assert.equal(router.match("127.0.0.1:2046", "/", new Headers())?.virtualHost, "local");
});

Deno.test("the same domain in two virtual hosts is still refused", () => {
  const { config: loaded } = parseConfig(
    config(`${vh("a", '["127.0.0.1"]')}\n${vh("b", '["127.0.0.1:2046"]')}`),
    "c.yaml",
  );
  assert.throws(
    () => new Router(loaded.routers.get("r")!),
    (e) => e instanceof RouterConfigError && /already used by virtual host "a"/.test(e.message),
  );
});
