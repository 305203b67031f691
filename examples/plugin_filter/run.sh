#!/bin/sh
# Sets up the three header checkers and starts Mosaic with them:
#   curl -i -H 'User: admin' -H 'X-Team: gateway' localhost:2045/   # TypeScript: 200
#   curl -i localhost:2046/                                          # Python: 403
#   curl -i -H 'User: admin' -H 'X-Team: gateway' localhost:2047/   # Java: 200
#   curl 'localhost:34901/api/v1/plugin?status=all'
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
"$HERE/setup.sh"
cd "$HERE/../.."
DENO=${DENO:-node_modules/.bin/deno}
# The narrowest flags this config needs, as `main.ts check` prints them; never -A.
FLAGS=$("$DENO" run --allow-read main.ts flags "$HERE/config.yaml")
# shellcheck disable=SC2086 # the flags are separate words
exec "$DENO" run $FLAGS main.ts "$HERE/config.yaml"
