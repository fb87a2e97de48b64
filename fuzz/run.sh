#!/usr/bin/env bash
# Runs every cargo-fuzz target for a fixed time: `fuzz/run.sh [SECONDS_PER_TARGET]` (default
# 60). Needs the nightly toolchain (fails if it is missing) and cargo-fuzz (installed if
# missing). The committed seeds in fuzz/corpus/<target>/ are read, never written: what
# libFuzzer finds goes to fuzz/target/corpus/<target>/. Exits non-zero if any target
# crashes, naming the artefact in fuzz/artifacts/<target>/ to reproduce it with
# `cargo +nightly fuzz run <target> <artefact>` (from the repository root).
set -euo pipefail
cd "$(dirname "$0")/.."

per_target=${1:-60}
case $per_target in
  '' | *[!0-9]* | 0) echo "usage: fuzz/run.sh [SECONDS_PER_TARGET > 0]" >&2; exit 2 ;;
esac

log() { printf '==> %s\n' "$*"; }

if ! cargo +nightly --version >/dev/null 2>&1; then
  echo "fuzz/run.sh: the nightly Rust toolchain is missing (cargo-fuzz needs it)." >&2
  echo "Install it with: rustup toolchain install nightly --profile minimal" >&2
  exit 2
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  log "installing cargo-fuzz"
  cargo install cargo-fuzz --locked
fi
log "toolchain: $(cargo +nightly --version); $(cargo fuzz --version)"

export CARGO_BUILD_JOBS=${CARGO_BUILD_JOBS:-2}
log "building every target (release, debug assertions, AddressSanitizer)"
build_started=$(date +%s)
cargo +nightly fuzz build --debug-assertions
log "built in $(($(date +%s) - build_started)) s"

mapfile -t targets < <(cargo +nightly fuzz list)
[ "${#targets[@]}" -gt 0 ] || { echo "fuzz/run.sh: no fuzz targets found" >&2; exit 1; }

failed=()
for target in "${targets[@]}"; do
  work=fuzz/target/corpus/$target
  output=fuzz/target/logs/$target.log
  mkdir -p "$work" "$(dirname "$output")" "fuzz/artifacts/$target"
  log "$target: ${per_target} s (log: $output)"
  status=0
  cargo +nightly fuzz run --debug-assertions "$target" "$work" "fuzz/corpus/$target" -- \
    -max_total_time="$per_target" -rss_limit_mb=2048 -print_final_stats=1 \
    >"$output" 2>&1 || status=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$output" | tail -n 1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$output" | tail -n 1)
  # libFuzzer's last status line: coverage points, features, corpus entries/size.
  reached=$(grep -o 'cov: [0-9]* ft: [0-9]* corp: [0-9]*/[0-9a-zA-Z]*' "$output" | tail -n 1 || true)
  if [ "$status" -eq 0 ]; then
    log "$target: OK, ${execs:-?} executions (${rate:-?}/s), ${reached:-no coverage line}"
  else
    failed+=("$target")
    tail -n 40 "$output" >&2
    artefact=$(grep -o "fuzz/artifacts/$target/[^ ]*" "$output" | tail -n 1 || true)
    echo "fuzz/run.sh: $target FAILED (exit $status) after ${execs:-?} executions." >&2
    echo "  crash artefact: ${artefact:-none written; see $output}" >&2
    echo "  reproduce: cargo +nightly fuzz run $target ${artefact:-<artefact>}" >&2
  fi
done

if [ "${#failed[@]}" -gt 0 ]; then
  echo "fuzz/run.sh: ${#failed[@]} target(s) failed: ${failed[*]}" >&2
  exit 1
fi
log "every target ran ${per_target} s without a crash: ${targets[*]}"
