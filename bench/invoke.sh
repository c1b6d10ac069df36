#!/usr/bin/env bash
# Warm-invoke benchmark (issue: performance, warm invoke).
#
#   bench/invoke.sh [DURATION_S]     (default 10)
#
# The same Rust function (tests/fixtures/rust-function: the official
# lambda_runtime crate, event {} → echo) behind three servers, one at a
# time, on this machine, with wrk on the same cores:
#   rie     : the AWS Runtime Interface Emulator (from PyPI's aws-sam-cli
#             wheel) running the bootstrap as a host process; it serves one
#             invocation at a time
#   floor   : crates/bench-floor, the least a server can do for this path
#             (invoke handed straight to a waiting `next`); 1 instance for
#             C=1, 8 instances for C=8 and C=64
#   stratus : `stratus serve --account-concurrency 8`, the function created
#             from an image pushed to its registry, instances under runc,
#             invoked unsigned on POST /2015-03-31/functions/NAME/invocations
# For each C ∈ {1, 8, 64}: a warm-up of 200 invokes run to completion (8 at
# a time where instances can run in parallel, so that they exist), then
# `wrk -t2 -cC -dDURATION_S --latency` with POST {}. rie is restarted for
# each C (it crashes under concurrent invokes); stratus gets a fresh pool
# for each C (a configuration update), and afterwards 8 parallel invokes
# probe whether the run left the pool short of capacity.
# Reports p50, p99, 2xx req/s, errors (non-2xx + socket errors), the server
# process's own CPU per request (function instances excluded), and the
# ratios the issue's targets name. Latencies include error responses.
#
# Everything started here is stopped by PID on exit, even on failure.
set -euo pipefail
DURATION_S=${1:-10}
CONCURRENCY=(1 8 64)
WARMUP_INVOKES=200
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK="$ROOT/target/bench-invoke"
CACHE="$ROOT/target/bench-cache"
BOOTSTRAP="$ROOT/target/fixtures/x86_64-unknown-linux-gnu/release/bootstrap"
STRATUS="$ROOT/target/release/stratus"
FLOOR="$ROOT/target/release/bench-floor"
FUNCTION=bench-echo
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"

trap stop_server EXIT
trap 'exit 130' INT TERM

for tool in wrk skopeo runc curl python3 unzip pip; do
  command -v "$tool" >/dev/null || { echo "missing $tool (apt-get install -y wrk skopeo runc …)" >&2; exit 1; }
done
rm -rf "$WORK"; mkdir -p "$WORK" "$CACHE"

# --- builds and the emulator ----------------------------------------------------
echo "building stratus, bench-floor and the test function…" >&2
cargo build --release -q -p stratus -p bench-floor --manifest-path "$ROOT/Cargo.toml"
CARGO_TARGET_DIR="$ROOT/target/fixtures" RUSTFLAGS="-C target-feature=+crt-static" \
  cargo build --release -q --target x86_64-unknown-linux-gnu \
  --manifest-path "$ROOT/tests/fixtures/rust-function/Cargo.toml"
ensure_rie

write_wrk_script

INVOKE_PATH=/2015-03-31/functions/function/invocations

# --- (a) the emulator -------------------------------------------------------------------
echo "rie…" >&2
# Restarted for each concurrency: it does not survive concurrent invokes.
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

# --- (b) the floor ------------------------------------------------------------------------
echo "floor…" >&2
start_floor() {
  "$FLOOR" --listen 127.0.0.1:0 --instances "$1" -- "$BOOTSTRAP" > "$WORK/floor-$1.out" 2> "$WORK/floor-$1.out.err" &
  PID=$!
  wait_listening "$WORK/floor-$1.out"
  URL="http://127.0.0.1:$PORT$INVOKE_PATH"
}
start_floor 1
warm "$URL" 1 > /dev/null
measure floor "$URL" 1
stop_server
start_floor 8
warm "$URL" 8 > /dev/null
for c in 8 64; do measure floor "$URL" "$c"; done
stop_server

# --- (c) stratus ------------------------------------------------------------------------------
echo "stratus…" >&2
STRATUS_DATA="$WORK/stratus-data"
"$STRATUS" serve --listen 127.0.0.1:0 --data-dir "$STRATUS_DATA" --auto-create-repositories \
  --gc-interval-seconds 0 --account-concurrency 8 > "$WORK/stratus.out" 2> "$WORK/stratus.out.err" &
PID=$!
wait_listening "$WORK/stratus.out"
SPORT=$PORT
# The image: one layer holding /bootstrap, entrypoint ["/bootstrap"].
python3 "$ROOT/bench/rust-image-layout.py" "$WORK/layout" "$BOOTSTRAP"
skopeo copy -q --preserve-digests --dest-tls-verify=false "oci:$WORK/layout:latest" \
  "docker://localhost:$SPORT/bench/echo:latest"
API="http://127.0.0.1:$SPORT/2015-03-31/functions"
curl -sf -o /dev/null -XPOST "$API" -H 'content-type: application/json' -d "{
  \"FunctionName\": \"$FUNCTION\", \"PackageType\": \"Image\", \"Role\": \"arn:aws:iam::000000000000:role/bench\",
  \"Code\": {\"ImageUri\": \"localhost:$SPORT/bench/echo:latest\"}}"
