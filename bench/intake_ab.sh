#!/usr/bin/env bash
# A/B of intake alone: runs the release receiver on bench/intake.toml once per variant, in
# the order given, each against a fresh `audian_bench` database, with the same load
# (audian-loadgen, 50 keep-alive HTTPS connections, 3 s warmup, 10 s measured), and prints
# one line per variant: accepted/s, p50 and p99 (ms), peak RSS. A variant is NAME or
# NAME:VAR=VALUE[,VAR=VALUE…], the variables set for that receiver only. Alternate the
# variants (a b a b) to see the noise. Example, Postgres over TLS against plaintext:
#
#   bench/intake_ab.sh \
#     tls:AUDIAN_RECEIVER__DATABASE__URL=postgres://postgres@127.0.0.1:5432/audian_bench \
#     plain \
#     tls:AUDIAN_RECEIVER__DATABASE__URL=postgres://postgres@127.0.0.1:5432/audian_bench \
#     plain
#
# BIN=PATH among a variant's settings runs that receiver binary instead of the release build
# (an older build, to compare two commits in one run):
#
#   bench/intake_ab.sh before:BIN=/tmp/old-bin/audian-receiver after \
#                      before:BIN=/tmp/old-bin/audian-receiver after
#
# Needs the release build (`cargo build --release`) and Postgres on 127.0.0.1:5432; ports
# 8443 and 9090 free.
set -euo pipefail
cd "$(dirname "$0")/.."
export AUDIAN_WEBHOOK_SECRET=${AUDIAN_WEBHOOK_SECRET:-bench-secret-0123456789}
PSQL=(psql -h 127.0.0.1 -U postgres -qAt -v ON_ERROR_STOP=1)
for binary in target/release/audian-receiver target/release/audian-loadgen; do
    [[ -x $binary ]] || { echo "$0: $binary is missing (cargo build --release)" >&2; exit 1; }
done
(($# > 0)) || { sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
for variant in "$@"; do
    name=${variant%%:*}
    settings=()
    [[ $variant == *:* ]] && IFS=, read -r -a settings <<<"${variant#*:}"
    receiver=target/release/audian-receiver
    for i in "${!settings[@]}"; do
        if [[ ${settings[$i]} == BIN=* ]]; then
            receiver=${settings[$i]#BIN=}
            unset 'settings[i]'
        fi
    done
    "${PSQL[@]}" -d postgres -c "DROP DATABASE IF EXISTS audian_bench WITH (FORCE)" \
        -c "CREATE DATABASE audian_bench"
    log=$(mktemp -t "intake-ab-$name.XXXXXX.log")
    env "${settings[@]}" "$receiver" serve --config bench/intake.toml >"$log" 2>&1 &
    pid=$!
    for _ in $(seq 100); do
        (exec 3<>/dev/tcp/127.0.0.1/8443) 2>/dev/null && break
        kill -0 "$pid" 2>/dev/null || { echo "$0: $name: the receiver exited (log: $log)" >&2; exit 1; }
        sleep 0.1
    done
    out=$(target/release/audian-loadgen --insecure --connections 50 --warmup 3 --duration 10 \
        --requests 400000 --json)
    rss=$(awk '/VmHWM/ { printf "%.1f MiB", $2 / 1024 }' "/proc/$pid/status")
    kill "$pid"
    wait "$pid" 2>/dev/null || true
    python3 - "$name" "$out" "$rss" <<'PY'
import json, sys
name, out, rss = sys.argv[1:]
d = json.loads(out)
rate, latency = d["accepted"] / d["elapsed_s"], d["latency_ms"]
print(f"{name}\t{rate:,.0f}/s\tp50 {latency['p50']:.1f} ms\tp99 {latency['p99']:.1f} ms\tpeak RSS {rss}")
PY
done
"${PSQL[@]}" -d postgres -c "DROP DATABASE IF EXISTS audian_bench WITH (FORCE)"
