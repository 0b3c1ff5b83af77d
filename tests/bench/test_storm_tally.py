"""The storm's bookkeeping (bench/benchkit/storm_tally.py, storm_plan.py) counts what it claims to count."""

from __future__ import annotations

import sys
from typing import Any

from tests.bench.helpers import REPO

sys.path.insert(0, str(REPO / "bench"))
from benchkit import storm_tally as tally
from benchkit.storm_plan import StormPlan

PLAN = StormPlan(clients=60, nodes=2, rooms=10)


def final(seen: list[int], dup: int = 0, **extra: Any) -> dict[str, Any]:
    return {"seen": seen, "dup": dup, "bcast_dup": 0, "wrong_user": 0, "subscribe_failures": 0, "lat": [],
            "reset_list": [], **extra}


def test_percentiles_are_nearest_rank() -> None:
    """p50 of 1..100 is 50, p99 is 99, max 100; empty input gives None."""
    assert tally.percentiles([float(x) for x in range(100, 0, -1)]) == {"p50": 50.0, "p99": 99.0, "max": 100.0}
    assert tally.percentiles([]) == {"p50": None, "p99": None, "max": None}


def test_lost_counts_accepted_events_never_received_except_leavers_and_never_connected() -> None:
    """Event seq goes to user seq % clients; a leaver's or never-connected user's events are not expected."""
    leaver = next(i for i in range(60) if PLAN.is_leaver(i))
    assert leaver not in (0, 2, 3, 4, 5)
    accepted = [0, 2, 3, 4, 5 + 60, leaver]
    got = tally.deliveries(PLAN, accepted, [final([0, 2], dup=2), final([], never_up=[3])])
    assert got["events_expected"] == 4  # 0, 2, 4 and 65 (user 5)
    assert got["lost"] == 2 and sorted(got["lost_sample"]) == [4, 65]
    assert got["lost_moved"] == 1  # user 5 lived on node 1, the killed one (the last)
    assert got["duplicates"] == 2


def test_lost_events_of_users_told_to_reset_their_own_channel_are_counted_apart() -> None:
    """A lost event whose user got recovery:reset on its private channel was announced; one whose user got none (or
    only a reset of a public room) was lost silently."""
    accepted = [4, 5, 6]  # users 4, 5 and 6, none received
    resets = [["private", "history_unavailable/trimmed", 130_000, 4], ["public", "history_unavailable/trimmed", 130_000, 5]]
    got = tally.deliveries(PLAN, accepted, [final([], reset_list=resets)])
    assert (got["lost"], got["lost_after_reset"], got["lost_unannounced"]) == (3, 1, 2)
    assert sorted(got["lost_sample"]) == [5, 6]


def test_a_reset_inside_the_history_window_is_false() -> None:
    """Ages under the window (less 2 s of slack) are false resets; older ones and unknown ages are not."""
    finals = [final([], reset_list=[["private", "history_unavailable/expired", 5_000],
                                    ["public", "history_unavailable/expired", 130_000],
                                    ["public", "history_unavailable/trimmed", None]])]
    got = tally.resets(finals, history_seconds=120)
    assert got["resets"] == 3 and got["false_resets"] == 1
    assert got["reset_codes"] == {"history_unavailable/expired": 2, "history_unavailable/trimmed": 1}


def test_presence_compares_probed_members_with_the_clients_that_are_up() -> None:
    """A member nobody is connected as is a ghost; an up client missing from the list is a lost live member."""
    expected = {"presence-chat.0": {"u0", "u2"}, "presence-chat.1": {"u4"}}
    probed = {"presence-chat.0": ["u0", "u9"], "presence-chat.1": ["u4"]}
    got = tally.presence(PLAN, expected, probed)
    assert (got["presence_ghosts"], got["presence_missing"]) == (1, 1)
    assert got["presence_unprobed"] == PLAN.presence_channels - 2


def test_the_plan_keeps_every_survivor_under_the_descriptor_limit_at_full_size() -> None:
    """100,000 clients over 7 nodes: 16,667 sockets on a survivor after the kill fit a 20,000 limit; 3 nodes do not."""
    full = StormPlan()
    assert full.peak_per_survivor() == 16_667 and full.check(20_000) == []
    assert StormPlan(nodes=3).check(20_000)
    assert sum(w.count for w in full.worker_slices()) == 100_000


def test_the_killed_nodes_clients_have_load_generators_of_their_own() -> None:
    """Every client is in exactly one load generator; the movers (home = the killed node) are in "moving" ones only,
    at most 5,000 each, so a reconnect storm never shares a loop with clients the kill did not touch."""
    plan = StormPlan(per_worker=10_000)
    homes: dict[int, str] = {}
    for w in plan.worker_slices():
        members = [i for i in range(w.first, w.first + w.span) if (plan.home(i) == plan.killed) == (w.homes == "moving")]
        assert len(members) == w.count <= (5000 if w.homes == "moving" else 10_000)
        for i in members:
            assert i not in homes
            homes[i] = w.homes
    assert len(homes) == 100_000
    assert [w.homes for w in plan.worker_slices()].count("moving") == 3


def test_a_leaving_is_false_only_for_users_that_never_went_down() -> None:
    """presence:leaving for a user whose client disconnected is expected; for one that stayed up it is a removal,
    unless it came after the teardown began or named a presence probe."""
    finals = [{"leaving_users": [["u1", 10], ["u3", 20], ["u5", 99], ["probe0", 20]], "went_down": ["u1"]},
              {"leaving_users": [["u3", 30]], "went_down": []}]
    assert tally.false_leavings(finals, until=50) == 1
