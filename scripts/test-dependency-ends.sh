#!/usr/bin/env bash
# Run the test suite against one end of every dependency range setup.cfg declares, in a scratch venv:
#   bash scripts/test-dependency-ends.sh newest [pytest args]   # the newest releases, pins ignored (before widening a pin)
#   bash scripts/test-dependency-ends.sh lowest [pytest args]   # the lowest version each >= allows
# Needs what `bash scripts/test.sh` installs first (npm packages, redis-server). The scratch venv is removed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
mode="${1:?usage: test-dependency-ends.sh newest|lowest [pytest args]}"
shift
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
python3 -m venv "$scratch/venv"
py="$scratch/venv/bin/python"
"$py" -m pip install --quiet --upgrade pip
# The runtime requirements of setup.cfg, one per line (markers kept).
requirements="$(python3 - <<'PY'
import configparser
cfg = configparser.ConfigParser()
cfg.read("setup.cfg")
print("\n".join(line.strip() for line in cfg["options"]["install_requires"].splitlines() if line.strip()))
PY
)"
case "$mode" in
  lowest)
    # name>=x[,<y] -> name==x: every floor at once, so a floor that no longer works fails the suite.
    printf '%s\n' "$requirements" | sed -E 's/^([A-Za-z0-9_.-]+)(\[[^]]*\])?>=([^,; ]+)[^;]*(;.*)?$/\1\2==\3\4/' > "$scratch/constraints.txt"
    echo "lowest versions:"; cat "$scratch/constraints.txt"
    "$py" -m pip install --quiet -r "$scratch/constraints.txt"
    "$py" -m pip install --quiet --no-deps -e .
    "$py" -m pip install --quiet pytest pytest-asyncio pytest-timeout PyYAML jsonschema kubernetes-validate promql-parser wheel
    ;;
  newest)
    # Drop every upper bound and install the newest releases: what a user gets once a pin is widened.
    printf '%s\n' "$requirements" | sed -E 's/,<[^;]*//; s/>=[^;]*//' > "$scratch/newest.txt"
    echo "newest of:"; cat "$scratch/newest.txt"
    "$py" -m pip install --quiet --upgrade -r "$scratch/newest.txt"
    "$py" -m pip install --quiet --no-deps -e .
    "$py" -m pip install --quiet pytest pytest-asyncio pytest-timeout PyYAML jsonschema kubernetes-validate promql-parser wheel
    ;;
  *) echo "unknown mode $mode (newest|lowest)" >&2; exit 2 ;;
esac
"$py" -m pip list 2>/dev/null | grep -iE '^(python-socketio|python-engineio|aiohttp|redis|hiredis|PyJWT|cryptography|prometheus.client|structlog|uvloop) '
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
exec "$py" -m pytest -q -p no:cacheprovider "$@"
