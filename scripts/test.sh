#!/usr/bin/env bash
# Install everything the tests need, run the static checks, then the tests: Python test extras into ./.venv, redis-server and
# nginx (Debian packages; nginx-light runs deploy/nginx-realtime-sio.conf in tests/integration/test_deploy_nginx.py) when missing, the npm packages the tests drive, the Helm engine and Chromium where those suites exist.
# Extra arguments go to pytest, e.g.: bash scripts/test.sh tests/unit -q
set -euo pipefail
cd "$(dirname "$0")/.."

apt_install() {
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    # Tests start their own redis-server and nginx: keep the packages' system services from starting (port 80, 6379).
    local no_start=""
    if [ ! -e /usr/sbin/policy-rc.d ]; then
      printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && no_start=1
    fi
    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
    if [ -n "$no_start" ]; then rm -f /usr/sbin/policy-rc.d; fi
  else
    echo "missing $*: install it (Debian: apt-get install $*)" >&2; exit 1
  fi
}
command -v redis-server >/dev/null || apt_install redis-server
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || apt_install nginx-light  # /usr/sbin may be off a user's PATH
command -v node >/dev/null || apt_install nodejs npm

python3 -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e '.[test]'

# --ignore-scripts: nothing here needs an install script, and artillery's would build native modules and try to
# download a browser.
for dir in tests/js tests/browser bench/loadgen bench/peers/node-socketio artillery; do
  if [ -f "$dir/package-lock.json" ]; then
    (cd "$dir" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null)
  fi
done
for installer in scripts/install-helm.sh tests/browser/install.sh; do
  if [ -f "$installer" ]; then bash "$installer"; fi
done

# Static checks first: lint and mypy --strict (settings in setup.cfg) must be clean.
.venv/bin/ruff check realtime_sio tests bench scripts
.venv/bin/mypy

ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
exec .venv/bin/python -m pytest "$@"
