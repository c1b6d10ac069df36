# shellcheck shell=bash disable=SC2034  # result arrays are read by the sourcing script
# Shared pieces of the benchmark scripts (sourced, not run). The caller
# sets ROOT, WORK and CACHE first and `set -euo pipefail`.
#
# - stop_server: stops $PID (TERM, then KILL after 20 s) and removes runc
#   containers a killed stratus left in $STRATUS_DATA;
# - ensure_rie: the AWS Runtime Interface Emulator from PyPI's aws-sam-cli
#   wheel, cached in $RIE;
# - measure SYSTEM URL C: one wrk run of DURATION_S seconds (POST {}),
#   results kept in P50/P99/RPS/NON2XX/SOCKERR/CPU/NOTE by "SYSTEM C" and
#   the key appended to ORDER;
# - wait_listening, free_port, warm: see each.
RIE="$CACHE/aws-lambda-rie-x86_64"
CLK_TCK=$(getconf CLK_TCK)

PID=""         # the server under test
STRATUS_DATA="" # set while stratus runs
stop_server() {
  [ -n "$PID" ] || return 0
  kill -TERM "$PID" 2>/dev/null || true
  for _ in $(seq 1 200); do kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$PID" 2>/dev/null; then
    echo "warning: $PID did not stop within 20 s; killing it" >&2
    kill -KILL "$PID" 2>/dev/null || true
  fi
  wait "$PID" 2>/dev/null || true
  PID=""
  # Instances a killed stratus left behind (its own runc state dir only).
  if [ -n "$STRATUS_DATA" ] && [ -d "$STRATUS_DATA/oci/runtime" ]; then
    for c in $(runc --root "$STRATUS_DATA/oci/runtime" list -q 2>/dev/null); do
      echo "warning: removing leftover container $c" >&2
      runc --root "$STRATUS_DATA/oci/runtime" delete --force "$c" 2>/dev/null || true
    done
  fi
  STRATUS_DATA=""
}

ensure_rie() {
  if [ ! -x "$RIE" ]; then
    echo "fetching aws-lambda-rie from PyPI's aws-sam-cli wheel…" >&2
    dl="$WORK/sam-wheel"; mkdir -p "$dl"
    timeout 300 pip download -q --no-deps aws-sam-cli -d "$dl"
    unzip -q -o -j "$dl"/aws_sam_cli-*.whl samcli/local/rapid/aws-lambda-rie-x86_64 -d "$CACHE"
    chmod +x "$RIE"
    rm -rf "$dl"
  fi
}

# --- wrk and measuring ---------------------------------------------------------------
write_wrk_script() {
cat > "$WORK/post.lua" <<'LUA'
wrk.method = "POST"
wrk.body = "{}"
wrk.headers["Content-Type"] = "application/json"
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT %d %d %d %d %d %d %d %d %d\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.status, e.connect, e.read, e.write, e.timeout))
end
LUA
}

# CPU ticks (user + system) of a process; empty once it is gone.
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || true; }

# run_wrk URL C SECONDS → sets RESULT ("requests duration_us p50_us p99_us status connect read write timeout") and CPU_TICKS
run_wrk() {
  local url=$1 c=$2 secs=$3 threads=2
  [ "$c" -lt 2 ] && threads=1
  local before; before=$(cpu_ticks "$PID")
  RESULT=$(timeout $((secs + 30)) wrk -t"$threads" -c"$c" -d"${secs}s" --timeout 5s --latency \
    -s "$WORK/post.lua" "$url" | awk '/^RESULT/ { $1 = ""; print }')
  local after; after=$(cpu_ticks "$PID")
  CPU_TICKS=""
  [ -n "$before" ] && [ -n "$after" ] && CPU_TICKS=$(( after - before ))
  [ -n "$RESULT" ] || { echo "wrk gave no result for $url" >&2; exit 1; }
}

# Results by "SYSTEM C".
declare -A P50 P99 RPS NON2XX SOCKERR CPU NOTE
ORDER=()
# measure SYSTEM URL C
measure() {
  local system=$1 url=$2 c=$3 key="$1 $3"
  run_wrk "$url" "$c" "$DURATION_S"
  local requests dur_us p50 p99 status connect read write timeout
  read -r requests dur_us p50 p99 status connect read write timeout <<< "$RESULT"
  P50[$key]=$p50; P99[$key]=$p99; NON2XX[$key]=$status
  SOCKERR[$key]=$(( connect + read + write + timeout ))
  RPS[$key]=$(awk -v n=$(( requests - status )) -v us="$dur_us" 'BEGIN { printf "%.0f", n / (us / 1e6) }')
  CPU[$key]=$(awk -v t="$CPU_TICKS" -v hz="$CLK_TCK" -v n="$requests" \
    'BEGIN { if (n > 0 && t != "") printf "%.0f", t / hz * 1e6 / n; else print "-" }')
  NOTE[$key]=""
  kill -0 "$PID" 2>/dev/null || NOTE[$key]="server died"
  ORDER+=("$key")
  echo "  $system C=$c: p50 ${p50} us, p99 ${p99} us, ${RPS[$key]} req/s, non-2xx $status, socket errors ${SOCKERR[$key]}" >&2
}

# wait_listening FILE → sets PORT from the "…listening on http://ADDR:PORT" line
wait_listening() {
  local out=$1 deadline=$(( $(date +%s) + 20 ))
  until grep -q 'listening on' "$out" 2>/dev/null; do
    kill -0 "$PID" 2>/dev/null || { echo "server exited:" >&2; cat "$out" "$out.err" >&2 2>/dev/null; exit 1; }
    [ "$(date +%s)" -lt "$deadline" ] || { echo "server did not start" >&2; exit 1; }
    sleep 0.05
  done
  PORT=$(grep -o 'listening on http://[0-9.]*:[0-9]*' "$out" | grep -o '[0-9]*$')
}

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# warm URL PARALLEL [COUNT]: COUNT (default WARMUP_INVOKES) invokes, PARALLEL at a time, each run to
# completion (wrk cancels the requests in flight when it stops); prints how
# many were not 200.
warm() {
  seq 1 "${3:-$WARMUP_INVOKES}" | timeout 120 xargs -P "$2" -I{} \
    curl -s -o /dev/null -w '%{http_code}\n' -XPOST "$1" -d '{}' | grep -vc '^200$' || true
}

