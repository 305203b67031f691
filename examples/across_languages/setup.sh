#!/bin/sh
# Installs (Debian packages) and builds the hello plugins; the Python and Java ones use the
# mini SDKs of ../plugin_filter. Usage: ./setup.sh [typescript] [python] [java]. Idempotent.
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
MOSAIC_ROOT=$(cd "$HERE/../.." && pwd)
SDKS="$MOSAIC_ROOT/examples/plugin_filter"
. "$SDKS/plugin_env.sh"

[ $# -gt 0 ] || set -- typescript python java
for language in "$@"; do
  case $language in
    typescript)
      command -v node >/dev/null 2>&1 || need_debs nodejs
      bundle_ts "$HERE/typescript/hello.ts" "$HERE/build/hello.mjs"
      ;;
    python) need_debs $PYTHON_DEBS ;;
    java)
      need_debs $JAVA_DEBS
      build_java "$HERE/build/java" "$SDKS/java/MosnPlugin.java" "$HERE/java/Hello.java"
      ;;
    *) echo "unknown language: $language (typescript, python, java)" >&2; exit 2 ;;
  esac
done
