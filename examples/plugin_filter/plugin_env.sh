# Shell helpers shared by the plugin examples' scripts (sourced, not run).

# Installs Debian packages that are not installed yet; quick when all are.
need_debs() {
  missing=""
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" ||
      missing="$missing $pkg"
  done
  [ -z "$missing" ] && return 0
  echo "installing Debian packages:$missing" >&2
  SUDO=""
  [ "$(id -u)" = 0 ] || SUDO="sudo"
  # shellcheck disable=SC2086
  if ! DEBIAN_FRONTEND=noninteractive $SUDO apt-get -o DPkg::Lock::Timeout=300 install -y -q $missing >/dev/null; then
    $SUDO apt-get -o DPkg::Lock::Timeout=300 update -q >/dev/null
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get -o DPkg::Lock::Timeout=300 install -y -q $missing >/dev/null
  fi
}

# The Debian packages each language's plugins need.
PYTHON_DEBS="python3-grpcio python3-protobuf"
JAVA_DEBS="default-jdk-headless libgrpc-java libprotobuf-java libnetty-java libperfmark-java libguava-java"

# The classpath of grpc-java from Debian's jars.
java_classpath() {
  cp=""
  for jar in grpc-api grpc-core grpc-netty grpc-stub grpc-context protobuf guava perfmark-api \
    netty-buffer netty-codec netty-codec-http netty-codec-http2 netty-common netty-handler \
    netty-resolver netty-transport error-prone-annotations jsr305; do
    cp="$cp:/usr/share/java/$jar.jar"
  done
  echo "${cp#:}"
}

# Deno: on PATH, or the repo's pinned one.
deno_bin() {
  if command -v deno >/dev/null 2>&1; then command -v deno; else echo "$MOSAIC_ROOT/node_modules/.bin/deno"; fi
}

# Compiles Java sources into a directory when any source is newer than the stamp.
build_java() {
  out=$1
  shift
  stamp="$out/.built"
  for src in "$@"; do
    if [ ! -f "$stamp" ] || [ "$src" -nt "$stamp" ]; then
      mkdir -p "$out"
      javac -nowarn -d "$out" -cp "$(java_classpath)" "$@"
      touch "$stamp"
      return
    fi
  done
}

# Bundles a TypeScript plugin into one file for Node.js when the source is newer.
bundle_ts() {
  src=$1
  out=$2
  if [ ! -f "$out" ] || [ "$src" -nt "$out" ] || [ "$MOSAIC_ROOT/plugin.ts" -nt "$out" ]; then
    mkdir -p "$(dirname "$out")"
    (cd "$MOSAIC_ROOT" && "$(deno_bin)" bundle --quiet --platform deno -o "$out.tmp.mjs" "$src")
    mv "$out.tmp.mjs" "$out"
  fi
}
