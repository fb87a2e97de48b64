#!/usr/bin/env bash
# Every benchmark figure of BENCHMARKS.md in one command, each phase under the same load and
# each accepted rate a ratio to the bare baseline server measured in the same run (DESIGN §6).
#
#   bench/run.sh           phases: a. bare server, b. receiver without targets,
#                          c. receiver + one NATS target, d. receiver + http, nats, amqp, redis,
#                          e. (only when named in BENCH_PHASES) c plus an HTTP target that is
#                          down, to compare the healthy target's rate with c
#                          otlp (only when named) b with trace export on, 10 % sampled
#                          (traceidratio 0.1), to bench_sink's OTLP/HTTP endpoint
#                          kafka (only when named) b plus one Kafka target (tansu on 9092,
#                          started by scripts/tansu.sh when it is down)
#   bench/run.sh --big     the same, then b and c again over a log of 10M stored events
#
# Besides the rates, a second table: for every phase the CPU per accepted event of the
# server, Postgres, each broker and the load generator (from /proc over the measured
# window), and the server's syscalls and context switches per event (perf stat).
#
# Needs Postgres (127.0.0.1:5432, user postgres), NATS with JetStream (4222), RabbitMQ
# (5672, guest) and Redis (6379) running, and 8443, 9090 and 9999 free; a Kafka-protocol
# broker on 9092 is started (scripts/tansu.sh) when none is up. Progress goes to
# stderr, the markdown table (for BENCHMARKS.md) to stdout; logs stay in a directory under
# /tmp named at the start.
#
# Environment, with defaults:
#   BENCH_DURATION=20          measured seconds per phase (whole seconds)
#   BENCH_WARMUP=5             uncounted seconds of load before each measurement
#   BENCH_CONNECTIONS=50       keep-alive HTTPS connections
#   BENCH_PHASES="bare intake nats all"   which of a–d to run, in this order
#   BENCH_BIG=0                1 = as --big
#   BENCH_PREFILL_ROWS=10000000           stored events for --big
#   BENCH_DRAIN_DEADLINE=120   seconds to wait after the load for every target to hold
#                              every accepted event
#   BENCH_BARE_MAX_RATE=100000, BENCH_MAX_RATE=30000
#                              events pre-signed per measured second, bare / receiver (the
#                              loadgen stops early when they run out; the run says so)
#   BENCH_BUILD=1              0 = skip `cargo build` and use the binaries already built
#   CARGO_TARGET_DIR           where cargo builds (default: target/ in the repository)
#   AUDIAN_WEBHOOK_SECRET=bench-secret-0123456789, RABBITMQ_PASSWORD=guest
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

die() {
    echo "bench/run.sh: error: $*" >&2
    exit 1
}
log() { echo "[$(date +%T)] $*" >&2; }

# ---------------------------------------------------------------------------- settings --

DURATION=${BENCH_DURATION:-20}
WARMUP=${BENCH_WARMUP:-5}
CONNECTIONS=${BENCH_CONNECTIONS:-50}
PHASES=${BENCH_PHASES:-bare intake nats all}
BIG=${BENCH_BIG:-0}
PREFILL_ROWS=${BENCH_PREFILL_ROWS:-10000000}
DRAIN_DEADLINE=${BENCH_DRAIN_DEADLINE:-120}
BARE_MAX_RATE=${BENCH_BARE_MAX_RATE:-100000}
MAX_RATE=${BENCH_MAX_RATE:-30000}
BUILD=${BENCH_BUILD:-1}
export AUDIAN_WEBHOOK_SECRET=${AUDIAN_WEBHOOK_SECRET:-bench-secret-0123456789}
export RABBITMQ_PASSWORD=${RABBITMQ_PASSWORD:-guest}

for arg in "$@"; do
    case $arg in
        --big) BIG=1 ;;
        -h | --help)
            sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'
            exit 0
            ;;
        *) die "unknown argument $arg (only --big)" ;;
    esac
