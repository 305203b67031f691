/**
 * The keys MOSN's config defines, as data: a key that Mosaic's schema does not know
 * but MOSN does is a MOSN feature Mosaic does not implement, warned about and ignored,
 * so a MOSN config loads unchanged. A key that neither knows is a typo and stops the
 * load (see `unknown_keys.ts`).
 *
 * Each entry is keyed by the place in the file, list indexes left out and map keys
 * written `*`: `servers.listeners` is every `servers[i].listeners[j]`. The lists follow
 * MOSN's `pkg/config/v2` structs (their `json:"…"` tags) and `configmanager.MOSNConfig`.
 * A section Mosaic ignores as a whole (`tracing`, `metrics`, …) is not looked into, so
 * its keys need no list.
 *
 * @module
 */

const TLS_CONTEXT = [
  "status",
  "type",
  "sds_source",
  "server_name",
  "cert_chain",
  "private_key",
  "ca_cert",
  "verify_client",
  "require_client_cert",
  "insecure_skip",
  "cipher_suites",
  "ecdh_curves",
  "min_version",
  "max_version",
  "alpn",
  "fall_back",
  "extend_verify",
  "callbacks",
];

const HEADER_LISTS = [
  "request_headers_to_add",
  "request_headers_to_remove",
  "response_headers_to_add",
  "response_headers_to_remove",
];

