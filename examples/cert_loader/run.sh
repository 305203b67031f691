#!/bin/sh
# Sets up the certificate loaders (and the example's CA on first run), then starts Mosaic:
#   curl http://127.0.0.1:2046/                          # fails: the port speaks TLS
#   curl https://127.0.0.1:2046/                         # fails: untrusted CA
#   curl --cacert certs/ca.crt https://127.0.0.1:2046/   # 200 (2047: the Python loader)
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
"$HERE/setup.sh"
cd "$HERE/../.."
DENO=${DENO:-node_modules/.bin/deno}
# The narrowest flags this config needs, as `main.ts check` prints them; never -A.
FLAGS=$("$DENO" run --allow-read main.ts flags "$HERE/config.yaml")
# shellcheck disable=SC2086 # the flags are separate words
exec "$DENO" run $FLAGS main.ts "$HERE/config.yaml"
