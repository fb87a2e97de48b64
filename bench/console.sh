#!/usr/bin/env bash
# Times every console page over a big store: BENCH_CONSOLE_ROWS stored events (default 10M,
# bench/prefill.sql) and BENCH_CONSOLE_DEAD dead deliveries (default 100k) of one target,
# served by the release binary with the console on. Each page is fetched BENCH_CONSOLE_RUNS
# times (default 5) after one warm-up fetch; the median and the slowest are printed as a
# markdown table (for BENCHMARKS.md). The filled database (audian_console_bench) is kept
# for the next run; BENCH_CONSOLE_REFILL=1 fills it again. Needs Postgres on 127.0.0.1:5432
# and free ports 18443/19090.
set -euo pipefail
cd "$(dirname "$0")/.."

ROWS=${BENCH_CONSOLE_ROWS:-10000000}
DEAD=${BENCH_CONSOLE_DEAD:-100000}
RUNS=${BENCH_CONSOLE_RUNS:-5}
DB=audian_console_bench
BIN=${AUDIAN_RECEIVER_BIN:-target/release/audian-receiver}
PSQL=(psql -h 127.0.0.1 -U postgres -qAt -v ON_ERROR_STOP=1)
TOKEN=console-bench-token
ADMIN=http://127.0.0.1:19090
log() { echo "[$(date +%T)] $*" >&2; }
[[ -x $BIN ]] || { echo "$0: $BIN is missing (cargo build --release)" >&2; exit 1; }

work=$(mktemp -d)
cat >"$work/console.toml" <<TOML
[server]
listen = "127.0.0.1:18443"
[admin]
listen = "127.0.0.1:19090"
[tls]
mode = "self-signed"
[database]
url = "postgres://postgres@127.0.0.1:5432/$DB?sslmode=disable"
[log]
level = "warn"
[forward]
workers = 0
[[forward.targets]]
name = "billing"
kind = "http"
url = "http://127.0.0.1:9/hook"
TOML

filled=$("${PSQL[@]}" -d postgres -c "SELECT 1 FROM pg_database WHERE datname = '$DB'")
if [[ -z $filled || ${BENCH_CONSOLE_REFILL:-0} == 1 ]]; then
    log "filling $DB: $ROWS events, $DEAD dead deliveries (minutes)"
    "${PSQL[@]}" -d postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB"
    AUDIAN_WEBHOOK_SECRET=x "$BIN" migrate --config "$work/console.toml" >/dev/null
    "${PSQL[@]}" -d "$DB" -v rows="$ROWS" -f bench/prefill.sql >/dev/null
    "${PSQL[@]}" -d "$DB" <<SQL
INSERT INTO forward_cursors (target, txid, seq, origin_txid, origin_seq)
SELECT 'billing', max(txid), max(seq), '0'::xid8, 0 FROM events;
INSERT INTO forward_retries (target, event_id, state, attempts, next_attempt_at, last_error, updated_at)
SELECT 'billing', event_id, 'dead', 20, now(), 'HTTP 503 Service Unavailable', received_at
FROM events ORDER BY txid DESC, seq DESC LIMIT $DEAD;
VACUUM (ANALYZE) forward_retries;
SQL
fi

AUDIAN_WEBHOOK_SECRET=x AUDIAN_CONSOLE_TOKEN=$TOKEN "$BIN" serve --config "$work/console.toml" \
    >"$work/receiver.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 100); do curl -fs "$ADMIN/readyz" >/dev/null && break; sleep 0.2; done
curl -fs -c "$work/jar" -o /dev/null -d "token=$TOKEN" "$ADMIN/console/login"

mid=$("${PSQL[@]}" -d "$DB" -c "SELECT event_id FROM events ORDER BY txid, seq OFFSET $((ROWS / 2)) LIMIT 1")
dead_page=$(curl -fs -b "$work/jar" "$ADMIN/console/target?name=billing&state=dead" \
    | grep -o 'href="/console/target?[^"]*after_at[^"]*"' | head -1 | sed 's/href="//; s/"$//; s/&amp;/\&/g')
from=$(date -u -d '-2 hours' +%Y-%m-%dT%H:%M)
to=$(date -u -d '-1 hours' +%Y-%m-%dT%H:%M)
pages=(
    "overview|/console"
    "target, dead, first page|/console/target?name=billing&state=dead"
    "target, dead, next page|$dead_page"
    "events, newest|/console/events"
    "events, type glob job.*|/console/events?type=job.*"
    "events, exact id|/console/events?id=$mid"
    "events, a 1 h range 1 h ago|/console/events?from=$from&to=$to"
    "event|/console/event?id=$mid"
)
echo "| page | median | slowest |"
echo "|---|---|---|"
for entry in "${pages[@]}"; do
    name=${entry%%|*}
    path=${entry#*|}
    curl -fs -b "$work/jar" -o /dev/null "$ADMIN$path"
    times=()
    for _ in $(seq "$RUNS"); do
        times+=("$(curl -fs -b "$work/jar" -o /dev/null -w '%{time_total}' "$ADMIN$path")")
    done
    printf '%s\n' "${times[@]}" | sort -n | awk -v name="$name" '
        { t[NR] = $1 * 1000 } END { printf "| %s | %.0f ms | %.0f ms |\n", name, t[int((NR + 1) / 2)], t[NR] }'
done
