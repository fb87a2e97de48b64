#!/usr/bin/env bash
# Every refusal read by the clients Audian's users reach for first: the system's curl (7.88 on
# Debian 12) over HTTP/2 and HTTP/1.1, and Python httpx over HTTP/2 (PyPI, pinned, in a venv
# under target/edge-clients/), against the built binary. Each must read 401 for a missing,
# malformed, short and wrong X-Audian-Signature and 413 for a 2 MB body, exiting 0 with the
# JSON reason; then one signed event gets 200. Needs Postgres on 127.0.0.1:5432 (user
# postgres, trust; the database audian_receiver_edge_clients is made and dropped) and a built
# binary: AUDIAN_RECEIVER_BIN, else target/release, else target/debug. About 15 s warm.
set -euo pipefail
cd "$(dirname "$0")/.."

HTTPX_VERSION=0.28.1
H2_VERSION=4.3.0
DATABASE=audian_receiver_edge_clients
POSTGRES=postgres://postgres@127.0.0.1:5432
SECRET="edge-clients-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
out=target/edge-clients

log() { printf '==> %s\n' "$*"; }
fail() { echo "edge-clients: $*" >&2; exit 1; }

# shellcheck source=scripts/receiver.sh
. scripts/receiver.sh
bin=$(receiver_binary)
require_postgres
curl --version | grep -q nghttp2 || fail "this curl has no HTTP/2 (nghttp2)"

mkdir -p "$out"
venv=$out/venv
if ! "$venv/bin/python" -c "import httpx, h2; assert httpx.__version__ == '$HTTPX_VERSION'" 2>/dev/null; then
  log "installing httpx[http2] $HTTPX_VERSION into $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "httpx[http2]==$HTTPX_VERSION" "h2==$H2_VERSION"
fi

work=$(mktemp -d "$PWD/$out/run.XXXXXX")
pid=""
cleanup() {
  if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  psql -q "$POSTGRES/postgres" -c "DROP DATABASE IF EXISTS $DATABASE WITH (FORCE)" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

port=$(free_port)
admin=$(free_port)
cat >"$work/edge.toml" <<EOF
[server]
listen = "127.0.0.1:$port"
[admin]
listen = "127.0.0.1:$admin"
[tls]
mode = "self-signed"
[database]
url = "$POSTGRES/$DATABASE"
[forward]
workers = 0
EOF
(cd "$work" && exec env -i PATH="$PATH" RUST_LOG=warn AUDIAN_WEBHOOK_SECRET="$SECRET" \
    "$bin" serve --config edge.toml >edge.log 2>&1) &
pid=$!
for _ in $(seq 1 60); do
  curl -fsS "http://127.0.0.1:$admin/readyz" >/dev/null 2>&1 && break
  kill -0 "$pid" 2>/dev/null || { cat "$work/edge.log" >&2; fail "the receiver exited"; }
  sleep 0.5
done
curl -fsS "http://127.0.0.1:$admin/readyz" >/dev/null || fail "the receiver never became ready"
url="https://127.0.0.1:$port/webhook"

# A 137-byte event, as in the report that found the lost refusals.
body='{"id":"evt_edge_clients_0001","type":"job.completed","data":{"job_id":"j_0001","duration_ms":1234,"note":"edge clients check 137 bytes"}}'
[ "${#body}" -eq 137 ] || fail "the sample body is ${#body} bytes, not 137"
head -c 2000000 /dev/zero | tr '\0' x >"$work/big.json"
zeros=0000000000000000000000000000000000000000000000000000000000000000
invalid='{"error":"Invalid signature"}'
too_large='{"error":"Payload too large"}'

failures=0
# check LABEL STATUS BODY -- CURL_ARGS...: one curl per HTTP version.
check_curl() {
  local label=$1 status=$2 expected=$3 version got code rc
  shift 4
  for version in --http2 --http1.1; do
    rc=0
    got=$(curl -sk "$version" --max-time 20 -o - -w '\n%{http_code} %{http_version}' \
      -H 'Content-Type: application/json' "$@" "$url") || rc=$?
    code=$(printf '%s' "$got" | tail -n 1)
    got=$(printf '%s' "$got" | sed '$d')
    if [ "$rc" -eq 0 ] && [ "${code%% *}" = "$status" ] && [ "$got" = "$expected" ]; then
      log "curl $version $label: $code $got"
    else
      echo "FAIL curl $version $label: exit $rc, status/version '$code', body '$got'" >&2
      failures=$((failures + 1))
    fi
  done
}
check_curl "missing signature" 401 "$invalid" -- -d "$body"
check_curl "malformed signature" 401 "$invalid" -- -H 'X-Audian-Signature: sha256=not-hex!' -d "$body"
check_curl "short signature" 401 "$invalid" -- -H 'X-Audian-Signature: abcd' -d "$body"
check_curl "wrong signature" 401 "$invalid" -- -H "X-Audian-Signature: $zeros" -d "$body"
check_curl "2 MB body" 413 "$too_large" -- -H "X-Audian-Signature: $zeros" --data-binary "@$work/big.json"

if "$venv/bin/python" scripts/edge_clients.py "$url" "$work/big.json" "$body"; then
  log "httpx (HTTP/2): every refusal read"
else
  failures=$((failures + 1))
fi

sig=$(printf '%s' "$body" | env -i AUDIAN_WEBHOOK_SECRET="$SECRET" "$bin" sign)
check_curl "signed event" 200 '{"status":"ok"}' -- -H "X-Audian-Signature: $sig" -d "$body"

if [ "$failures" -gt 0 ]; then
  tail -n 20 "$work/edge.log" >&2
  fail "$failures check(s) failed"
fi
log "edge clients: every refusal read by curl (HTTP/2, HTTP/1.1) and httpx (HTTP/2)"
