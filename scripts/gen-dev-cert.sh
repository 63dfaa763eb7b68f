#!/usr/bin/env bash
# Generates a throw-away TLS setup for development and tests: a self-signed CA and a server
# certificate for localhost / 127.0.0.1 / ::1 signed by it.
#
#   scripts/gen-dev-cert.sh [DIR]     # default DIR: keystore/ next to this script's parent
#
# Writes DIR/ca.pem, DIR/ca.key, DIR/server.pem, DIR/server.key. Clients trust ca.pem (e.g.
# `mosquitto_pub --cafile keystore/ca.pem`). Existing files are kept unless FORCE=1, because
# replacing the CA silently breaks every client that already trusts it.
set -euo pipefail

out="${1:-$(cd "$(dirname "$0")/.." && pwd)/keystore}"
mkdir -p "$out"

if [[ -e "$out/server.key" && "${FORCE:-0}" != "1" ]]; then
  echo "$out/server.key already exists; set FORCE=1 to replace the dev CA and server key" >&2
  exit 1
fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
umask 077

openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 3650 \
  -subj "/CN=MqttWk Dev CA" \
  -addext "basicConstraints=critical,CA:TRUE" \
  -addext "keyUsage=critical,keyCertSign,cRLSign" \
  -keyout "$out/ca.key" -out "$out/ca.pem" 2>/dev/null

openssl req -newkey rsa:2048 -nodes -sha256 \
  -subj "/CN=localhost" \
  -keyout "$out/server.key" -out "$tmp/server.csr" 2>/dev/null

cat >"$tmp/server.ext" <<'EXT'
basicConstraints = CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost, IP:127.0.0.1, IP:::1
EXT

# 825 days is the longest validity some TLS clients (notably Apple's) accept for a server cert.
# A random serial avoids leaving a ca.srl file behind.
openssl x509 -req -sha256 -days 825 \
  -in "$tmp/server.csr" -CA "$out/ca.pem" -CAkey "$out/ca.key" \
  -set_serial "0x$(openssl rand -hex 16)" \
  -extfile "$tmp/server.ext" -out "$out/server.pem" 2>/dev/null

chmod 644 "$out/ca.pem" "$out/server.pem"
echo "Wrote $out/ca.pem, $out/ca.key, $out/server.pem, $out/server.key"
