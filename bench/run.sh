#!/usr/bin/env bash
# Mosaic's load benchmark: `deno task bench` (or `bash bench/run.sh`).
#
# Installs what the benchmark needs when it is missing (Debian's wrk, nginx and haproxy;
# npm's http-proxy into bench/http_proxy/node_modules), then runs bench/load.ts, which starts every
# server itself on 127.0.0.1 and stops them all before it exits.
#
#   BENCH_DURATION=10s   how long wrk measures each target (after a warm-up)
#   BENCH_WARMUP=2s      the warm-up before each measurement
#   BENCH_TARGETS=a,b    only these targets (names as printed in the table)
#   BENCH_ROUNDS=1       rounds over all targets; each target's median round is shown
#   bash bench/run.sh --install-only   install the tools and stop
#   bash bench/run.sh scenarios        bench/scenarios.ts instead: 1 GiB body, 1,000
#                                      connections, HTTP/2 (BENCH_SCENARIOS=big,c1000,h2)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
cd "$root"

# Debian's nginx and haproxy live in /usr/sbin, which a non-login shell may not have.
export PATH="$root/node_modules/.bin:$PATH:/usr/sbin:/sbin"

missing=()
command -v wrk >/dev/null || missing+=(wrk)
command -v nginx >/dev/null || missing+=(nginx)
command -v haproxy >/dev/null || missing+=(haproxy)
command -v h2load >/dev/null || missing+=(nghttp2-client)
command -v curl >/dev/null || missing+=(curl)
if ((${#missing[@]} > 0)); then
  echo "bench: installing ${missing[*]} from Debian's packages" >&2
  sudo=()
  if [[ $(id -u) -ne 0 ]]; then sudo=(sudo); fi
  "${sudo[@]}" apt-get -o DPkg::Lock::Timeout=300 update -q
  # The package scripts must not start the system nginx/haproxy services: where no
  # policy-rc.d forbids it, Debian's invoke-rc.d would. RUNLEVEL=1 makes it skip them.
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive RUNLEVEL=1 \
    apt-get -o DPkg::Lock::Timeout=300 install -y -q --no-install-recommends "${missing[@]}"
fi

# Its own folder: a package.json in bench/ itself would make Deno take bench/ for a
# separate project (other fmt settings) when bench files are named on the command line.
if [[ ! -f bench/http_proxy/node_modules/http-proxy/package.json ]]; then
  echo "bench: installing http-proxy into bench/http_proxy/node_modules" >&2
  (cd bench/http_proxy && npm ci --no-audit --no-fund --loglevel=error)
fi

if ! command -v deno >/dev/null; then
  echo "bench: installing the pinned Deno (npm package deno)" >&2
  npm ci --no-audit --no-fund --loglevel=error
fi

if [[ "${1:-}" == "--install-only" ]]; then
  echo "bench: wrk, nginx, haproxy, node http-proxy and deno are installed" >&2
  exit 0
fi

script=bench/load.ts
if [[ "${1:-}" == "scenarios" ]]; then script=bench/scenarios.ts; shift; fi
# The script stops every process it started, also on SIGINT/SIGTERM; forward those to it.
deno run --allow-all "$script" "$@" &
bench_pid=$!
trap 'kill -TERM "$bench_pid" 2>/dev/null || true' INT TERM
trap 'kill -TERM "$bench_pid" 2>/dev/null || true' EXIT
status=0
wait "$bench_pid" || status=$?
# A signal interrupts the first wait; wait again for load.ts to finish its cleanup.
if kill -0 "$bench_pid" 2>/dev/null; then wait "$bench_pid" || status=$?; fi
exit "$status"
