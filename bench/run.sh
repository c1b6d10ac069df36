#!/usr/bin/env bash
# `stratus run` vs the AWS Runtime Interface Emulator (issue 4, the local
# test mode).
#
#   bench/run.sh [DURATION_S]     (default 10)
#
# The same Rust function (tests/fixtures/rust-function, event {} → echo):
#   rie     : the emulator from PyPI's aws-sam-cli wheel, the bootstrap as a
#             host process (what `docker run -p 9000:8080 IMAGE` serves,
#             minus Docker); restarted for each C (it does not survive
#             concurrent invokes)
#   stratus : `stratus run oci:LAYOUT --concurrency 8`, instances under runc
# For each C ∈ {1, 8}: a warm-up of 200 invokes run to completion (8 at a
# time for stratus, so its instances exist), then
# `wrk -cC -dDURATION_S --latency` POSTing {} to
# /2015-03-31/functions/function/invocations. Reports p50, p99, 2xx req/s
# and errors (non-2xx + socket errors). Everything started here is stopped
# by PID on exit.
set -euo pipefail
DURATION_S=${1:-10}
CONCURRENCY=(1 8)
WARMUP_INVOKES=200
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK="$ROOT/target/bench-run"
CACHE="$ROOT/target/bench-cache"
BOOTSTRAP="$ROOT/target/fixtures/x86_64-unknown-linux-gnu/release/bootstrap"
STRATUS="$ROOT/target/release/stratus"
INVOKE_PATH=/2015-03-31/functions/function/invocations
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"
trap stop_server EXIT
trap 'exit 130' INT TERM

for tool in wrk runc curl python3 unzip pip; do
  command -v "$tool" >/dev/null || { echo "missing $tool (apt-get install -y wrk runc …)" >&2; exit 1; }
done
rm -rf "$WORK"; mkdir -p "$WORK" "$CACHE"

echo "building stratus and the test function…" >&2
cargo build --release -q -p stratus --manifest-path "$ROOT/Cargo.toml"
CARGO_TARGET_DIR="$ROOT/target/fixtures" RUSTFLAGS="-C target-feature=+crt-static" \
  cargo build --release -q --target x86_64-unknown-linux-gnu \
  --manifest-path "$ROOT/tests/fixtures/rust-function/Cargo.toml"
ensure_rie
write_wrk_script
python3 "$ROOT/bench/rust-image-layout.py" "$WORK/layout" "$BOOTSTRAP"

# --- the emulator -----------------------------------------------------------------
echo "rie…" >&2
for c in "${CONCURRENCY[@]}"; do
  RIE_PORT=$(free_port); RAPI_PORT=$(free_port)
  (cd "$WORK" && exec "$RIE" --log-level error --runtime-interface-emulator-address "127.0.0.1:$RIE_PORT" \
    --runtime-api-address "127.0.0.1:$RAPI_PORT" "$BOOTSTRAP") > /dev/null 2>> "$WORK/rie.err" &
  PID=$!
  for _ in $(seq 1 100); do curl -s -o /dev/null "http://127.0.0.1:$RIE_PORT/" && break; sleep 0.05; done
  URL="http://127.0.0.1:$RIE_PORT$INVOKE_PATH"
  warm "$URL" 1 > /dev/null
  measure rie "$URL" "$c"
  stop_server
done

# --- stratus run ------------------------------------------------------------------------
echo "stratus run…" >&2
STRATUS_DATA="$WORK/stratus-data"
started=$(date +%s%N)
"$STRATUS" run "oci:$WORK/layout:latest" --listen 127.0.0.1:0 --data-dir "$STRATUS_DATA" \
  --concurrency 8 > "$WORK/stratus.out" 2> "$WORK/stratus.out.err" &
PID=$!
wait_listening "$WORK/stratus.out"
READY_MS=$(( ($(date +%s%N) - started) / 1000000 ))
URL="http://127.0.0.1:$PORT$INVOKE_PATH"
for c in "${CONCURRENCY[@]}"; do
  warm "$URL" 8 > /dev/null
  measure stratus "$URL" "$c"
done
INSTANCES=$(runc --root "$STRATUS_DATA/oci/runtime" list -q 2>/dev/null | wc -l)
stop_server

# --- report ------------------------------------------------------------------------------------
echo
echo "stratus run vs rie, ${DURATION_S}s per run, wrk on the same $(nproc) cores, event {}; load average now: $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-8s %4s %9s %9s %9s %8s  %s\n' system C p50_us p99_us req/s errors note
for key in "${ORDER[@]}"; do
  # shellcheck disable=SC2086
  printf '%-8s %4s %9s %9s %9s %8s  %s\n' $key "${P50[$key]}" "${P99[$key]}" "${RPS[$key]}" \
    "$(( ${NON2XX[$key]} + ${SOCKERR[$key]} ))" "${NOTE[$key]}"
done
echo "(req/s counts 2xx only; errors = non-2xx + socket errors; latencies include errors)"
echo "(stratus run: start to ready ${READY_MS} ms including image import and unpack; $INSTANCES instance(s) alive at the end)"
if grep -q '^panic:' "$WORK/rie.err" 2>/dev/null; then
  echo "rie panicked $(grep -c '^panic:' "$WORK/rie.err") time(s): $(grep -m1 '^panic:' "$WORK/rie.err")"
fi
