"""The cluster storm (bench/storm.py) works at tiny scale: 2 nodes, 60 clients, one node SIGKILLed mid-stream.

Correctness only (counts), never timings: the figures come from ``python bench/storm.py`` at full size.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from tests.bench.helpers import REPO, clean_env, require_node_modules, run_bounded

LOADGEN = REPO / "bench" / "loadgen"
PEER = REPO / "bench" / "peers" / "node-socketio"

sys.path.insert(0, str(REPO / "bench"))
from benchkit.storm_plan import StormPlan

# 2 s at 15 events/s reach only half of the 60 users before the kill: the others can recover their own channel only
# with the position the server hands out on join (recovery:position), which is part of what this checks.
ARGS = ["--clients", "60", "--nodes", "2", "--rate", "15", "--seconds", "2", "--rooms", "10"]


def test_tiny_storm_loses_nothing_on_realtime_sio_and_runs_on_the_peer(tmp_path: Path) -> None:
    """After the SIGKILL every client is back; realtime_sio loses and duplicates nothing, presence converges, no live
    node is reaped; the peer's run completes without duplicates; on both servers every presence client's join is
    answered with its member list and no live user is announced as leaving; the side-by-side table is printed."""
    require_node_modules(LOADGEN, PEER)
    proc = run_bounded(
        [sys.executable, str(REPO / "bench" / "storm.py"), *ARGS, "--servers", "realtime_sio,node-peer",
         "--skip-npm", "--results", str(tmp_path), "--python", sys.executable],
        timeout=170,
        env=clean_env(),
    )
    reports = sorted(tmp_path.glob("*-storm.json"))
    assert reports, f"no report written:\n{proc.stderr[-3000:]}"
    data: dict[str, Any] = json.loads(reports[-1].read_text())
    assert data["errors"] == [], data["errors"]
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "| Metric | realtime_sio | node peer | ratio |" in proc.stdout
    plan = StormPlan(clients=60, nodes=2, rooms=10)
    leavers = sum(1 for i in range(60) if plan.is_leaver(i))
    presence_clients = sum(1 for i in range(60) if plan.is_presence(i))
    for server in ("realtime_sio", "node-peer"):
        m = data["results"][server]
        assert (m["connected"], m["connect_failed"], m["bcast_missing"]) == (60, 0, 0), server
        # every broadcast round reached all 60 once (a later round is not taken for a duplicate of an earlier one)
        assert [r["missing"] for r in m["bcast_rounds"]] == [0] * (1 + plan.broadcasts), server  # with the warm-up
        assert m["all_back"] and m["still_down"] == 0, server
        assert m["survivors_exited"] == 0, server  # no surviving node crashed
        assert m["moved"] == 30, server
        assert m["leavers"] == leavers >= 1, server  # the Python plan and the JS clients agree on who leaves
        assert (m["duplicates"], m["wrong_user"], m["publish_failed"]) == (0, 0, 0), server
        assert m["events_expected"] > 0, server
        # every presence client got presence:subscribed (a refused presence subscribe sends none), none still refused
        assert m["presence_joined"] == presence_clients == 6, server
        assert m["subscribe_failures"] == 0 and m["false_leavings"] == 0, server
    ours = data["results"]["realtime_sio"]
    assert (ours["lost"], ours["false_resets"]) == (0, 0), ours["lost_sample"]
    assert (ours["presence_ghosts"], ours["presence_missing"], ours["presence_unprobed"]) == (0, 0, 0)
    assert ours["false_leavings"] == 0
    assert ours["live_nodes_reaped"] == 0 and ours["dead_node_reaped"] is True
    # the burst behind the fan-out CPU row: every event to every room reached every client, and it was measured
    assert (ours["burst"]["delivered"], ours["burst"]["missing"]) == (60 * plan.burst, 0), ours["burst"]
    assert ours["us_per_delivery"] is not None and round(ours["us_per_delivery"], 1) == ours["burst"]["us_per_delivery"]
