#!/bin/sh
# Makes the example's own test CA and server certificate with openssl (first run only),
# and installs/builds the certificate loader plugins:
#   certs/      ca.crt (trust this one), ca.key, server.crt (localhost, 127.0.0.1), server.key
#   typescript  build/cert_loader.mjs, bundled for Node.js (Debian's nodejs if node is missing)
#   python      Debian's python3-grpcio and python3-protobuf; nothing to build
# Usage: ./setup.sh [typescript] [python]   (default: both). Idempotent.
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
MOSAIC_ROOT=$(cd "$HERE/../.." && pwd)
SDKS="$MOSAIC_ROOT/examples/plugin_filter"
. "$SDKS/plugin_env.sh"

certs="$HERE/certs"
if [ ! -f "$certs/server.crt" ] || [ ! -f "$certs/server.key" ] || [ ! -f "$certs/ca.crt" ]; then
  command -v openssl >/dev/null 2>&1 || need_debs openssl
  mkdir -p "$certs"
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  echo "making a test CA and a certificate for localhost in $certs" >&2
  openssl ecparam -name prime256v1 -genkey -noout -out "$tmp/ca.key"
  openssl req -x509 -new -key "$tmp/ca.key" -sha256 -days 825 \
    -subj "/CN=Mosaic cert_loader example CA" -out "$tmp/ca.crt"
  openssl ecparam -name prime256v1 -genkey -noout -out "$tmp/server.key"
  openssl req -new -key "$tmp/server.key" -subj "/CN=localhost" -out "$tmp/server.csr"
  printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' >"$tmp/ext"
  openssl x509 -req -in "$tmp/server.csr" -CA "$tmp/ca.crt" -CAkey "$tmp/ca.key" \
    -CAcreateserial -days 825 -sha256 -extfile "$tmp/ext" -out "$tmp/server.crt" 2>/dev/null
  # PKCS#8, the form every TLS stack reads.
  openssl pkcs8 -topk8 -nocrypt -in "$tmp/server.key" -out "$certs/server.key"
  cp "$tmp/ca.crt" "$tmp/server.crt" "$certs/"
  cp "$tmp/ca.key" "$certs/ca.key"
  chmod 600 "$certs/server.key" "$certs/ca.key"
fi

[ $# -gt 0 ] || set -- typescript python
for language in "$@"; do
  case $language in
    typescript)
      command -v node >/dev/null 2>&1 || need_debs nodejs
      bundle_ts "$HERE/typescript/cert_loader.ts" "$HERE/build/cert_loader.mjs"
      ;;
    python) need_debs $PYTHON_DEBS ;;
    *) echo "unknown language: $language (typescript, python)" >&2; exit 2 ;;
  esac
done
