# Sourced by the scripts that run the built receiver (tls-scan.sh, edge-clients.sh): finds
# the binary, checks Postgres, hands out free ports. Each script defines `fail` first.

# The receiver binary: AUDIAN_RECEIVER_BIN, else target/release, else target/debug.
receiver_binary() {
  local bin=${AUDIAN_RECEIVER_BIN:-} candidate
  if [ -z "$bin" ]; then
    for candidate in target/release/audian-receiver target/debug/audian-receiver; do
      if [ -x "$candidate" ]; then bin=$candidate; break; fi
    done
  fi
  [ -n "$bin" ] && [ -x "$bin" ] || fail "no receiver binary: run \`cargo build --release\` (or set AUDIAN_RECEIVER_BIN)"
  realpath "$bin"
}

require_postgres() {
  (exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null || fail "Postgres is not listening on 127.0.0.1:5432"
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
