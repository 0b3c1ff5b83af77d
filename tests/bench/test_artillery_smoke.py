"""The Artillery scenarios run clean: the ~10 s smoke profile against a real realtime_sio ends with zero errors."""

from __future__ import annotations

import json
import sys

from tests.bench.helpers import REPO, clean_env, require_node_modules, run_bounded

ARTILLERY = REPO / "artillery"


def test_smoke_profile_has_zero_errors() -> None:
    """20 VUs, each with its own JWT, subscribe to their own channel and ping; every ack arrives, nothing fails."""
    require_node_modules(ARTILLERY)
    proc = run_bounded(
        ["bash", str(ARTILLERY / "run.sh"), "smoke"],
        timeout=110,
        env=clean_env(BENCH_PYTHON=sys.executable, ARTILLERY_JSON="1"),
    )
    assert proc.returncode == 0, f"{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert summary["errors_total"] == 0, summary["errors"]
    assert summary["vusers_created"] == summary["vusers_completed"] == 20
    assert summary["vusers_failed"] == 0
    # every emit in the scenarios asks for an ack, so every emit must have a response time
    assert summary["emits"] >= 40
    assert summary["response_time_ms"]["count"] == summary["emits"]
