"""bench/cluster_bus.py works at tiny scale: 3 real nodes on a real redis-server deliver every event to every client.

Correctness only (counts), never timings: the figures come from ``python bench/cluster_bus.py``.
"""

from __future__ import annotations

import json
import sys

from tests.bench.helpers import REPO, clean_env, run_bounded


def test_tiny_run_delivers_every_event_and_reports_each_node() -> None:
    """Both POSTs of 100 channels reach each of node 1's 6 clients (one room each), and a CPU figure is printed per node."""
    proc = run_bounded(
        [sys.executable, str(REPO / "bench" / "cluster_bus.py"), "--posts", "2", "--clients", "6"], timeout=90, env=clean_env()
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    (line,) = proc.stdout.strip().splitlines()
    result = json.loads(line)
    assert result["events"] == 200
    assert result["delivered"] == result["expected"] == 2 * 6
    assert set(result["us_cpu_per_event"]) == {"publishing node", "node with subscribers", "node without subscribers"}
