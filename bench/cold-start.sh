#!/usr/bin/env bash
# Cold-start benchmark (issue: performance, cold start).
#
#   bench/cold-start.sh [STARTS]     (default 20)
#
# Two images, each started STARTS times cold in Stratus and under docker:
#   rust   : tests/fixtures/rust-function (official lambda_runtime crate,
#            static) in a one-layer image, entrypoint /bootstrap
#   python : a hello-world handler (app.handler) on the local stand-in for
#            public.ecr.aws/lambda/python:3.11 (tests/images/python3.11/
#            build.sh); skipped when the local docker engine lacks it
#
# Stratus (`stratus serve`, oci executor = runc): the function is created
# once; each start changes an environment variable with
# UpdateFunctionConfiguration (a new configuration gets a new pool, the old
# instance is stopped), polls GetFunctionConfiguration until the update is
# Successful, then invokes {} over raw HTTP with `X-Amz-Log-Type: Tail`.
# Reported: `Init Duration` from the REPORT line (what the user sees: from
# the start of the instance to its runtime's first `next`) and the
# client-side latency of that first invoke (which includes the start).
#
# docker: `docker run --rm --pull never --network host IMAGE` with
# AWS_LAMBDA_RUNTIME_API pointing at a tiny Runtime API listener in this
# script (the image's own entrypoint, as Lambda runs it). Reported: time from
# launching `docker run` to the first `GET …/invocation/next` (the docker
# counterpart of Init Duration), and to the runtime's response to the one
# event the listener hands it (the counterpart of the first invoke). The
# container is then removed. No emulator is involved on either side.
#
# p50 and p99 are nearest-rank over STARTS (with 20 starts p99 is the
# slowest one). Also reported: the warm-invoke cost of `Tail` (20 warm
# invokes with and without it), since Stratus lets the function's output
# settle before it cuts the log tail.
#
# Everything started here (server, containers, images, the data dir) is
# removed on exit.
set -euo pipefail
STARTS=${1:-20}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK="$ROOT/target/bench-cold-start"
BOOTSTRAP="$ROOT/target/fixtures/x86_64-unknown-linux-gnu/release/bootstrap"
STRATUS="$ROOT/target/release/stratus"
PYTHON_BASE=public.ecr.aws/lambda/python:3.11
TAG="stratus-bench-cold-$$"
RUST_IMAGE="stratus-bench/rust-echo:$$"
PY_IMAGE="stratus-bench/python-hello:$$"

PID=""
STRATUS_DATA="$WORK/stratus-data"
cleanup() {
  if [ -n "$PID" ]; then
    kill -TERM "$PID" 2>/dev/null || true
    for _ in $(seq 1 200); do kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$PID" 2>/dev/null || true
    wait "$PID" 2>/dev/null || true
    PID=""
  fi
  if [ -d "$STRATUS_DATA/oci/runtime" ]; then
    for c in $(runc --root "$STRATUS_DATA/oci/runtime" list -q 2>/dev/null); do
      runc --root "$STRATUS_DATA/oci/runtime" delete --force "$c" 2>/dev/null || true
    done
  fi
  docker ps -aq --filter "name=^$TAG-" 2>/dev/null | xargs -r docker rm -f > /dev/null 2>&1 || true
  docker rmi "$RUST_IMAGE" "$PY_IMAGE" > /dev/null 2>&1 || true
  rm -rf "$STRATUS_DATA" # unpacked images: hundreds of MB
}
trap cleanup EXIT
trap 'exit 130' INT TERM

for tool in skopeo runc docker python3; do
  command -v "$tool" >/dev/null || { echo "missing $tool" >&2; exit 1; }
done
rm -rf "$WORK"; mkdir -p "$WORK"

