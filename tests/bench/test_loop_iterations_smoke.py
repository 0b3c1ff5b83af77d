"""bench/loop_iterations.py works at tiny scale: all four set-ups (realtime_sio in memory and on Redis, the Node peer
alone and with its Redis adapter) start with their loop burner and answer every POST.

Correctness only (a row per set-up, every POST answered 200), never timings: the figures come from
``python bench/loop_iterations.py``.
"""

from __future__ import annotations

import sys

from tests.bench.helpers import REPO, clean_env, require_node_modules, run_bounded


def test_tiny_run_answers_every_post_in_each_set_up() -> None:
    """Three POSTs per set-up with a 5 ms burn: four table rows, each with a positive figure."""
    require_node_modules(REPO / "bench" / "peers" / "node-socketio")
    proc = run_bounded(
        [sys.executable, str(REPO / "bench" / "loop_iterations.py"), "--burn-ms", "5", "--posts", "3"], timeout=120, env=clean_env()
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = [line for line in proc.stdout.splitlines() if line.startswith("| ") and " ms | " in line]
    assert [row.split(" | ")[0][2:] for row in rows] == [
        "realtime_sio, one in-memory node",
        "realtime_sio, cluster node (Redis)",
        "node peer, one node",
        "node peer, @socket.io/redis-adapter",
    ]
    assert all(float(row.split(" | ")[2].rstrip(" |")) > 0 for row in rows)
