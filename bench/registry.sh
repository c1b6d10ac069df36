#!/usr/bin/env bash
# Registry benchmark (issue: foundation/registry).
#
#   bench/registry.sh [SIZE_MIB]     (default 1024)
#
# Measures, in one run on this machine and disk:
#   floor  : `tee copy < layer | sha256sum` — hashing and writing, the floor of any push
#   push   : skopeo copy of an OCI layout holding one SIZE_MIB layer into stratus
#   pull   : skopeo copy of the same image out of stratus into a new OCI layout
#   rss    : stratus RSS growth (max during push/pull minus before)
#   start  : `stratus serve` start-to-ready with an empty data dir (median of 10)
#   idle   : RSS right after start
# and prints push/pull throughput as a ratio to the floor.
set -euo pipefail
SIZE_MIB=${1:-1024}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK="$ROOT/target/bench-registry"
BIN="$ROOT/target/release/stratus"
rm -rf "$WORK"; mkdir -p "$WORK"
cargo build --release -q -p stratus --manifest-path "$ROOT/Cargo.toml"

now_ms() { date +%s%3N; }
rss_kib() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }

start_server() { # $1 data dir; sets PID PORT READY_MS
  local out="$WORK/serve.out"; : > "$out"
  local t0; t0=$(now_ms)
  "$BIN" serve --listen 127.0.0.1:0 --data-dir "$1" --auto-create-repositories --gc-interval-seconds 0 \
    > "$out" 2> "$WORK/serve.err" &
  PID=$!
  while ! grep -q 'listening on' "$out"; do
    kill -0 "$PID" 2>/dev/null || { cat "$WORK/serve.err"; exit 1; }
  done
  READY_MS=$(( $(now_ms) - t0 ))
  PORT=$(grep -o '[0-9]*$' "$out")
}
stop_server() { kill -TERM "$PID"; wait "$PID" 2>/dev/null || true; }

# --- start-to-ready and idle RSS -------------------------------------------
starts=()
for i in $(seq 1 10); do
  rm -rf "$WORK/start-data"
  start_server "$WORK/start-data"
  starts+=("$READY_MS")
  IDLE_RSS=$(rss_kib "$PID")
  stop_server
done
START_MEDIAN=$(printf '%s\n' "${starts[@]}" | sort -n | sed -n '5p')

# --- the layer and its OCI layout -----------------------------------------------
LAYOUT="$WORK/layout"; mkdir -p "$LAYOUT/blobs/sha256"
head -c $((SIZE_MIB * 1024 * 1024)) /dev/urandom > "$WORK/layer"
sync
# --- floor: hash + write the same bytes on the same disk ----------------------------
t0=$(now_ms)
LAYER_HEX=$(tee "$WORK/floor-copy" < "$WORK/layer" | sha256sum | cut -d' ' -f1)
FLOOR_MS=$(( $(now_ms) - t0 ))
rm -f "$WORK/floor-copy"
mv "$WORK/layer" "$LAYOUT/blobs/sha256/$LAYER_HEX"
LAYER_SIZE=$((SIZE_MIB * 1024 * 1024))
python3 - "$LAYOUT" "$LAYER_HEX" "$LAYER_SIZE" <<'PY'
import hashlib, json, os, sys
root, layer_hex, size = sys.argv[1], sys.argv[2], int(sys.argv[3])
def put(b):
    h = hashlib.sha256(b).hexdigest()
    open(os.path.join(root, "blobs/sha256", h), "wb").write(b)
    return h
config = json.dumps({"architecture": "amd64", "os": "linux",
                     "rootfs": {"type": "layers", "diff_ids": ["sha256:" + layer_hex]}}).encode()
ch = put(config)
manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": "sha256:" + ch, "size": len(config)},
    "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": "sha256:" + layer_hex, "size": size}]}).encode()
mh = put(manifest)
open(os.path.join(root, "oci-layout"), "w").write('{"imageLayoutVersion":"1.0.0"}')
json.dump({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
    "digest": "sha256:" + mh, "size": len(manifest), "annotations": {"org.opencontainers.image.ref.name": "big"}}]},
    open(os.path.join(root, "index.json"), "w"))
PY
sync

# --- push and pull through stratus, sampling RSS -------------------------------------
start_server "$WORK/data"
BASE_RSS=$(rss_kib "$PID")
MAX_RSS=$BASE_RSS
sample() { while kill -0 "$PID" 2>/dev/null; do r=$(rss_kib "$PID" || echo 0); [ "$r" -gt "$(cat "$WORK/max")" ] && echo "$r" > "$WORK/max"; sleep 0.05; done; }
echo "$BASE_RSS" > "$WORK/max"
sample & SAMPLER=$!
t0=$(now_ms)
skopeo copy -q --preserve-digests --dest-tls-verify=false "oci:$LAYOUT:big" "docker://localhost:$PORT/bench/big:latest"
PUSH_MS=$(( $(now_ms) - t0 ))
t0=$(now_ms)
skopeo copy -q --preserve-digests --src-tls-verify=false "docker://localhost:$PORT/bench/big:latest" "oci:$WORK/pulled:big"
PULL_MS=$(( $(now_ms) - t0 ))
kill "$SAMPLER" 2>/dev/null || true; wait "$SAMPLER" 2>/dev/null || true
MAX_RSS=$(cat "$WORK/max")
stop_server
PULLED_HEX=$(sha256sum "$WORK/pulled/blobs/sha256/$LAYER_HEX" | cut -d' ' -f1)
[ "$PULLED_HEX" = "$LAYER_HEX" ] || { echo "pulled layer digest differs" >&2; exit 1; }

mbps() { awk -v b="$LAYER_SIZE" -v ms="$1" 'BEGIN { printf "%.0f", b / 1048576 / (ms / 1000) }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
cat <<REPORT
layer                 : ${SIZE_MIB} MiB (random, uncompressed)
floor tee|sha256sum   : ${FLOOR_MS} ms  ($(mbps "$FLOOR_MS") MiB/s)
push (skopeo)         : ${PUSH_MS} ms  ($(mbps "$PUSH_MS") MiB/s)  ratio to floor $(ratio "$FLOOR_MS" "$PUSH_MS")
pull (skopeo)         : ${PULL_MS} ms  ($(mbps "$PULL_MS") MiB/s)  ratio to floor $(ratio "$FLOOR_MS" "$PULL_MS")
server RSS growth     : $(( (MAX_RSS - BASE_RSS) / 1024 )) MiB (from $((BASE_RSS / 1024)) MiB to $((MAX_RSS / 1024)) MiB)
start-to-ready median : ${START_MEDIAN} ms (10 starts, empty data dir)
idle RSS after start  : $((IDLE_RSS / 1024)) MiB
REPORT
rm -rf "$WORK"