deadline=$(( $(date +%s) + 60 ))
until curl -sf "$API/$FUNCTION/configuration" | grep -q '"State":"Active"'; do
  [ "$(date +%s)" -lt "$deadline" ] || { echo "function never became Active:" >&2; curl -s "$API/$FUNCTION/configuration" >&2; exit 1; }
  sleep 0.1
done
URL="$API/$FUNCTION/invocations"
curl -sf -o /dev/null -XPOST "$URL" -d '{}' || { echo "first invoke failed:" >&2; curl -s -XPOST "$URL" -d '{}' >&2; exit 1; }
# Each concurrency gets a fresh pool (a configuration update), warmed to 8
# instances: requests wrk abandons at the end of a run must not carry over.
# After each run, 8 parallel invokes probe the capacity left in that pool.
fresh_pool() {
  curl -sf -o /dev/null -XPUT "$API/$FUNCTION/configuration" -H 'content-type: application/json' \
    -d "{\"Environment\": {\"Variables\": {\"BENCH_POOL\": \"$1\"}}}"
  local deadline=$(( $(date +%s) + 60 ))
  until curl -sf "$API/$FUNCTION/configuration" | grep -q '"LastUpdateStatus":"Successful"'; do
    [ "$(date +%s)" -lt "$deadline" ] || { echo "configuration update did not finish" >&2; exit 1; }
    sleep 0.05
  done
}
for c in "${CONCURRENCY[@]}"; do
  fresh_pool "c$c"
  warm "$URL" 8 > /dev/null
  measure stratus "$URL" "$c"
  probe=$(warm "$URL" 8 8)
  [ "$probe" = 0 ] || NOTE[stratus $c]="afterwards $probe of 8 parallel invokes got non-200"
done
# Running instances (the pool's spare, created ahead for the next cold
# start, is listed as `created` and not counted).
INSTANCES=$(runc --root "$STRATUS_DATA/oci/runtime" list 2>/dev/null | awk 'NR > 1 && $3 != "created"' | wc -l)
stop_server

# --- report -----------------------------------------------------------------------------------
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 == 0) print "-"; else printf "%.2f", a / b }'; }
pass() { awk -v v="$1" -v op="$2" -v t="$3" 'BEGIN { if (v == "-") print "n/a"; else if ((op == "<=" && v <= t) || (op == ">=" && v >= t)) print "ok"; else print "MISSED" }'; }
errors() { echo $(( ${NON2XX[$1]} + ${SOCKERR[$1]} )); }

echo
echo "warm invoke, ${DURATION_S}s per run, wrk on the same $(nproc) cores, event {}; load average now: $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-8s %4s %9s %9s %9s %8s %8s %11s  %s\n' system C p50_us p99_us req/s non-2xx sockerr cpu_us/req note
for key in "${ORDER[@]}"; do
  # shellcheck disable=SC2086
  printf '%-8s %4s %9s %9s %9s %8s %8s %11s  %s\n' $key "${P50[$key]}" "${P99[$key]}" "${RPS[$key]}" \
    "${NON2XX[$key]}" "${SOCKERR[$key]}" "${CPU[$key]}" "${NOTE[$key]}"
done
echo "(req/s counts 2xx only; latencies include errors; cpu_us/req is the server process alone, instances excluded)"
echo "(floor: 1 instance at C=1, 8 at C=8/64; stratus: account concurrency 8, $INSTANCES instance(s) alive at the end; rie: one at a time)"
echo
p50_ratio=$(ratio "${P50[stratus 1]}" "${P50[floor 1]}")
rps_rie=$(ratio "${RPS[stratus 1]}" "${RPS[rie 1]}")
rps64=$(ratio "${RPS[stratus 64]}" "${RPS[floor 64]}")
err64=$(errors "stratus 64")
echo "targets:"
echo "  C=1  p50   stratus / floor     : $p50_ratio  (<= 1.3)  $(pass "$p50_ratio" "<=" 1.3)"
echo "  C=1  req/s stratus / rie       : $rps_rie  (>= 2)    $(pass "$rps_rie" ">=" 2)"
echo "  C=64 req/s stratus / floor(8)  : $rps64  (>= 0.8)  $(pass "$rps64" ">=" 0.8)"
echo "  C=64 stratus errors            : $err64  (0)       $(pass "$err64" "<=" 0)"
echo "other ratios:"
echo "  C=8  req/s stratus / floor(8)  : $(ratio "${RPS[stratus 8]}" "${RPS[floor 8]}")"
echo "  C=1  p50   rie / floor         : $(ratio "${P50[rie 1]}" "${P50[floor 1]}")"
echo "  rie errors at C=8 / C=64       : $(errors "rie 8") / $(errors "rie 64")  ${NOTE[rie 8]:+(C=8: ${NOTE[rie 8]})} ${NOTE[rie 64]:+(C=64: ${NOTE[rie 64]})}"
if grep -q '^panic:' "$WORK/rie.err" 2>/dev/null; then
  echo "  rie panicked $(grep -c '^panic:' "$WORK/rie.err") time(s): $(grep -m1 '^panic:' "$WORK/rie.err")"
fi
