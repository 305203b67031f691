#!/bin/sh
# Installs Debian's Go packages (hashicorp/go-plugin, grpc, protobuf, protoc) when missing and
# builds the Go plugin into build/checker: protoc generates go/proto/plugin.proto's code, then
# `go build` in GOPATH mode finds every import in the generated code or in /usr/share/gocode,
# where Debian installs its Go sources. No Go module proxy is asked. Idempotent: it rebuilds
# only when a source is newer than the binary.
#   GO=/path/to/go ./build.sh   picks the Go toolchain (default /usr/local/go/bin/go, else go)
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
MOSAIC_ROOT=$(cd "$HERE/../.." && pwd)
. "$MOSAIC_ROOT/examples/plugin_filter/plugin_env.sh" # need_debs

# golang-github-hashicorp-go-plugin-dev does not depend on grpc or protobuf, which it imports.
need_debs golang-github-hashicorp-go-plugin-dev golang-google-grpc-dev golang-goprotobuf-dev \
  protobuf-compiler

if [ -z "${GO:-}" ]; then
  if [ -x /usr/local/go/bin/go ]; then GO=/usr/local/go/bin/go; else GO=go; fi
fi

BUILD="$HERE/build"
GEN="$BUILD/gopath/src/mosaic/example/proto"
BIN="$BUILD/checker"
# Go keeps its build cache under $HOME; without one, in build/.
[ -n "${GOCACHE:-}${XDG_CACHE_HOME:-}${HOME:-}" ] || export GOCACHE="$BUILD/gocache"

if [ ! -f "$GEN/plugin.pb.go" ] || [ "$HERE/go/proto/plugin.proto" -nt "$GEN/plugin.pb.go" ]; then
  mkdir -p "$GEN"
  # Debian's protoc-gen-go is golang/protobuf 1.3, which writes the gRPC service too.
  protoc -I "$HERE/go/proto" --go_out="plugins=grpc,paths=source_relative:$GEN" \
    "$HERE/go/proto/plugin.proto"
fi

stale=""
[ -x "$BIN" ] || stale=yes
for src in "$HERE/go/main.go" "$GEN/plugin.pb.go" "$0"; do
  [ -n "$stale" ] || [ ! "$src" -nt "$BIN" ] || stale=yes
done
if [ -n "$stale" ]; then
  echo "building $BIN with $("$GO" version)" >&2
  (cd "$HERE/go" &&
    GO111MODULE=off GOPATH="$BUILD/gopath:/usr/share/gocode" GOFLAGS="" GOTOOLCHAIN=local \
      "$GO" build -o "$BIN.tmp" . &&
    mv "$BIN.tmp" "$BIN")
fi
