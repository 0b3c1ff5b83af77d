#!/usr/bin/env bash
# The newest releases of every dependency (upper bounds ignored) in a scratch venv, then the whole suite: run it before
# widening a pin in setup.cfg (docs/architecture.md, "Upgrading python-engineio / python-socketio").
set -euo pipefail
exec bash "$(dirname "$0")/test-dependency-ends.sh" newest "$@"
