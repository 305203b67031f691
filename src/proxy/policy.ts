/**
 * A listener's request policy: how paths are normalized and whose forwarded headers are
 * believed, compiled once per config load from the `proxy` network filter's config.
 *
 * @module
 */

import type { ProxyNetworkFilter } from "../config/types.ts";
import { EDGE_POLICY, type ForwardedPolicy, forwardedPolicy } from "./forwarded.ts";
import { DEFAULT_PATH_OPTIONS, type PathOptions } from "./path.ts";

/** What the lifecycle checks and sets on every request before the filters run. */
export interface RequestPolicy {
  readonly path: PathOptions;
  readonly forwarded: ForwardedPolicy;
}

/** The defaults: paths normalized, `%2F` refused, no peer trusted. */
export const DEFAULT_REQUEST_POLICY: RequestPolicy = Object.freeze({
  path: DEFAULT_PATH_OPTIONS,
  forwarded: EDGE_POLICY,
});

/** Compiles the policy of a `proxy` network filter. */
export function requestPolicyOf(network: ProxyNetworkFilter): RequestPolicy {
  const path: PathOptions = network.normalizePath === DEFAULT_PATH_OPTIONS.normalize &&
      network.mergeSlashes === DEFAULT_PATH_OPTIONS.mergeSlashes &&
      network.pathWithEscapedSlashesAction === DEFAULT_PATH_OPTIONS.escapedSlashes
    ? DEFAULT_PATH_OPTIONS
    : Object.freeze({
      normalize: network.normalizePath,
      mergeSlashes: network.mergeSlashes,
      escapedSlashes: network.pathWithEscapedSlashesAction,
    });
  return Object.freeze({
    path,
    forwarded: forwardedPolicy(
      network.useRemoteAddress,
      network.xffNumTrustedHops,
      network.trustedProxies,
    ),
  });
}