/** MOSN's keys by place in the config. */
export const MOSN_KEYS: Readonly<Record<string, readonly string[]>> = {
  "": [
    "servers",
    "cluster_manager",
    "close_graceful",
    "inherit_old_mosnconfig",
    "tracing",
    "metrics",
    "dynamic_resources",
    "static_resources",
    "admin",
    "pprof",
    "pid",
    "plugin",
    "third_part_codec",
    "extends",
    "wasm_global_plugins",
    "disable_upgrade",
    "upgrade_timeout",
  ],
  "servers": [
    "mosn_server_name",
    "default_log_path",
    "default_log_level",
    "global_log_roller",
    "use_netpoll_mode",
    "graceful_timeout",
    "processor",
    "listeners",
    "routers",
    "optimize_local_write",
  ],
  "servers.listeners": [
    "name",
    "type",
    "address",
    "bind_port",
    "network",
    "original_dst",
    "use_original_dst",
    "access_logs",
    "filter_chains",
    "listener_filters",
    "stream_filters",
    "inspector",
    "connection_idle_timeout",
    "default_read_buffer_size",
    "per_connection_buffer_limit_bytes",
  ],
  "servers.listeners.access_logs": ["log_path", "log_format"],
  "servers.listeners.filter_chains": ["match", "tls_context", "tls_context_set", "filters"],
  "servers.listeners.filter_chains.tls_context": TLS_CONTEXT,
  "servers.listeners.filter_chains.filters": ["type", "config"],
  // The `proxy` and `tcp_proxy` network filters share this place.
  "servers.listeners.filter_chains.filters.config": [
    "name",
    "downstream_protocol",
    "upstream_protocol",
    "router_config_name",
    "extend_config",
    "fallback_for_unknown_protocol",
    "stat_prefix",
    "cluster",
    "max_connect_attempts",
    "idle_timeout",
    "routes",
  ],
  "servers.listeners.filter_chains.filters.config.routes": [
    "cluster",
    "source_addrs",
    "destination_addrs",
  ],
  "servers.listeners.stream_filters": ["type", "config"],
  "servers.routers": [
    "router_config_name",
    "virtual_hosts",
    "router_configs",
    ...HEADER_LISTS,
  ],
  "servers.routers.virtual_hosts": [
    "name",
    "domains",
    "virtual_clusters",
    "routers",
    "require_tls",
    "per_filter_config",
    ...HEADER_LISTS,
  ],
  "servers.routers.virtual_hosts.routers": [
    "match",
    "route",
    "redirect",
    "direct_response",
    "metadata",
    "per_filter_config",
    "request_mirror_policies",
    ...HEADER_LISTS,
  ],
  "servers.routers.virtual_hosts.routers.match": [
    "prefix",
    "path",
    "regex",
    "case_sensitive",
    "headers",
    "variables",
    "dsl_expressions",
  ],
  "servers.routers.virtual_hosts.routers.match.headers": ["name", "value", "regex"],
  "servers.routers.virtual_hosts.routers.route": [
    "cluster_name",
    "cluster_header",
    "cluster_variable",
    "weighted_clusters",
    "metadata_match",
    "timeout",
    "retry_policy",
    "prefix_rewrite",
    "regex_rewrite",
    "host_rewrite",
    "auto_host_rewrite",
    "auto_host_rewrite_header",
    "hash_policy",
    "request_mirror_policies",
    ...HEADER_LISTS,
  ],
  "servers.routers.virtual_hosts.routers.route.retry_policy": [
    "retry_on",
    "retry_timeout",
    "num_retries",
    "status_codes",
  ],
  "servers.routers.virtual_hosts.routers.route.weighted_clusters": ["cluster"],
  "servers.routers.virtual_hosts.routers.route.weighted_clusters.cluster": [
    "name",
    "weight",
    "metadata_match",
  ],
  "servers.routers.virtual_hosts.routers.direct_response": ["status", "body"],
  "cluster_manager": [
    "clusters",
    "clusters_configs",
    "auto_discovery",
    "registry_use_health_check",
    "tls_context",
  ],
  "cluster_manager.clusters": [
    "name",
    "type",
    "sub_type",
    "lb_type",
    "max_request_per_conn",
    "conn_buffer_limit_bytes",
    "circuit_breakers",
    "outlier_detection",
    "health_check",
    "spec",
    "lb_subset_config",
    "original_dst_lb_config",
    "lbconfig",
    "tls_context",
    "hosts",
    "connect_timeout",
    "idle_timeout",
    "dns_refresh_rate",
    "respect_dns_ttl",
    "dns_lookup_family",
    "dns_resolvers",
    "dns_resolver_config",
    "dns_resolver_file",
    "dns_resolver_port",
    "cluster_manager_tls",
    "cluster_pool_enable",
    "slow_start",
  ],
  "cluster_manager.clusters.hosts": ["address", "hostname", "weight", "metadata", "tls_disable"],
  "cluster_manager.clusters.circuit_breakers": [
    "priority",
    "max_connections",
    "max_pending_requests",
    "max_requests",
    "max_retries",
    "thresholds",
  ],
  "cluster_manager.clusters.circuit_breakers.thresholds": [
    "priority",
    "max_connections",
    "max_pending_requests",
    "max_requests",
    "max_retries",
  ],
  "cluster_manager.clusters.health_check": [
    "protocol",
    "timeout",
    "interval",
    "interval_jitter",
    "healthy_threshold",
    "unhealthy_threshold",
    "service_name",
    "check_config",
    "common_callbacks",
    "event_log_path",
  ],
  "cluster_manager.clusters.tls_context": TLS_CONTEXT,
  "admin": ["address", "bearer_token"],
  "admin.address": ["socket_address", "pipe"],
  "admin.address.socket_address": [
    "protocol",
    "address",
    "port_value",
    "named_port",
    "resolver_name",
    "ipv4_compat",
  ],
};

/**
 * The place in the file a path is at, as {@linkcode MOSN_KEYS} names it.
 *
 * @param path The path, with `*` for map keys already substituted.
 * @returns E.g. `servers.listeners` for `servers[0].listeners[1]`.
 */
export function placeOf(path: readonly PropertyKey[]): string {
  return path.filter((segment) => typeof segment !== "number").map(String).join(".");
}

/**
 * Whether MOSN defines `key` at `place`.
 *
 * @param place As {@linkcode placeOf} names it.
 * @param key The key.
 * @returns True when the key is MOSN's.
 */
export function isMosnKey(place: string, key: string): boolean {
  return MOSN_KEYS[place]?.includes(key) ?? false;
}
