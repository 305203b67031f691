#!/bin/sh
# Sets up the certificate loaders (and the example's CA on first run), then starts Mosaic:
#   curl http://127.0.0.1:2046/                          # fails: the port speaks TLS
#   curl https://127.0.0.1:2046/                         # fails: untrusted CA
#   curl --cacert certs/ca.crt https://127.0.0.1:2046/   # 200 (2047: the Python loader)
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
"$HERE/setup.sh"
cd "$HERE/../.."
exec "${DENO:-node_modules/.bin/deno}" run --allow-net --allow-read --allow-write --allow-run \
  --allow-env main.ts "$HERE/config.yaml"
