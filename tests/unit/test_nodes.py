"""Unit tests of the reaper's self-check (cluster/nodes.py): a node in trouble judges no one."""

from __future__ import annotations

from realtime_sio.cluster.nodes import may_reap


def test_healthy_node_may_reap() -> None:
    """Fresh own lease and an on-time pass: peers may be judged."""
    assert may_reap(own_lease_age=1.0, pass_late_by=0.1, interval=1.0)


def test_stale_own_lease_forbids_reaping() -> None:
    """A node that could not write its own lease lately (Redis trouble on its side) reaps no one."""
    assert not may_reap(own_lease_age=2.5, pass_late_by=0.0, interval=1.0)


def test_late_loop_forbids_reaping() -> None:
    """A node whose own loop ran its pass more than one interval late reaps no one on that pass."""
    assert not may_reap(own_lease_age=0.5, pass_late_by=1.5, interval=1.0)