echo "building stratus and the test function…" >&2
cargo build --release -q -p stratus --manifest-path "$ROOT/Cargo.toml"
CARGO_TARGET_DIR="$ROOT/target/fixtures" RUSTFLAGS="-C target-feature=+crt-static" \
  cargo build --release -q --target x86_64-unknown-linux-gnu \
  --manifest-path "$ROOT/tests/fixtures/rust-function/Cargo.toml"

# --- the Rust image: one layer holding /bootstrap --------------------------------------
python3 "$ROOT/bench/rust-image-layout.py" "$WORK/layout" "$BOOTSTRAP"
skopeo copy -q "oci:$WORK/layout:latest" "docker-daemon:$RUST_IMAGE"

# --- the Python image: the stand-in base plus app.py ---------------------------------------
HAVE_PYTHON=0
if docker image inspect "$PYTHON_BASE" > /dev/null 2>&1; then
  HAVE_PYTHON=1
  printf 'def handler(event, context):\n    return {"hello": "world"}\n' > "$WORK/app.py"
  docker create --pull never --name "$TAG-build" "$PYTHON_BASE" app.handler > /dev/null
  docker cp "$WORK/app.py" "$TAG-build:/var/task/app.py"
  docker commit --change 'CMD ["app.handler"]' "$TAG-build" "$PY_IMAGE" > /dev/null
  docker rm "$TAG-build" > /dev/null
fi

# --- the driver: Stratus starts, docker starts, report ------------------------------------
cat > "$WORK/driver.py" <<'PY'
"""Cold starts in Stratus and under docker; prints one report block."""
import base64, http.client, http.server, json, math, re, subprocess, sys, threading, time

def pct(xs, p):
    s = sorted(xs)
    return s[max(1, math.ceil(p / 100 * len(s))) - 1]

def summary(xs):
    return f"p50 {pct(xs, 50):7.1f} ms   p99 {pct(xs, 99):7.1f} ms   min {min(xs):7.1f} ms"

class Stratus:
    def __init__(self, port):
        self.port = port

    def call(self, method, path, body=None, headers=None):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        data = r.read()
        c.close()
        return r.status, r, data

    def wait_updated(self, name):
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            status, _, data = self.call("GET", f"/2015-03-31/functions/{name}/configuration")
            c = json.loads(data)
            if status == 200 and c.get("State") == "Active" and c.get("LastUpdateStatus") == "Successful":
                return
            if "Failed" in (c.get("State"), c.get("LastUpdateStatus")):
                sys.exit(f"function {name} failed: {c}")
            time.sleep(0.02)
        sys.exit(f"function {name} did not become Active")

    def invoke(self, name, tail):
        headers = {"Content-Type": "application/json"}
        if tail:
            headers["X-Amz-Log-Type"] = "Tail"
        t0 = time.perf_counter()
        status, r, data = self.call("POST", f"/2015-03-31/functions/{name}/invocations", b"{}", headers)
        ms = (time.perf_counter() - t0) * 1000
        if status != 200 or r.getheader("X-Amz-Function-Error"):
            sys.exit(f"invoke {name}: {status} {data[:500]!r}")
        log = base64.b64decode(r.getheader("X-Amz-Log-Result") or "").decode(errors="replace")
        return ms, log

    def cold_starts(self, name, n):
        inits, firsts = [], []
        for i in range(n):
            body = json.dumps({"Environment": {"Variables": {"BENCH_START": f"{i}-{time.time_ns()}"}}})
            status, _, data = self.call("PUT", f"/2015-03-31/functions/{name}/configuration", body,
                                        {"Content-Type": "application/json"})
            if status != 200:
                sys.exit(f"update {name}: {status} {data[:500]!r}")
            self.wait_updated(name)
            ms, log = self.invoke(name, tail=True)
            m = re.search(r"Init Duration: ([0-9.]+) ms", log)
            if not m:
                sys.exit(f"no Init Duration in the first invoke's log:\n{log}")
            inits.append(float(m.group(1)))
            firsts.append(ms)
        return inits, firsts

    def tail_cost(self, name, n=20):
        self.invoke(name, tail=False)
        plain = [self.invoke(name, tail=False)[0] for _ in range(n)]
        tail = [self.invoke(name, tail=True)[0] for _ in range(n)]
        return pct(plain, 50), pct(tail, 50)

