#!/usr/bin/env bash
# Run the migration plan's Artillery scenarios (websocket-load.yml) against realtime_sio.
#
#   bash artillery/run.sh [quick|full|smoke] [target-url]
#
# quick: < 1 min, 460 VUs; full: the plan's phases (60 s@10/s, 120 s@50/s, 60 s@100/s); smoke: ~10 s, 20 VUs.
# Without a target, starts a local realtime_sio (this checkout, BENCH_PYTHON or .venv/bin/python) on a free
# loopback port with a fresh JWT secret, and stops it at the end. With a target, REALTIME_SIO_JWT_SECRET must be the
# target's secret. Prints VUs, errors, socketio.response_time and connection failures; exits 1 unless zero errors.
# ARTILLERY_REPORT=<path> keeps the JSON report.
set -euo pipefail

profile="${1:-quick}"
target="${2:-}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(dirname "$here")"
case "$profile" in
  smoke) limit=120 ;;
  quick) limit=180 ;;
  full) limit=600 ;;
  *) echo "usage: bash artillery/run.sh [quick|full|smoke] [target-url]" >&2; exit 2 ;;
esac
export ARTILLERY_DISABLE_TELEMETRY=true # no phoning home: this machine reaches package registries only

if [ ! -x "$here/node_modules/.bin/artillery" ]; then
  echo "artillery is not installed; running npm ci in artillery/ ..." >&2
  (cd "$here" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
fi

work="$(mktemp -d)"
server_pid=""
cleanup() {
  if [ -n "$server_pid" ]; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ -z "$target" ]; then
  python="${BENCH_PYTHON:-}"
  if [ -z "$python" ]; then
    if [ -x "$repo/.venv/bin/python" ]; then python="$repo/.venv/bin/python"; else python="python3"; fi
  fi
  port="$("$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
  export REALTIME_SIO_JWT_SECRET="artillery-$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')"
  REALTIME_SIO_HOST=127.0.0.1 REALTIME_SIO_PORT="$port" REALTIME_SIO_LOG_LEVEL=warning PYTHONPATH="$repo" \
    "$python" -m realtime_sio serve >"$work/server.log" 2>&1 &
  server_pid=$!
  target="http://127.0.0.1:$port"
  for _ in $(seq 1 150); do # up to 15 s for /health
    if curl -fsS "$target/health" >/dev/null 2>&1; then break; fi
    if ! kill -0 "$server_pid" 2>/dev/null; then break; fi
    sleep 0.1
  done
  if ! curl -fsS "$target/health" >/dev/null 2>&1; then
    echo "realtime_sio did not start:" >&2
    cat "$work/server.log" >&2
    exit 1
  fi
  echo "started realtime_sio at $target (pid $server_pid)" >&2
elif [ -z "${REALTIME_SIO_JWT_SECRET:-}" ]; then
  echo "set REALTIME_SIO_JWT_SECRET to the target's JWT secret" >&2
  exit 2
fi

node "$here/mint-tokens.mjs" "$work/tokens.csv" 1000

env_flag=(-e "$profile")
[ "$profile" = "full" ] && env_flag=() # the top-level phases are the plan's
echo "artillery $profile against $target ..." >&2
status=0
timeout --kill-after=10 "$limit" "$here/node_modules/.bin/artillery" run "${env_flag[@]}" --target "$target" \
  -p "$work/tokens.csv" -o "$work/report.json" "$here/websocket-load.yml" >"$work/artillery.log" 2>&1 || status=$?
if [ "$status" -ne 0 ] || [ ! -s "$work/report.json" ]; then
  echo "artillery exited with status $status; its output:" >&2
  tail -50 "$work/artillery.log" >&2
  [ -n "$server_pid" ] && { echo "server log:" >&2; tail -20 "$work/server.log" >&2; }
  exit 1
fi
[ -n "${ARTILLERY_REPORT:-}" ] && cp "$work/report.json" "$ARTILLERY_REPORT"
node "$here/summarize.mjs" "$work/report.json" ${ARTILLERY_JSON:+--json}