done
for var in DURATION WARMUP CONNECTIONS PREFILL_ROWS DRAIN_DEADLINE BARE_MAX_RATE MAX_RATE; do
    [[ ${!var} =~ ^[0-9]+$ ]] || die "BENCH_$var must be a whole number (got '${!var}')"
done
((DURATION > 0 && CONNECTIONS > 0 && PREFILL_ROWS > 0)) ||
    die "BENCH_DURATION, BENCH_CONNECTIONS and BENCH_PREFILL_ROWS must be > 0"
for phase in $PHASES; do
    case $phase in bare | intake | nats | all | dead | otlp | kafka) ;; *) die "BENCH_PHASES: unknown phase '$phase'" ;; esac
done
if [[ $BIG == 1 ]]; then
    PHASES="$PHASES intake-big nats-big"
fi

DB=audian_bench                   # the database every bench/*.toml names
TEMPLATE_DB=audian_bench_prefill  # the --big log, filled once, cloned for each big phase
PSQL=(psql -h 127.0.0.1 -p 5432 -U postgres -X -q -At -v ON_ERROR_STOP=1)
export PGOPTIONS='-c client_min_messages=warning'
RUN_ID=$(printf '%04x' $((RANDOM % 65536)))
RUN_DIR="" # made once the preconditions hold

# ------------------------------------------------------------------------- helpers --