class Trial:
    def __init__(self):
        self.first_next = None
        self.responded_at = None
        self.responded = threading.Event()
        self.over = threading.Event()

class RuntimeApi(http.server.BaseHTTPRequestHandler):
    """Hands the one event of the current trial to the first `next`."""
    protocol_version = "HTTP/1.1"
    trial = Trial()

    def log_message(self, *args):
        pass

    def reply(self, status, body=b"", headers=()):
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        trial = RuntimeApi.trial
        if not self.path.endswith("/runtime/invocation/next"):
            return self.reply(404)
        if trial.first_next is None:
            trial.first_next = time.perf_counter()
            deadline = str(int(time.time() * 1000) + 300_000)
            return self.reply(200, b"{}", [
                ("Content-Type", "application/json"),
                ("Lambda-Runtime-Aws-Request-Id", "cold-start"),
                ("Lambda-Runtime-Deadline-Ms", deadline),
                ("Lambda-Runtime-Invoked-Function-Arn", "arn:aws:lambda:us-east-1:000000000000:function:bench"),
            ])
        trial.over.wait(60)
        self.reply(500)

    def do_POST(self):
        trial = RuntimeApi.trial
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            while True:
                size = int(self.rfile.readline().split(b";")[0], 16)
                self.rfile.read(size + 2)
                if size == 0:
                    break
        else:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if "/invocation/" in self.path and (self.path.endswith("/response") or self.path.endswith("/error")):
            trial.responded_at = time.perf_counter()
            trial.ok = self.path.endswith("/response")
            trial.responded.set()
        self.reply(202)

