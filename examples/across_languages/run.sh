#!/bin/sh
# Sets up the three hello plugins and starts Mosaic with them:
#   curl -d hello localhost:2055/   # hello typescript
#   curl -d hello localhost:2056/   # hello python
#   curl -d hello localhost:2057/   # hello java
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
"$HERE/setup.sh"
cd "$HERE/../.."
DENO=${DENO:-node_modules/.bin/deno}
# The narrowest flags this config needs, as `main.ts check` prints them; never -A.
FLAGS=$("$DENO" run --allow-read main.ts flags "$HERE/config.yaml")
# shellcheck disable=SC2086 # the flags are separate words
exec "$DENO" run $FLAGS main.ts "$HERE/config.yaml"
