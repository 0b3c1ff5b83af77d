#!/usr/bin/env bash
# Install what the browser tests need, idempotently: Debian's chromium (never a downloaded browser build), NSS's
# certutil (libnss3-tools: the TLS page test makes Chromium trust its test CA through an NSS database), node and
# npm when missing, and the locked npm packages of tests/browser (playwright-core, socket.io-client, laravel-echo, pusher-js).
# Safe to run on every CI start: each step is skipped when already satisfied.
set -euo pipefail
cd "$(dirname "$0")"

missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
command -v certutil >/dev/null || missing+=(libnss3-tools)
command -v node >/dev/null || missing+=(nodejs)
command -v npm >/dev/null || missing+=(npm)
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "tests/browser: missing ${missing[*]}; install with: apt-get install ${missing[*]}" >&2
    exit 1
  fi
fi

# npm ci unless node_modules is already at least as new as the lock file (npm writes node_modules/.package-lock.json
# on every install, so a lock file changed by a pull or a checkout is newer and triggers a fresh install).
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error >/dev/null
fi
