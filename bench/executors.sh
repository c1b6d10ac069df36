#!/usr/bin/env bash
# Per-executor benchmark (issue 4): cold start and warm invoke of the same
# function on each executor, in one run on this machine.
#
#   bench/executors.sh [STARTS] [DURATION_S]     (defaults 10 and 10)
#
# The function is the Rust test function (tests/fixtures/rust-function,
# the official lambda_runtime crate, event {} → echo):
#   oci    : `stratus serve --executor oci`, an image (one layer holding
#            /bootstrap) pushed to Stratus' registry, instances under runc
#   docker : `--executor docker`, the same image, pulled by the engine from
#            Stratus' registry; skipped (with a note) without a Docker engine
#   host   : `--executor host`, a zip with the same bootstrap as
#            provided.al2023, run as a plain local process
# Each executor gets its own `stratus serve` and data dir, one at a time.
#
# Cold start: STARTS times, UpdateFunctionConfiguration (a new environment
# variable: a new configuration gets a new pool, the old instance stops),
# poll until Successful, then one invoke with `X-Amz-Log-Type: Tail`.
# Reported: `Init Duration` from the REPORT line and the wall time of that
# invoke as the client sees it (p50 and p99, nearest rank; with 10 starts
# p99 is the slowest).
# Warm invoke: 20 invokes to completion, then `wrk -c1 -dDURATION_S
# --latency` POSTing {} to the invoke path: p50, p99, 2xx req/s.
#
# Every phase is bounded in time (timeouts); everything started here is
# stopped by PID on exit.
set -euo pipefail
STARTS=${1:-10}
DURATION_S=${2:-10}
WARMUP_INVOKES=20
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK="$ROOT/target/bench-executors"
CACHE="$ROOT/target/bench-cache"
BOOTSTRAP="$ROOT/target/fixtures/x86_64-unknown-linux-gnu/release/bootstrap"
STRATUS="$ROOT/target/release/stratus"
FUNCTION=bench-echo
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"
trap stop_server EXIT
trap 'exit 130' INT TERM

for tool in wrk skopeo curl python3; do
  command -v "$tool" >/dev/null || { echo "missing $tool (apt-get install -y wrk skopeo …)" >&2; exit 1; }
done
rm -rf "$WORK"; mkdir -p "$WORK" "$CACHE"

echo "building stratus and the test function…" >&2
cargo build --release -q -p stratus --manifest-path "$ROOT/Cargo.toml"
CARGO_TARGET_DIR="$ROOT/target/fixtures" RUSTFLAGS="-C target-feature=+crt-static" \
  cargo build --release -q --target x86_64-unknown-linux-gnu \
  --manifest-path "$ROOT/tests/fixtures/rust-function/Cargo.toml"
write_wrk_script

# The image (oci, docker) and the zip (host).
python3 "$ROOT/bench/rust-image-layout.py" "$WORK/layout" "$BOOTSTRAP"
python3 - "$BOOTSTRAP" "$WORK/fn.zip.b64" <<'PY'
import base64, io, sys, zipfile
buf = io.BytesIO()
with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
    info = zipfile.ZipInfo("bootstrap", (2000, 1, 1, 0, 0, 0))
    info.external_attr = 0o100755 << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    z.writestr(info, open(sys.argv[1], "rb").read())
open(sys.argv[2], "w").write(base64.b64encode(buf.getvalue()).decode())
PY

# The cold-start driver: prints "init_p50 init_p99 first_p50 first_p99" (ms).
cat > "$WORK/cold.py" <<'PY'
import base64, http.client, json, math, re, sys, time
port, name, n = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])

