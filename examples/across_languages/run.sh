#!/bin/sh
# Sets up the three hello plugins and starts Mosaic with them:
#   curl -d hello localhost:2055/   # hello typescript
#   curl -d hello localhost:2056/   # hello python
#   curl -d hello localhost:2057/   # hello java
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
"$HERE/setup.sh"
cd "$HERE/../.."
exec "${DENO:-node_modules/.bin/deno}" run --allow-all main.ts "$HERE/config.yaml"
