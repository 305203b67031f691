#!/usr/bin/env bash
# HTTPS benchmark: req/s through Mosaic against nginx terminating TLS, in the same run,
# in front of the same upstream (nginx `return 200`, plain HTTP, keep-alive):
#   HTTP/1.1 with wrk (-t2 -c50), HTTP/2 with h2load (-c10 -m10, h2 by ALPN).
#
# Targets (each its own process, all on 127.0.0.1; measured one at a time, round after round):
#   nginx          nginx 1.22, 1 worker, `listen ssl http2`, keepalive 64 to the upstream
#   mosaic-direct  Mosaic, TLS by Deno.serve   (MOSAIC_TLS_SERVE=direct, --unstable-net)
#   mosaic-bridge  Mosaic, TLS by the node:tls bridge (MOSAIC_TLS_SERVE=bridge)
#   mosaic-plain   Mosaic without TLS, for reference (HTTP/1.1 with wrk, h2c with h2load)
# Certificates: a throwaway EC P-256 CA and server certificate made with openssl.
#
#   BENCH_DURATION=10s   measured time per target and tool (after a 2 s warm-up)
#   BENCH_ROUNDS=3       rounds; each cell is the median of its rounds
#
# Prints a table with each target's req/s and its ratio to nginx. Needs wrk, h2load
# (Debian's nghttp2-client), nginx and openssl; installs the missing ones with apt-get.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
export PATH="$root/node_modules/.bin:$PATH:/usr/sbin:/sbin"
duration="${BENCH_DURATION:-10s}"
rounds="${BENCH_ROUNDS:-3}"
seconds="${duration%s}"

