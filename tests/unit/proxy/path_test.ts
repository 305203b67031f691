import assert from "node:assert/strict";
import {
  DEFAULT_PATH_OPTIONS,
  normalizeTarget,
  type PathOptions,
} from "../../../src/proxy/path.ts";

const REJECT = undefined;

/** input → normalized target, or REJECT (400), with the default options. */
const DEFAULTS: [string, string | undefined][] = [
  ["/", "/"],
  ["/public/x?a=1", "/public/x?a=1"],
  ["/public/../admin", "/admin"],
  ["/./admin", "/admin"],
  ["//admin", "/admin"],
  ["/%61dmin", "/admin"],
  ["/%41%7a%2D%5f%7E", "/Az-_~"],
  ["/public/%2e%2e/admin", "/admin"],
  ["/public/%2E%2E/admin", "/admin"],
  ["/public/.%2e/admin", "/admin"],
  ["/public%2f..%2fadmin", REJECT],
  ["/public%2F..%2Fadmin", REJECT],
  ["/public%5c..%5cadmin", REJECT],
  ["/public\\..\\admin", "/admin"],
  ["/public/..;/admin", REJECT],
  ["/public/..;jsessionid=1/admin", REJECT],
  ["/public/.;/admin", REJECT],
  ["/public/%2e%2e;/admin", REJECT],
  ["/a;b=c/d", "/a;b=c/d"],
  ["/a/b/../../..", "/"],
  ["/../../admin", "/admin"],
  ["/a/..", "/"],
  ["/a/.", "/a/"],
  ["/a/./", "/a/"],
  ["/a//b///c/", "/a/b/c/"],
  ["/a/...b/.c/..d", "/a/...b/.c/..d"],
  ["/a/.../b", "/a/.../b"],
  ["/a%20b", "/a%20b"],
  ["/a%252e%252e/b", "/a%252e%252e/b"],
  ["/a%2", REJECT],
  ["/a%zz", REJECT],
  ["/a b", REJECT],
  ["/a\tb", REJECT],
  ["/a#frag", REJECT],
  ["/caf\u00e9", REJECT],
  ["a/b", REJECT],
  ["", REJECT],
  ["/public/../admin?x=/../y&z=%2f", "/admin?x=/../y&z=%2f"],
  ["/q?../..", "/q?../.."],
  ["/a/.?x", "/a/?x"],
];

Deno.test("path normalization with the defaults: normalized or refused, table", () => {
  for (const [input, expected] of DEFAULTS) {
    assert.equal(normalizeTarget(input, DEFAULT_PATH_OPTIONS), expected, JSON.stringify(input));
  }
});

const OPTIONS: [Partial<PathOptions>, string, string | undefined][] = [
  [{ escapedSlashes: "unescape_and_forward" }, "/public%2f..%2fadmin", "/admin"],
  [{ escapedSlashes: "unescape_and_forward" }, "/public%5C..%5Cadmin", "/admin"],
  [{ escapedSlashes: "keep" }, "/public%2f..%2fadmin", "/public%2f..%2fadmin"],
  [{ escapedSlashes: "keep" }, "/a/%2F/../b", "/a/b"],
  [{ mergeSlashes: false }, "/a//b/../c", "/a//c"],
  [{ mergeSlashes: false }, "//admin", "//admin"],
  [{ normalize: false }, "/public/../admin", "/public/../admin"],
  [{ normalize: false }, "/%61dmin", "/%61dmin"],
  [{ normalize: false }, "//a", "/a"],
  [{ normalize: false }, "/public/..;/admin", REJECT],
  [{ normalize: false }, "/a%2fb", REJECT],
];

Deno.test("path options: merge_slashes, normalize_path, path_with_escaped_slashes_action", () => {
  for (const [options, input, expected] of OPTIONS) {
    const merged = { ...DEFAULT_PATH_OPTIONS, ...options };
    assert.equal(normalizeTarget(input, merged), expected, `${JSON.stringify(options)} ${input}`);
  }
});

Deno.test("a clean path is returned as the same string", () => {
  const target = "/api/v1/users/42?expand=true";
  assert.equal(normalizeTarget(target, DEFAULT_PATH_OPTIONS), target);
});