now_us() { echo $((10#${EPOCHREALTIME//[.,]/})); }

sleep_until_us() {
    local left=$(($1 - $(now_us)))
    if ((left > 0)); then sleep "$(printf '%d.%06d' $((left / 1000000)) $((left % 1000000)))"; fi
}

port_open() { (: <>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# GET http://127.0.0.1:PORT/PATH with bash alone; prints the body, fails unless 200.
http_get() {
    local response
    response=$({
        printf 'GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' "$2" >&3
        cat <&3
    } 2>/dev/null 3<>"/dev/tcp/127.0.0.1/$1") || return 1
    [[ $response == "HTTP/1."[01]" 200 "* ]] || return 1
    printf '%s\n' "${response#*$'\r\n\r\n'}"
}

# Alive and not a zombie (a child that exited stays in /proc until it is waited for).
alive() {
    local _pid _comm state
    [[ -r /proc/$1/stat ]] && read -r _pid _comm state _ <"/proc/$1/stat" 2>/dev/null &&
        [[ $state != Z ]]
}

STARTED=() # every process this script started, so that any exit stops them
forget() {
    local keep=() pid
    for pid in "${STARTED[@]}"; do [[ $pid == "$1" ]] || keep+=("$pid"); done
    STARTED=("${keep[@]}")
}

# Stops one process this script started: SIGTERM, up to 30 s to exit, then SIGKILL.
stop() {
    local pid=$1 i
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 300; i++)); do
        alive "$pid" || break
        sleep 0.1
    done
    if alive "$pid"; then
        log "process $pid ignored SIGTERM for 30 s: SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
    forget "$pid"
}

cleanup() {
    local status=$? i
    for ((i = ${#STARTED[@]} - 1; i >= 0; i--)); do stop "${STARTED[i]}"; done
    if [[ $BIG == 1 ]]; then
        "${PSQL[@]}" -d postgres -c "DROP DATABASE IF EXISTS $TEMPLATE_DB WITH (FORCE)" \
            -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" 2>/dev/null || true
    fi
    if [[ -n $RUN_DIR ]]; then rm -rf "$RUN_DIR/bin"; fi
    if ((status != 0)) && [[ -n $RUN_DIR ]]; then echo "bench/run.sh: failed; logs in $RUN_DIR" >&2; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Polls "$@" every 50 ms until it succeeds; dies after SECS, or as soon as PID is gone.
wait_for() {
    local secs=$1 what=$2 pid=$3 logfile=$4
    shift 4
    local deadline=$(($(now_us) + secs * 1000000))
    until "$@"; do
        if [[ -n $pid ]] && ! alive "$pid"; then
            tail -n 20 "$logfile" >&2 || true
            die "$what: the process exited (log: $logfile)"
        fi
        (($(now_us) < deadline)) || die "$what: not within $secs s (log: $logfile)"
        sleep 0.05
    done
}

# Destination counts from bench_sink's /counts line into COUNT[http|nats|amqp|redis].
declare -A COUNT
read_counts() {
    local line kv attempt
    for attempt in 1 2 3; do
        if line=$(http_get 9999 /counts); then
            for kv in $line; do COUNT[${kv%%=*}]=${kv#*=}; done
            return 0
        fi
        sleep 0.1
    done
    return 1
}

json_field() { sed -n "s/.*\"$1\":\([-0-9.eE+]*\).*/\1/p" "$2"; }

thousands() {
    local n=$1 out=""
    while ((${#n} > 3)); do
        out=",${n: -3}$out"
        n=${n:0:${#n}-3}
    done
    echo "$n$out"
}
rounded() { awk -v x="$1" 'BEGIN { printf "%.0f", x }'; }
per_second() { awk -v n="$1" -v us="$2" 'BEGIN { printf "%.0f", n * 1e6 / us }'; }

# CPU time (user + system, clock ticks) of the processes named, summed: "pid:PID",
# "user:NAME" (every process of that user: all of Postgres's backends, RabbitMQ's VM) or
# "exe:NAME". A process that is gone counts 0.
cpu_ticks() {
    local pids=() what total=0 pid stat
    for what in "$@"; do
        case $what in
            pid:*) pids+=("${what#pid:}") ;;
            user:*) mapfile -t -O "${#pids[@]}" pids < <(pgrep -u "${what#user:}" || true) ;;
            exe:*) mapfile -t -O "${#pids[@]}" pids < <(pgrep -x "${what#exe:}" || true) ;;
        esac
    done
    for pid in "${pids[@]}"; do
        stat=$(cat "/proc/$pid/stat" 2>/dev/null) || continue
        # Fields after the command (which may hold spaces): utime is the 12th, stime the 13th.
        read -r -a fields <<<"${stat##*) }"
        total=$((total + fields[11] + fields[12]))
    done
    echo "$total"
}

# Microseconds of CPU per event: TICKS clock ticks over N events.
us_per_event() {
    awk -v t="$1" -v n="$2" -v hz="$CLK_TCK" 'BEGIN { if (n > 0) printf "%.1f", t / hz * 1e6 / n; else print "–" }'
}

declare -A BROKER_NAME=([nats]=NATS [amqp]=RabbitMQ [redis]=Redis [kafka]=Kafka)
# The processes whose CPU each phase reports, as cpu_ticks arguments.
declare -A CPU_OF=(
    [postgres]="user:postgres"
    [nats]="exe:nats-server"
    [amqp]="user:rabbitmq"
    [redis]="exe:redis-server"
    [kafka]="exe:tansu"
)
ms() { awk -v x="$1" 'BEGIN { printf (x < 1 ? "%.2f ms" : "%.1f ms"), x }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
seconds() { awk -v us="$1" 'BEGIN { printf "%.1f s", us / 1e6 }'; }
human_count() {
    local n=$1
    if ((n % 1000000 == 0)); then echo "$((n / 1000000))M"; elif ((n % 1000 == 0)); then echo "$((n / 1000))k"; else thousands "$n"; fi
}

# -------------------------------------------------------------------- preconditions --

need_brokers=0
need_postgres=0
for phase in $PHASES; do
    case $phase in
        bare) ;;
        intake | intake-big) need_postgres=1 ;;
        *) need_postgres=1 need_brokers=1 ;;
    esac
done
services=()
if ((need_postgres)); then services+=("Postgres:5432"); fi
if ((need_brokers)); then
    # bench_sink provisions a topic on Kafka for every phase with targets.
    port_open 9092 || scripts/tansu.sh >&2 || die "no Kafka broker on 127.0.0.1:9092 and scripts/tansu.sh failed"
    services+=("NATS:4222" "RabbitMQ:5672" "Redis:6379" "Kafka:9092")
fi
for service in "${services[@]}"; do
    port_open "${service#*:}" ||
        die "${service%:*} is not listening on 127.0.0.1:${service#*:}; start it and run again"
done
if ((need_postgres)); then
    "${PSQL[@]}" -d postgres -c 'SELECT 1' >/dev/null ||
        die "psql cannot connect to postgres@127.0.0.1:5432"
fi
for port in 8443 9090 9999; do
    if port_open "$port"; then
        die "something already listens on 127.0.0.1:$port (a receiver or bench_sink still running?)"
    fi
done

# ---------------------------------------------------------------------------- build --

RUN_DIR=$(mktemp -d "/tmp/audian-bench.XXXXXX")
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
if [[ $BUILD == 1 ]]; then
    log "building (release, --locked) into $TARGET_DIR"
    cargo build -j 2 --release --locked --bin audian-receiver --bin audian-loadgen \
        --example bare_server --example bench_sink >&2
fi
# Run copies: a build in the shared target directory during the run cannot swap them.
BIN=$RUN_DIR/bin
mkdir -p "$BIN"
for binary in audian-receiver audian-loadgen examples/bare_server examples/bench_sink; do
    [[ -x $TARGET_DIR/release/$binary ]] || die "$TARGET_DIR/release/$binary is missing (build first)"
    cp "$TARGET_DIR/release/$binary" "$BIN/"
done
BUILD_ID=$(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo unknown)
log "build $BUILD_ID; logs in $RUN_DIR"

# ---------------------------------------------------------------------- databases --

fresh_database() {
    "${PSQL[@]}" -d postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)"
    DATABASE_URL="postgres://postgres@127.0.0.1:5432/$DB" \
        "$BIN/audian-receiver" migrate --config bench/intake.toml >>"$RUN_DIR/migrate.log" 2>&1 ||
        die "migrating $DB failed (log: $RUN_DIR/migrate.log)"
}

# The big log is written once, by one INSERT … SELECT generate_series (bench/prefill.sql),
# into a database no receiver has served, and each big phase gets a file copy of it: its
# targets are new to it, so their cursors start after the stored events.
PREFILLED=0
prefilled_database() {
    if ((PREFILLED == 0)); then
        "${PSQL[@]}" -d postgres -c "DROP DATABASE IF EXISTS $TEMPLATE_DB WITH (FORCE)"
        DATABASE_URL="postgres://postgres@127.0.0.1:5432/$TEMPLATE_DB" \
            "$BIN/audian-receiver" migrate --config bench/intake.toml >>"$RUN_DIR/migrate.log" 2>&1 ||
            die "migrating $TEMPLATE_DB failed (log: $RUN_DIR/migrate.log)"
        log "prefilling $(thousands "$PREFILL_ROWS") stored events (one INSERT … SELECT, then VACUUM ANALYZE)"
        local started
        started=$(now_us)
        "${PSQL[@]}" -d "$TEMPLATE_DB" -v rows="$PREFILL_ROWS" -f bench/prefill.sql >/dev/null
        log "prefilled in $(seconds $(($(now_us) - started))), $("${PSQL[@]}" -d "$TEMPLATE_DB" \
            -c "SELECT pg_size_pretty(pg_database_size(current_database()))")"
        PREFILLED=1
    fi
    local started
    started=$(now_us)
    "${PSQL[@]}" -d postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" \
        -c "CREATE DATABASE $DB TEMPLATE $TEMPLATE_DB STRATEGY FILE_COPY"
    log "copied the prefilled database in $(seconds $(($(now_us) - started)))"
}

# ------------------------------------------------------------------------- phases --

declare -A LABEL RATE P50 P99 FORWARDED DRAIN RSS CPU_SERVER CPU_PG CPU_BROKERS CPU_LOADGEN SYSCALLS SWITCHES
CLK_TCK=$(getconf CLK_TCK)
NOTES=()

label_of() {
    case $1 in
        bare) echo "a. bare axum + rustls + HMAC" ;;
        intake) echo "b. receiver, no target" ;;
        nats) echo "c. receiver, 1 NATS target" ;;
        all) echo "d. receiver, 4 targets" ;;
        dead) echo "e. receiver, 1 NATS target + 1 dead HTTP target" ;;
        otlp) echo "b′. receiver, no target, OTLP export 10 % sampled" ;;
        kafka) echo "k. receiver, 1 Kafka target" ;;
        intake-big) echo "b. receiver, no target, $(human_count "$PREFILL_ROWS") stored" ;;
        nats-big) echo "c. receiver, 1 NATS target, $(human_count "$PREFILL_ROWS") stored" ;;
    esac
}

