#!/bin/sh
# Installs (Debian packages) and builds the header checker plugins:
#   typescript  build/checker.mjs, bundled for Node.js (Debian's nodejs if node is missing)
#   python      Debian's python3-grpcio and python3-protobuf; nothing to build
#   java        Debian's libgrpc-java and friends; classes in build/java
# Usage: ./setup.sh [typescript] [python] [java]   (default: all three). Idempotent.
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
MOSAIC_ROOT=$(cd "$HERE/../.." && pwd)
. "$HERE/plugin_env.sh"

[ $# -gt 0 ] || set -- typescript python java
for language in "$@"; do
  case $language in
    typescript)
      command -v node >/dev/null 2>&1 || need_debs nodejs
      bundle_ts "$HERE/typescript/checker.ts" "$HERE/build/checker.mjs"
      ;;
    python) need_debs $PYTHON_DEBS ;;
    java)
      need_debs $JAVA_DEBS
      build_java "$HERE/build/java" "$HERE/java/MosnPlugin.java" "$HERE/java/Checker.java"
      ;;
    *) echo "unknown language: $language (typescript, python, java)" >&2; exit 2 ;;
  esac
done
