#!/usr/bin/env bash
# Scans the receiver's public TLS listener with sslyze (PyPI) and fails unless it accepts only
# TLS 1.2 and 1.3 with AEAD cipher suites (scripts/tls_scan.py says exactly what is checked).
# Starts the built binary twice, as an operator would: `tls.mode = "rustls"` with an RSA
# certificate made here by openssl, and `tls.mode = "self-signed"` (rcgen's ECDSA P-256), so
# the suites of both key types are seen. Needs Postgres on 127.0.0.1:5432 (user postgres,
# trust; the database audian_receiver_tls_scan is made and dropped) and a built binary:
# AUDIAN_RECEIVER_BIN, else target/release, else target/debug. sslyze goes into a venv under
# target/tls-scan/. The summary is printed and written to target/tls-scan/result.json.
set -euo pipefail
cd "$(dirname "$0")/.."

SSLYZE_VERSION=6.3.1
DATABASE=audian_receiver_tls_scan
POSTGRES=postgres://postgres@127.0.0.1:5432
out=target/tls-scan

log() { printf '==> %s\n' "$*"; }
fail() { echo "tls-scan: $*" >&2; exit 2; }

# shellcheck source=scripts/receiver.sh
. scripts/receiver.sh
bin=$(receiver_binary)
command -v openssl >/dev/null || fail "openssl (the command) is needed to make the test certificate"
require_postgres

mkdir -p "$out"
venv=$out/venv
if ! "$venv/bin/python" -c "import sslyze" 2>/dev/null; then
  log "installing sslyze $SSLYZE_VERSION into $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "sslyze==$SSLYZE_VERSION"
fi

work=$(mktemp -d "$PWD/$out/run.XXXXXX")
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  if command -v psql >/dev/null; then
    psql -q "$POSTGRES/postgres" -c "DROP DATABASE IF EXISTS $DATABASE WITH (FORCE)" >/dev/null 2>&1 || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT


# start NAME TLS_SECTION: writes NAME.toml, starts the receiver, waits for /readyz; sets $port.
start() {
  local name=$1 tls=$2 admin
  port=$(free_port)
  admin=$(free_port)
  cat >"$work/$name.toml" <<EOF
[server]
listen = "127.0.0.1:$port"
[admin]
listen = "127.0.0.1:$admin"
[database]
url = "$POSTGRES/$DATABASE"
[forward]
workers = 0
$tls
EOF
  (cd "$work" && exec env -i PATH="$PATH" RUST_LOG=info \
      AUDIAN_WEBHOOK_SECRET="tls-scan-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')" \
      "$bin" serve --config "$name.toml" >"$name.log" 2>&1) &
  pids+=("$!")
  for _ in $(seq 1 60); do
    if curl -fsS "http://127.0.0.1:$admin/readyz" >/dev/null 2>&1; then
      log "$name: receiver ready on 127.0.0.1:$port"
      return 0
    fi
    sleep 1
  done
  cat "$work/$name.log" >&2
  fail "$name: the receiver did not become ready within 60 s (its log is above)"
}

log "binary: $bin ($(date -r "$bin" -u +%FT%TZ))"
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=localhost \
  -addext subjectAltName=DNS:localhost,IP:127.0.0.1 \
  -keyout "$work/key.pem" -out "$work/cert.pem" 2>/dev/null
start rsa "[tls]
mode = \"rustls\"
cert = \"cert.pem\"
key = \"key.pem\""
rsa_port=$port
start ecdsa "[tls]
mode = \"self-signed\""
ecdsa_port=$port

log "sslyze $SSLYZE_VERSION against both listeners"
"$venv/bin/python" scripts/tls_scan.py --json "$out/result.json" \
  --target "rustls-rsa2048=127.0.0.1:$rsa_port" --target "self-signed-ecdsa-p256=127.0.0.1:$ecdsa_port"