# Writes the receiver configuration for a phase: the checked-in one with every
# destination name carrying the phase's tag (the names bench_sink --tag provisions).
phase_config() {
    local source=$1 tag=$2 out=$3 expected=$4
    sed -e "s/\"bench\.{type}\"/\"bench.$tag.{type}\"/" \
        -e "s/\"audian-bench\"/\"audian-bench-$tag\"/" \
        -e "s/\"audian:bench\"/\"audian:bench:$tag\"/" "$source" >"$out"
    local tagged
    tagged=$(grep -c -- "$tag" "$out" || true)
    ((tagged == expected)) ||
        die "$source: expected $expected destination names to tag, found $tagged (were they renamed?)"
}

run_phase() {
    local phase=$1 tag="${1//-/_}_$RUN_ID" config="" targets="" tagged=0 server_log server requests
    local otlp=0 server_env=()
    case $phase in
        intake | intake-big) config=bench/intake.toml ;;
        # Trace export on, by the standard variables, to bench_sink's /v1/traces.
        otlp)
            config=bench/intake.toml otlp=1
            server_env=(OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:9999
                OTEL_TRACES_SAMPLER=traceidratio OTEL_TRACES_SAMPLER_ARG=0.1)
            ;;
        nats | nats-big) config=bench/nats.toml targets="nats" tagged=1 ;;
        kafka) config=bench/kafka.toml targets="kafka" tagged=1 ;;
        all) config=bench/forward.toml targets="http nats amqp redis" tagged=3 ;;
        # The HTTP target's port refuses connections: every event fails there and joins its
        # growing backlog of retry rows; only the healthy NATS target is counted.
        dead) config=bench/nats_dead.toml targets="nats" tagged=1 ;;
    esac
    LABEL[$phase]=$(label_of "$phase")
    log "phase ${LABEL[$phase]}"

    local sink=""
    if [[ -n $targets ]] || ((otlp)); then
        "$BIN/bench_sink" --tag "$tag" --print-every 0 >"$RUN_DIR/$phase.sink.log" 2>&1 &
        sink=$!
        STARTED+=("$sink")
        wait_for 30 "bench_sink" "$sink" "$RUN_DIR/$phase.sink.log" http_get 9999 /counts >/dev/null
        if [[ -n $targets ]]; then
            phase_config "$config" "$tag" "$RUN_DIR/$phase.toml" "$tagged"
            config=$RUN_DIR/$phase.toml
        fi
    fi

    local since="-infinity"
    server_log=$RUN_DIR/$phase.server.log
    if [[ $phase == bare ]]; then
        requests=$((BARE_MAX_RATE * DURATION))
        "$BIN/bare_server" --listen 127.0.0.1:8443 >"$server_log" 2>&1 &
        server=$!
        STARTED+=("$server")
        wait_for 30 "bare_server" "$server" "$server_log" grep -qs listening "$server_log"
    else
        requests=$((MAX_RATE * DURATION))
        case $phase in *-big) prefilled_database ;; *) fresh_database ;; esac
        since=$("${PSQL[@]}" -d "$DB" -c "SELECT coalesce(max(received_at), '-infinity') FROM events")
        env "${server_env[@]}" "$BIN/audian-receiver" serve --config "$config" >"$server_log" 2>&1 &
        server=$!
        STARTED+=("$server")
        wait_for 60 "audian-receiver" "$server" "$server_log" http_get 9090 /readyz >/dev/null
    fi

    # The load. Its measurement starts WARMUP s after it reports its connections open; the
    # destinations are counted at that moment and at the end of the measurement.
    local out=$RUN_DIR/$phase.loadgen.json err=$RUN_DIR/$phase.loadgen.log
    "$BIN/audian-loadgen" --insecure --connections "$CONNECTIONS" --warmup "$WARMUP" \
        --duration "$DURATION" --requests "$requests" --json >"$out" 2>"$err" &
    local loadgen=$!
    STARTED+=("$loadgen")
    wait_for 120 "audian-loadgen" "$loadgen" "$err" grep -qs '^opened' "$err"
    local opened t0=0 t1=0 target
    opened=$(now_us)
    declare -A before=()
    sleep_until_us $((opened + WARMUP * 1000000))
    if [[ -n $targets ]]; then
        read_counts || die "bench_sink /counts did not answer"
        t0=$(now_us)
        for target in $targets; do before[$target]=${COUNT[$target]}; done
    fi
    # CPU of every process over the measured window, and the server's syscalls and context
    # switches (perf stat on its PID; "–" where perf cannot count them).
    local brokers=() broker
    for target in $targets; do [[ -n ${CPU_OF[$target]:-} ]] && brokers+=("$target"); done
    local cpu0_server cpu0_pg cpu0_loadgen perf_out=$RUN_DIR/$phase.perf.csv perf_pid=""
    declare -A cpu0_broker=()
    cpu0_server=$(cpu_ticks "pid:$server")
    cpu0_pg=$(cpu_ticks "${CPU_OF[postgres]}")
    for broker in "${brokers[@]}"; do cpu0_broker[$broker]=$(cpu_ticks "${CPU_OF[$broker]}"); done
    cpu0_loadgen=$(cpu_ticks "pid:$loadgen")
    if command -v perf >/dev/null; then
        perf stat -x, -e raw_syscalls:sys_enter,context-switches -p "$server" -o "$perf_out" \
            -- sleep "$DURATION" 2>/dev/null &
        perf_pid=$!
    fi
    local end=$((opened + (WARMUP + DURATION) * 1000000))
    # The load generator exits as its window ends: its CPU is read while it still runs.
    local cpu1_loadgen=$cpu0_loadgen ticks
    while (($(now_us) < end)) && [[ ! -s $out ]]; do
        ticks=$(cpu_ticks "pid:$loadgen")
        ((ticks > cpu1_loadgen)) && cpu1_loadgen=$ticks
        sleep 0.02
    done
    if [[ -n $targets ]]; then
        read_counts || die "bench_sink /counts did not answer"
        t1=$(now_us)
    fi
    local cpu1_server cpu1_pg
    declare -A cpu1_broker=()
    cpu1_server=$(cpu_ticks "pid:$server")
    cpu1_pg=$(cpu_ticks "${CPU_OF[postgres]}")
    for broker in "${brokers[@]}"; do cpu1_broker[$broker]=$(cpu_ticks "${CPU_OF[$broker]}"); done
    [[ -n $perf_pid ]] && wait "$perf_pid" 2>/dev/null || true
    wait "$loadgen" || {
        cat "$err" >&2
        die "audian-loadgen failed in phase $phase (log: $err)"
    }
    forget "$loadgen"
    local stopped
    stopped=$(now_us)

    RATE[$phase]=$(json_field accepted_per_s "$out")
    local measured
    measured=$(json_field accepted "$out")
    CPU_SERVER[$phase]=$(us_per_event $((cpu1_server - cpu0_server)) "$measured")
    CPU_PG[$phase]=$(us_per_event $((cpu1_pg - cpu0_pg)) "$measured")
    CPU_BROKERS[$phase]=""
    for broker in "${brokers[@]}"; do
        CPU_BROKERS[$phase]+="${CPU_BROKERS[$phase]:+, }${BROKER_NAME[$broker]} $(us_per_event $((cpu1_broker[$broker] - cpu0_broker[$broker])) "$measured")"
    done
    [[ -n ${CPU_BROKERS[$phase]} ]] || CPU_BROKERS[$phase]="–"
    CPU_LOADGEN[$phase]=$(us_per_event $((cpu1_loadgen - cpu0_loadgen)) "$measured")
    SYSCALLS[$phase]="–"
    SWITCHES[$phase]="–"
    if [[ -s $perf_out ]]; then
        SYSCALLS[$phase]=$(awk -F, -v n="$measured" '$3 ~ /sys_enter/ && $1 ~ /^[0-9]+$/ && n > 0 { printf "%.1f", $1 / n }' "$perf_out")
        SWITCHES[$phase]=$(awk -F, -v n="$measured" '$3 ~ /context-switches/ && $1 ~ /^[0-9]+$/ && n > 0 { printf "%.2f", $1 / n }' "$perf_out")
    fi
    P50[$phase]=$(json_field p50 "$out")
    P99[$phase]=$(json_field p99 "$out")
    local sent accepted elapsed
    sent=$(json_field sent "$out")
    accepted=$(json_field accepted "$out")
    elapsed=$(json_field elapsed_s "$out")
    if ((sent != accepted)); then
        NOTES+=("${LABEL[$phase]}: $((sent - accepted)) of $(thousands "$sent") measured requests not answered 200: $(grep -o '"status_counts":{[^}]*}' "$out"), $(sed -n 's/.*\("errors":.*\),"latency_ms".*/\1/p' "$out")")
    fi
    if awk -v e="$elapsed" -v d="$DURATION" 'BEGIN { exit !(e < d - 0.5) }'; then
        NOTES+=("${LABEL[$phase]}: the $(thousands "$requests") pre-signed events ran out after $elapsed s of $DURATION s (raise BENCH_MAX_RATE or BENCH_BARE_MAX_RATE)")
    fi

    # Drain: from the load's end until every target holds every event the database holds.
    FORWARDED[$phase]="–"
    DRAIN[$phase]="–"
    if [[ -n $targets ]]; then
        local stored
        # `payload IS NOT NULL` lets the count use the partial index on received_at: without
        # it, over the --big log, the count was a 1 s scan that showed up as drain time.
        stored=$("${PSQL[@]}" -d "$DB" -c "SELECT count(*) FROM events WHERE received_at > '$since' AND payload IS NOT NULL")
        local window=$((t1 - t0)) rates=""
        for target in $targets; do
            rates+="${rates:+, }$target $(thousands "$(per_second $((COUNT[$target] - before[$target])) "$window")")"
        done
        FORWARDED[$phase]=$rates
        local deadline=$((stopped + DRAIN_DEADLINE * 1000000)) done_at=0 behind
        while :; do
            read_counts || true
            behind=""
            for target in $targets; do
                ((${COUNT[$target]:-0} >= stored)) || behind+=" $target $(thousands $((stored - ${COUNT[$target]:-0})))"
            done
            if [[ -z $behind ]]; then
                done_at=$(now_us)
                break
            fi
            (($(now_us) < deadline)) || break
            sleep 0.05
        done
        if ((done_at > 0)); then
            DRAIN[$phase]=$(seconds $((done_at - stopped)))
        else
            DRAIN[$phase]="> $DRAIN_DEADLINE s"
            NOTES+=("${LABEL[$phase]}: after $DRAIN_DEADLINE s the targets still lacked events (of $(thousands "$stored") stored):$behind")
        fi
        for target in $targets; do
            if ((${COUNT[$target]:-0} > stored)); then
                NOTES+=("${LABEL[$phase]}: $target holds $(thousands $((COUNT[$target] - stored))) more messages than events were stored (redeliveries)")
            fi
        done
        log "  $(thousands "$stored") events stored; destinations: $(http_get 9999 /counts || echo '?')"
    fi

    if ((otlp)); then
        local dropped
        read_counts || die "bench_sink /counts did not answer"
        dropped=$(http_get 9090 /metrics | awk '/^audian_receiver_otlp_spans_dropped_total/ { n += $2 } END { print n + 0 }')
        NOTES+=("${LABEL[$phase]}: the collector took $(thousands "${COUNT[otlp_requests]}") export requests, $(thousands $((COUNT[otlp_bytes] / 1024))) KiB; spans dropped by the receiver: $dropped")
    fi
    local hwm
    hwm=$(awk '/^VmHWM:/ { print $2 }' "/proc/$server/status")
    RSS[$phase]=$(awk -v kb="$hwm" 'BEGIN { printf "%.1f MiB", kb / 1024 }')
    stop "$server"
    if [[ -n $sink ]]; then stop "$sink"; fi
    log "  $(thousands "$(rounded "${RATE[$phase]}")") accepted/s, p50 $(ms "${P50[$phase]}"), p99 $(ms "${P99[$phase]}"), drain ${DRAIN[$phase]}, peak RSS ${RSS[$phase]}"
}