def call(method, path, body=None, headers=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    c.request(method, path, body=body, headers=headers or {})
    r = c.getresponse()
    data = r.read()
    c.close()
    return r, data

def pct(xs, p):
    s = sorted(xs)
    return s[max(1, math.ceil(p / 100 * len(s))) - 1]

inits, firsts = [], []
for i in range(n):
    body = json.dumps({"Environment": {"Variables": {"BENCH_START": f"{i}-{time.time_ns()}"}}})
    r, data = call("PUT", f"/2015-03-31/functions/{name}/configuration", body, {"Content-Type": "application/json"})
    if r.status != 200:
        sys.exit(f"update: {r.status} {data[:300]!r}")
    deadline = time.monotonic() + 60
    while True:
        r, data = call("GET", f"/2015-03-31/functions/{name}/configuration")
        c = json.loads(data)
        if c.get("State") == "Active" and c.get("LastUpdateStatus") == "Successful":
            break
        if "Failed" in (c.get("State"), c.get("LastUpdateStatus")) or time.monotonic() > deadline:
            sys.exit(f"update did not succeed: {c}")
        time.sleep(0.02)
    t0 = time.perf_counter()
    r, data = call("POST", f"/2015-03-31/functions/{name}/invocations", b"{}",
                   {"Content-Type": "application/json", "X-Amz-Log-Type": "Tail"})
    ms = (time.perf_counter() - t0) * 1000
    if r.status != 200 or r.getheader("X-Amz-Function-Error"):
        sys.exit(f"invoke: {r.status} {data[:300]!r}")
    log = base64.b64decode(r.getheader("X-Amz-Log-Result") or "").decode(errors="replace")
    m = re.search(r"Init Duration: ([0-9.]+) ms", log)
    if not m:
        sys.exit(f"no Init Duration in the first invoke's log:\n{log}")
    inits.append(float(m.group(1)))
    firsts.append(ms)
print(f"{pct(inits, 50):.1f} {pct(inits, 99):.1f} {pct(firsts, 50):.1f} {pct(firsts, 99):.1f}")
PY

declare -A COLD SKIP
EXECUTORS=(oci docker host)

# bench_executor NAME: serve, create, cold starts, warm wrk, stop.
bench_executor() {
  local e=$1
  STRATUS_DATA="$WORK/data-$e"
  "$STRATUS" serve --executor "$e" --listen 127.0.0.1:0 --data-dir "$STRATUS_DATA" \
    --auto-create-repositories --gc-interval-seconds 0 > "$WORK/$e.out" 2> "$WORK/$e.out.err" &
  PID=$!
  wait_listening "$WORK/$e.out"
  local api="http://127.0.0.1:$PORT/2015-03-31/functions" code
  if [ "$e" = host ]; then
    code="\"Runtime\": \"provided.al2023\", \"Handler\": \"bootstrap\", \"Code\": {\"ZipFile\": \"$(cat "$WORK/fn.zip.b64")\"}"
  else
    timeout 120 skopeo copy -q --preserve-digests --dest-tls-verify=false "oci:$WORK/layout:latest" \
      "docker://localhost:$PORT/bench/echo:latest"
    code="\"PackageType\": \"Image\", \"Code\": {\"ImageUri\": \"localhost:$PORT/bench/echo:latest\"}"
  fi
  curl -sf -o /dev/null -XPOST "$api" -H 'content-type: application/json' --data-binary @- <<JSON
{"FunctionName": "$FUNCTION", "Role": "arn:aws:iam::000000000000:role/bench", $code}
JSON
  local deadline=$(( $(date +%s) + 120 ))
  until curl -sf "$api/$FUNCTION/configuration" | grep -q '"State":"Active"'; do
    [ "$(date +%s)" -lt "$deadline" ] || { echo "$e: function never became Active:" >&2; curl -s "$api/$FUNCTION/configuration" >&2; exit 1; }
    sleep 0.1
  done
  echo "  $e: $STARTS cold starts…" >&2
  COLD[$e]=$(timeout 600 python3 "$WORK/cold.py" "$PORT" "$FUNCTION" "$STARTS")
  echo "  $e: cold (init p50 p99, first invoke p50 p99, ms): ${COLD[$e]}" >&2
  local url="$api/$FUNCTION/invocations"
  warm "$url" 1 > /dev/null
  measure "$e" "$url" 1
  stop_server
}

for e in "${EXECUTORS[@]}"; do
  if [ "$e" = docker ] && ! timeout 20 docker info > /dev/null 2>&1; then
    SKIP[$e]="skipped: no Docker engine answers (docker info)"
    echo "  docker: ${SKIP[$e]}" >&2
    continue
  fi
  echo "$e…" >&2
  bench_executor "$e"
done

echo
echo "executors, Rust test function, $(nproc) cores (wrk on the same cores); load average now: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "cold: $STARTS starts each (a configuration update before each); warm: wrk -c1 for ${DURATION_S}s"
printf '%-8s %11s %11s %12s %12s %11s %11s %9s\n' executor init_p50_ms init_p99_ms first_p50_ms first_p99_ms warm_p50_us warm_p99_us req/s
for e in "${EXECUTORS[@]}"; do
  if [ -n "${SKIP[$e]:-}" ]; then
    printf '%-8s %s\n' "$e" "${SKIP[$e]}"
    continue
  fi
  read -r ip50 ip99 fp50 fp99 <<< "${COLD[$e]}"
  key="$e 1"
  printf '%-8s %11s %11s %12s %12s %11s %11s %9s  %s\n' "$e" "$ip50" "$ip99" "$fp50" "$fp99" \
    "${P50[$key]}" "${P99[$key]}" "${RPS[$key]}" "${NOTE[$key]}"
done
echo "(init: Init Duration from the REPORT line; first: the cold invoke's wall time at the client; req/s counts 2xx only)"