def docker_starts(image, n, prefix):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), RuntimeApi)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    env = {"AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{server.server_address[1]}",
           "AWS_LAMBDA_FUNCTION_NAME": "bench", "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
           "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128"}
    env_args = [a for k, v in env.items() for a in ("-e", f"{k}={v}")]
    inits, firsts = [], []
    try:
        for i in range(n):
            name = f"{prefix}-{i}"
            trial = RuntimeApi.trial = Trial()
            t0 = time.perf_counter()
            p = subprocess.Popen(["docker", "run", "--rm", "--pull", "never", "--name", name,
                                  "--network", "host", *env_args, image],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            answered = trial.responded.wait(60)
            trial.over.set()
            subprocess.run(["docker", "rm", "-f", name], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            _, err = p.communicate(timeout=60)
            if not answered or not trial.ok:
                sys.exit(f"docker run {image} did not answer: {err.decode(errors='replace')[-2000:]}")
            inits.append((trial.first_next - t0) * 1000)
            firsts.append((trial.responded_at - t0) * 1000)
    finally:
        server.shutdown()
    return inits, firsts

def main():
    label, port, function, image, n, prefix = sys.argv[1:7]
    n = int(n)
    stratus = Stratus(int(port))
    s_init, s_first = stratus.cold_starts(function, n)
    plain, tail = stratus.tail_cost(function)
    d_init, d_first = docker_starts(image, n, prefix)
    print(f"{label} image, {n} cold starts each")
    print(f"  stratus Init Duration            : {summary(s_init)}")
    print(f"  stratus first invoke (client)    : {summary(s_first)}")
    print(f"  docker run → first next          : {summary(d_init)}")
    print(f"  docker run → first response      : {summary(d_first)}")
    print(f"  ratio stratus/docker, p50 init   : {pct(s_init, 50) / pct(d_init, 50):.2f}")
    print(f"  ratio stratus/docker, p50 first  : {pct(s_first, 50) / pct(d_first, 50):.2f}")
    print(f"  warm invoke p50 without / with Tail: {plain:.2f} ms / {tail:.2f} ms")

main()
PY

# --- Stratus -------------------------------------------------------------------------------
"$STRATUS" serve --listen 127.0.0.1:0 --data-dir "$STRATUS_DATA" --auto-create-repositories \
  --gc-interval-seconds 0 > "$WORK/stratus.out" 2> "$WORK/stratus.err" &
PID=$!
deadline=$(( $(date +%s) + 20 ))
until grep -q 'listening on' "$WORK/stratus.out" 2>/dev/null; do
  kill -0 "$PID" 2>/dev/null || { cat "$WORK/stratus.err" >&2; exit 1; }
  [ "$(date +%s)" -lt "$deadline" ] || { echo "stratus did not start" >&2; exit 1; }
  sleep 0.05
done
PORT=$(grep -o 'listening on http://[0-9.]*:[0-9]*' "$WORK/stratus.out" | grep -o '[0-9]*$')
API="http://127.0.0.1:$PORT/2015-03-31/functions"

# create_function NAME REPO: push was done; create and wait for Active.
create_function() {
  curl -sf -o /dev/null -XPOST "$API" -H 'content-type: application/json' -d "{
    \"FunctionName\": \"$1\", \"PackageType\": \"Image\", \"Role\": \"arn:aws:iam::000000000000:role/bench\",
    \"Code\": {\"ImageUri\": \"localhost:$PORT/$2:latest\"}}"
  local deadline=$(( $(date +%s) + 120 ))
  until curl -sf "$API/$1/configuration" | grep -q '"State":"Active"'; do
    [ "$(date +%s)" -lt "$deadline" ] || { echo "$1 never became Active:" >&2; curl -s "$API/$1/configuration" >&2; exit 1; }
    sleep 0.1
  done
}

echo "rust image…" >&2
skopeo copy -q --preserve-digests --dest-tls-verify=false "oci:$WORK/layout:latest" \
  "docker://localhost:$PORT/bench/rust-echo:latest"
create_function bench-rust bench/rust-echo
REPORT_RUST=$(timeout 900 python3 "$WORK/driver.py" rust "$PORT" bench-rust "$RUST_IMAGE" "$STARTS" "$TAG-rust")

REPORT_PY="python image not available: run tests/images/python3.11/build.sh"
if [ "$HAVE_PYTHON" = 1 ]; then
  echo "python image…" >&2
  skopeo copy -q --dest-tls-verify=false "docker-daemon:$PY_IMAGE" "docker://localhost:$PORT/bench/python-hello:latest"
  create_function bench-python bench/python-hello
  REPORT_PY=$(timeout 900 python3 "$WORK/driver.py" python "$PORT" bench-python "$PY_IMAGE" "$STARTS" "$TAG-python")
fi

p50_of() { sed -n "s/.*$1 *: p50 *\([0-9.]*\) ms.*/\1/p" <<< "$2"; }
verdict() { awk -v v="$1" -v t="$2" 'BEGIN { if (v == "") print "n/a"; else if (v < t) print "ok"; else print "MISSED" }'; }
echo
echo "cold start, $(nproc) cores, load average now: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "$REPORT_RUST"
echo "$REPORT_PY"
echo
rust_p50=$(p50_of "stratus first invoke (client)" "$REPORT_RUST")
py_p50=$(p50_of "stratus first invoke (client)" "$REPORT_PY")
rust_init=$(p50_of "stratus Init Duration" "$REPORT_RUST")
py_init=$(p50_of "stratus Init Duration" "$REPORT_PY")
echo "targets (p50 of the first invoke as the client sees it; Init Duration in brackets):"
echo "  rust   < 30 ms  : ${rust_p50:-n/a} ms [${rust_init:-n/a} ms]  $(verdict "$rust_p50" 30)"
echo "  python < 150 ms : ${py_p50:-n/a} ms [${py_init:-n/a} ms]  $(verdict "$py_p50" 150)"