for phase in $PHASES; do run_phase "$phase"; done

# -------------------------------------------------------------------------- table --

cores=$(nproc)
pg_version=$("${PSQL[@]}" -d postgres -c 'SHOW server_version' 2>/dev/null | cut -d' ' -f1 || echo "?")
{
    echo "### $(date +%F), build $BUILD_ID: \`bench/run.sh$([[ $BIG == 1 ]] && echo ' --big')\`"
    echo
    echo "$cores cores, PostgreSQL $pg_version; loadgen, servers, Postgres and brokers on the same machine." \
        "Per phase: $CONNECTIONS keep-alive HTTPS connections, ${WARMUP} s warmup, ${DURATION} s measured," \
        "every request a distinct pre-signed ~575-byte event; forwarded/s counted at the destinations" \
        "over the measured window; drain = from the load's end until every target holds every stored event;" \
        "peak RSS = the server's VmHWM."
    echo
    echo "| phase | accepted/s | × bare | × b | p50 | p99 | forwarded/s per target | drain | peak RSS |"
    echo "|---|---|---|---|---|---|---|---|---|"
    for phase in $PHASES; do
        vs_bare="–"
        vs_intake="–"
        if [[ -n ${RATE[bare]:-} ]]; then vs_bare=$(ratio "${RATE[$phase]}" "${RATE[bare]}"); fi
        case $phase in
            nats | all | dead | otlp | kafka) base=intake ;;
            nats-big) base=intake-big ;;
            *) base="" ;;
        esac
        if [[ -n $base && -n ${RATE[$base]:-} ]]; then vs_intake=$(ratio "${RATE[$phase]}" "${RATE[$base]}"); fi
        printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "${LABEL[$phase]}" \
            "$(thousands "$(rounded "${RATE[$phase]}")")" "$vs_bare" "$vs_intake" \
            "$(ms "${P50[$phase]}")" "$(ms "${P99[$phase]}")" "${FORWARDED[$phase]}" \
            "${DRAIN[$phase]}" "${RSS[$phase]}"
    done
    echo
    echo "CPU per accepted event over the measured window (user + system, from /proc/PID/stat before and" \
        "after; Postgres = every process of the postgres user; each broker of the phase's targets:" \
        "nats-server, RabbitMQ (every process of its user), redis-server, tansu), and the server's syscalls and context switches per" \
        "event (perf stat on its PID):"
    echo
    echo "| phase | server µs | Postgres µs | brokers µs | loadgen µs | server syscalls | server context switches |"
    echo "|---|---|---|---|---|---|---|"
    for phase in $PHASES; do
        printf '| %s | %s | %s | %s | %s | %s | %s |\n' "${LABEL[$phase]}" "${CPU_SERVER[$phase]}" \
            "${CPU_PG[$phase]}" "${CPU_BROKERS[$phase]}" "${CPU_LOADGEN[$phase]}" \
            "${SYSCALLS[$phase]:-–}" "${SWITCHES[$phase]:-–}"
    done
    if ((${#NOTES[@]} > 0)); then
        echo
        for note in "${NOTES[@]}"; do echo "- $note"; done
    fi
} | tee "$RUN_DIR/table.md"
log "table also in $RUN_DIR/table.md"
