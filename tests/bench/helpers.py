"""Helpers for the benchmark smoke tests: required Node folders, bounded child commands that never leak processes."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def require_node_modules(*folders: Path) -> None:
    """Fail (not skip: CI must install them) when node or a folder's ``npm ci`` is missing."""
    if shutil.which("node") is None:
        pytest.fail("node is not installed; the benchmark smoke tests need Node 18+")
    for folder in folders:
        if not (folder / "node_modules").is_dir():
            pytest.fail(f"run `npm ci --prefix {folder.relative_to(REPO)}` first (see bench/README.md)")


def clean_env(**extra: str) -> dict[str, str]:
    """This environment without REALTIME_SIO_* variables (realtime_sio refuses unknown ones), plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("REALTIME_SIO_")}
    env.update(extra)
    return env


def run_bounded(argv: Sequence[str], timeout: float, env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` in its own process group; on timeout SIGTERM the group (the runners clean up), then SIGKILL it."""
    proc = subprocess.Popen(
        list(argv), cwd=REPO, env=dict(env), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            out, err = proc.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, err = proc.communicate()
        pytest.fail(f"{argv[:3]} did not finish within {timeout}s:\n{out[-2000:]}\n{err[-3000:]}")
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
