#!/usr/bin/env bash
# The plugin filter's cost: `bash bench/plugin_bench.sh`.
#
# Installs wrk and nginx when missing (through bench/run.sh --install-only), bundles the
# TypeScript header checker of examples/plugin_filter for Node.js (its setup.sh), builds
# the Go go-plugin checker of examples/module_with_plugin (its build.sh, from Debian's
# packages), then runs bench/plugin_bench.ts, which starts every server itself on
# 127.0.0.1 and stops them all before it exits.
#
#   BENCH_DURATION=10s   how long wrk measures each target and connection count
#   BENCH_WARMUP=2s      the warm-up before each target's measurements
#   BENCH_ROUNDS=3       rounds over all targets; the report gives medians over rounds
#   BENCH_TARGETS=a,b    only these targets besides the baseline (in-process,
#                        plugin-unix-go, plugin-unix-node, plugin-tcp-node; and
#                        process-sandbox, measured only when named)
#   BENCH_CLIENT=0       skip part 1 (the gRPC clients against the plugins directly)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
cd "$root"
export PATH="$root/node_modules/.bin:$PATH:/usr/sbin:/sbin"

bash bench/run.sh --install-only
sh examples/plugin_filter/setup.sh typescript
sh examples/module_with_plugin/build.sh

# plugin_bench.ts stops every process it started, also on SIGINT/SIGTERM; forward those.
deno run --allow-all bench/plugin_bench.ts "$@" &
bench_pid=$!
trap 'kill -TERM "$bench_pid" 2>/dev/null || true' INT TERM
trap 'kill -TERM "$bench_pid" 2>/dev/null || true' EXIT
status=0
wait "$bench_pid" || status=$?
if kill -0 "$bench_pid" 2>/dev/null; then wait "$bench_pid" || status=$?; fi
exit "$status"
