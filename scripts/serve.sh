#!/usr/bin/env bash
# Install realtime_sio into ./.venv and start it (embedded default: in-memory, single node, no Redis).
# Any REALTIME_SIO_* variable or `serve` flag applies, e.g.: bash scripts/serve.sh --port 6001
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet .
exec .venv/bin/realtime-sio serve "$@"
