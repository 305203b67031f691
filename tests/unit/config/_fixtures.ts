/**
 * Shared config texts and assertions for the config loader's tests.
 *
 * @module
 */

import assert from "node:assert/strict";
import { ConfigError } from "../../../src/config/errors.ts";
import { type LoadOptions, parseConfig } from "../../../src/config/load.ts";

/** The file name the config texts pretend to come from. */
export const FILE = "conf/test.yaml";

/** A small valid config; tests break one thing in it at a time. */
export const BASE = `servers:
  - default_log_level: INFO
    routers:
      - router_config_name: server_router
        virtual_hosts:
          - name: serverHost
            domains: ["*"]
            routers:
              - match: { prefix: / }
                route: { cluster_name: serverCluster }
    listeners:
      - name: serverListener
        address: 127.0.0.1:2046
        filter_chains:
          - filters:
              - type: proxy
                config: { router_config_name: server_router }
        stream_filters:
          - type: demo
            config: { User: admin }
cluster_manager:
  clusters:
    - name: serverCluster
      lb_type: LB_ROUNDROBIN
      connect_timeout: 3s
      hosts:
        - address: 127.0.0.1:8080
          weight: 1
admin:
  address: 127.0.0.1:34901
`;

/**
 * `BASE` with one piece of text replaced; fails loudly when the piece is not there, so a
 * test cannot silently test the unchanged base.
 */
export function withReplaced(from: string, to: string, text = BASE): string {
  assert.ok(text.includes(from), `the config text has no ${JSON.stringify(from)}`);
  return text.replace(from, to);
}

/** The 1-based line of the first line of `text` that contains `needle`. */
export function lineOf(text: string, needle: string, after = 0): number {
  const lines = text.split("\n");
  const index = lines.findIndex((line, i) => i >= after && line.includes(needle));
  assert.ok(index >= 0, `the config text has no line with ${JSON.stringify(needle)}`);
  return index + 1;
}

/**
 * Asserts that loading `text` fails with a {@linkcode ConfigError} at `line` and `path`,
 * whose message reads `<file>:<line>: <path>: ...` and matches `problem`.
 */
export function assertConfigError(
  text: string,
  expected: { line: number; path: string; problem: RegExp },
  options?: LoadOptions,
): ConfigError {
  let caught: unknown;
  try {
    parseConfig(text, FILE, options);
  } catch (error) {
    caught = error;
  }
  assert.ok(caught instanceof ConfigError, `expected a ConfigError, got ${caught}`);
  assert.equal(caught.name, "ConfigError");
  assert.equal(caught.file, FILE);
  assert.equal(caught.path, expected.path, caught.message);
  assert.equal(caught.line, expected.line, caught.message);
  const prefix = expected.path === ""
    ? `${FILE}:${expected.line}: `
    : `${FILE}:${expected.line}: ${expected.path}: `;
  assert.ok(caught.message.startsWith(prefix), `${caught.message} should start with ${prefix}`);
  assert.match(caught.message, expected.problem);
  return caught;
}