missing=()
command -v wrk >/dev/null || missing+=(wrk)
command -v h2load >/dev/null || missing+=(nghttp2-client)
command -v nginx >/dev/null || missing+=(nginx)
command -v openssl >/dev/null || missing+=(openssl)
if ((${#missing[@]} > 0)); then
  echo "tls_bench: installing ${missing[*]} from Debian's packages" >&2
  sudo=()
  if [[ $(id -u) -ne 0 ]]; then sudo=(sudo); fi
  "${sudo[@]}" apt-get -o DPkg::Lock::Timeout=300 update -q
  # RUNLEVEL=1: the package scripts must not start the system nginx service.
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive RUNLEVEL=1 \
    apt-get -o DPkg::Lock::Timeout=300 install -y -q --no-install-recommends "${missing[@]}"
fi

tmp="$(mktemp -d -t mosaic-tls-bench-XXXXXX)"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# --- certificates -------------------------------------------------------------------
openssl ecparam -name prime256v1 -genkey -noout -out "$tmp/ca.key"
openssl req -x509 -new -key "$tmp/ca.key" -sha256 -days 2 -subj "/CN=bench CA" -out "$tmp/ca.crt"
openssl ecparam -name prime256v1 -genkey -noout -out "$tmp/server.ec"
openssl pkcs8 -topk8 -nocrypt -in "$tmp/server.ec" -out "$tmp/server.key"
openssl req -new -key "$tmp/server.key" -subj "/CN=localhost" -out "$tmp/server.csr"
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' >"$tmp/ext"
openssl x509 -req -in "$tmp/server.csr" -CA "$tmp/ca.crt" -CAkey "$tmp/ca.key" -CAcreateserial \
  -days 2 -sha256 -extfile "$tmp/ext" -out "$tmp/server.crt" 2>/dev/null

# --- servers ------------------------------------------------------------------------
start_nginx() { # name, http block
  local dir="$tmp/$1"
  mkdir -p "$dir"
  cat >"$dir/nginx.conf" <<EOF
daemon off;
master_process on;
worker_processes 1;
pid $dir/nginx.pid;
error_log stderr warn;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 1000000;
  client_body_temp_path $dir/cb; proxy_temp_path $dir/px; fastcgi_temp_path $dir/fc;
  uwsgi_temp_path $dir/uw; scgi_temp_path $dir/sc;
$2
}
EOF
  nginx -p "$dir/" -c "$dir/nginx.conf" -e stderr 2>"$dir/stderr" &
  pids+=($!)
}

upstream_port=$(free_port)
start_nginx upstream "  server { listen 127.0.0.1:$upstream_port;
    location / { default_type text/plain; return 200 \"ok\n\"; } }"

nginx_port=$(free_port)
start_nginx nginx "  upstream backend { server 127.0.0.1:$upstream_port; keepalive 64; }
  server {
    listen 127.0.0.1:$nginx_port ssl http2;
    ssl_certificate $tmp/server.crt;
    ssl_certificate_key $tmp/server.key;
    location / {
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection \"\";
    }
  }"

mosaic_config() { # port, tls (true/false)
  local tls=""
  if [[ $2 == true ]]; then
    tls="tls_context: { status: true, cert_chain: $tmp/server.crt, private_key: $tmp/server.key }"
  fi
  cat <<EOF
servers:
  - default_log_level: WARN
    routers:
      - router_config_name: r
        virtual_hosts:
          - name: all
            domains: ["*"]
            routers:
              - match: { prefix: / }
                route: { cluster_name: up }
    listeners:
      - name: bench
        address: 127.0.0.1:$1
        filter_chains:
          - ${tls:-filters:}
            ${tls:+filters:}
              - type: proxy
                config: { router_config_name: r }
cluster_manager:
  clusters:
    - name: up
      type: SIMPLE
      lb_type: LB_ROUNDROBIN
      hosts: [{ address: "127.0.0.1:$upstream_port" }]
EOF
}

start_mosaic() { # name, port, tls, serve mode, extra deno flags...
  local name=$1 port=$2 tls=$3 mode=$4
  shift 4
  mosaic_config "$port" "$tls" >"$tmp/$name.yaml"
  MOSAIC_TLS_SERVE=$mode deno run --allow-net --allow-read --allow-env "$@" \
    "$root/main.ts" "$tmp/$name.yaml" >"$tmp/$name.log" 2>&1 &
  pids+=($!)
}

direct_port=$(free_port)
bridge_port=$(free_port)
plain_port=$(free_port)
start_mosaic mosaic-direct "$direct_port" true direct --unstable-net
start_mosaic mosaic-bridge "$bridge_port" true bridge
start_mosaic mosaic-plain "$plain_port" false auto

declare -A url=(
  [nginx]="https://127.0.0.1:$nginx_port/"
  [mosaic-direct]="https://127.0.0.1:$direct_port/"
  [mosaic-bridge]="https://127.0.0.1:$bridge_port/"
  [mosaic-plain]="http://127.0.0.1:$plain_port/"
)
targets=(nginx mosaic-direct mosaic-bridge mosaic-plain)

for target in "${targets[@]}"; do
  ok=""
  for _ in $(seq 1 100); do
    if curl -sf -o /dev/null --cacert "$tmp/ca.crt" "${url[$target]}"; then ok=1 && break; fi
    sleep 0.2
  done
  if [[ -z $ok ]]; then
    echo "tls_bench: $target did not answer ${url[$target]}" >&2
    cat "$tmp/$target.log" "$tmp/$target/stderr" 2>/dev/null | tail -20 >&2
    exit 1
  fi
done
grep -h "TLS on listener" "$tmp"/mosaic-*.log >&2 || true

h1() { # url -> req/s
  wrk -t2 -c50 -d2s "$1" >/dev/null
  wrk -t2 -c50 -d"$duration" "$1" | awk '/Requests\/sec/ { printf "%d", $2 }'
}
h2() { # url -> req/s; h2c with prior knowledge for http://
  h2load -c10 -m10 -D 2 "$1" >/dev/null 2>&1
  h2load -c10 -m10 -D "$seconds" "$1" 2>/dev/null |
    awk '/^finished in/ { gsub(",", "", $4); printf "%d", $4 }'
}

declare -A results
echo "tls_bench: $rounds round(s) of $duration per target and protocol; load: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
for round in $(seq 1 "$rounds"); do
  for target in "${targets[@]}"; do
    a=$(h1 "${url[$target]}")
    b=$(h2 "${url[$target]}")
    results[$target,h1]+="$a "
    results[$target,h2]+="$b "
    echo "  round $round $target: HTTP/1.1 $a req/s, HTTP/2 $b req/s" >&2
  done
done

median() { tr ' ' '\n' | grep -v '^$' | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }

n1=$(echo "${results[nginx,h1]}" | median)
n2=$(echo "${results[nginx,h2]}" | median)
echo
echo "| target | HTTP/1.1 req/s (wrk) | × nginx | HTTP/2 req/s (h2load) | × nginx |"
echo "| --- | --- | --- | --- | --- |"
for target in "${targets[@]}"; do
  a=$(echo "${results[$target,h1]}" | median)
  b=$(echo "${results[$target,h2]}" | median)
  echo "| $target | $a | $(ratio "$a" "$n1") | $b | $(ratio "$b" "$n2") |"
done
echo
echo "load average after the run: $(cut -d' ' -f1-3 /proc/loadavg); mosaic-plain is plain HTTP (h2c for HTTP/2)"
