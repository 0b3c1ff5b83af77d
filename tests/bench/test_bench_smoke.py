"""The benchmark's code works at tiny scale: runner, load generator, Node peer and realtime_sio deliver every event.

Correctness only (counts), never timings: the figures come from ``python bench/run.py``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from tests.bench.helpers import REPO, clean_env, require_node_modules, run_bounded

LOADGEN = REPO / "bench" / "loadgen"
PEER = REPO / "bench" / "peers" / "node-socketio"


def run_tiny(results: Path, servers: str, scenarios: str) -> dict[str, Any]:
    """``bench/run.py --profile tiny`` for ``servers``/``scenarios``; returns its JSON report after checking no errors."""
    require_node_modules(LOADGEN, PEER)
    proc = run_bounded(
        [sys.executable, str(REPO / "bench" / "run.py"), "--profile", "tiny", "--skip-npm", "--no-docs",
         "--results", str(results), "--servers", servers, "--scenarios", scenarios, "--python", sys.executable],
        timeout=90,
        env=clean_env(),
    )
    reports = sorted(results.glob("*-tiny.json"))
    assert reports, f"no report written:\n{proc.stderr[-3000:]}"
    data: dict[str, Any] = json.loads(reports[-1].read_text())
    assert data["errors"] == [], data["errors"]
    assert proc.returncode == 0, proc.stderr[-3000:]
    return data


def test_tiny_run_delivers_every_event_on_both_servers(tmp_path: Path) -> None:
    """20 clients over two source addresses connect to each server, and every room emit and broadcast arrives once."""
    data = run_tiny(tmp_path, "realtime_sio,node-peer", "idle,latency,fanout")
    for server in ("realtime_sio", "node-peer"):
        (metrics,) = data["runs"][server]
        assert metrics["connect_failed"] == 0, server
        assert metrics["source_addresses"] == 2, server
        assert metrics["rss_base_mib"] > 0 and metrics["rss_20_mib"] > 0, server
        # 20 emits round-robin over 5 rooms of 4 members; 5 broadcasts to one room of 20
        assert (metrics["lat_expected"], metrics["lat_received"], metrics["lat_problems"]) == (80, 80, 0), server
        assert (metrics["fan_expected"], metrics["fan_received"], metrics["fan_problems"]) == (100, 100, 0), server


def test_tiny_redis_path_delivers_every_event_on_both_servers(tmp_path: Path) -> None:
    """The Laravel scenario (PUBLISH laravel_database_<room> on the runner's own redis-server) delivers every event."""
    data = run_tiny(tmp_path, "realtime_sio,node-peer", "redis")
    for server in ("realtime_sio", "node-peer"):
        (metrics,) = data["runs"][server]
        assert (metrics["redis_expected"], metrics["redis_received"], metrics["redis_problems"]) == (80, 80, 0), server
