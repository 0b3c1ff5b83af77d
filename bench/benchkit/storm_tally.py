"""Turning what the storm's processes reported into figures: percentiles, lost and duplicate events, resets, back
times, presence differences. Pure functions over plain data (the runner feeds them the load generators' reports)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .storm_plan import StormPlan

Report = Mapping[str, Any]


def percentiles(values: Sequence[float]) -> dict[str, float | None]:
    """Nearest-rank p50/p99 and max (None when empty)."""
    if not values:
        return {"p50": None, "p99": None, "max": None}
    ordered = sorted(values)

    def rank(p: float) -> float:
        return ordered[min(len(ordered) - 1, max(0, -(-int(p * len(ordered)) // 100) - 1))]

    return {"p50": rank(50), "p99": rank(99), "max": ordered[-1]}


def total(reports: Sequence[Report], key: str) -> int:
    return sum(int(r.get(key) or 0) for r in reports)


def merged(reports: Sequence[Report], key: str) -> dict[str, int]:
    """Sum the ``{name: count}`` maps under ``key`` over every report."""
    out: dict[str, int] = {}
    for r in reports:
        for name, count in (r.get(key) or {}).items():
            out[name] = out.get(name, 0) + int(count)
    return out


def since(now: Mapping[str, int], before: Mapping[str, int]) -> dict[str, int]:
    """What a cumulative ``{name: count}`` map gained since ``before`` (zero entries dropped)."""
    return {k: v - before.get(k, 0) for k, v in now.items() if v - before.get(k, 0)}


def deliveries(plan: StormPlan, accepted: Sequence[int], finals: Sequence[Report]) -> dict[str, Any]:
    """Lost and duplicate targeted events: every accepted event (HTTP 200) must reach its user exactly once, except
    those addressed to leavers and to clients that never connected. Event ``seq`` goes to user ``seq % clients``.

    A lost event whose user was told ``recovery:reset`` on its own (private) channel is counted apart: that client
    knows it missed something and reloads (the history had aged out); the others are lost without a word. (The reset
    may come at any time of the run: a loss after the reset would still be counted as announced.)"""
    received: set[int] = set()
    for f in finals:
        received.update(int(x) for x in f["seen"])
    excluded = {i for i in range(plan.clients) if plan.is_leaver(i)}
    excluded |= {int(i) for f in finals for i in f.get("never_up", [])}
    counted = [s for s in accepted if s % plan.clients not in excluded]
    lost = [s for s in counted if s not in received]
    told = {int(r[3]) for f in finals for r in f["reset_list"] if len(r) > 3 and r[0] == "private" and r[3] is not None}
    unannounced = [s for s in lost if s % plan.clients not in told]
    return {
        "events_expected": len(counted),
        "events_received": len(set(counted) & received),
        "lost": len(lost),
        "lost_moved": len([s for s in lost if plan.home(s % plan.clients) == plan.killed]),
        "lost_after_reset": len(lost) - len(unannounced),
        "lost_unannounced": len(unannounced),
        "lost_sample": unannounced[:10] or lost[:10],
        "not_accepted_but_received": len(received - set(accepted)),
        "duplicates": sum(int(f["dup"]) + int(f["bcast_dup"]) for f in finals),
        "duplicate_sample": [d for f in finals for d in f.get("dup_sample", [])][:10],
        "wrong_user": total(finals, "wrong_user"),
        "subscribe_failures": total(finals, "subscribe_failures"),
        "subscribe_refusals": merged(finals, "subscribe_refusals"),
    }


def latencies(finals: Sequence[Report], t_kill: float, t_back: float) -> dict[str, Any]:
    """Live latency before the kill (``steady_*``) and from the kill until all are back (``storm_*``), by the send
    time each event carries; events replayed by recovery are counted apart (their delay is the outage, not latency)."""
    lat = [e for f in finals for e in f["lat"]]
    steady = [float(ms) for ts, ms, rec in lat if ts < t_kill and not rec]
    storm = [float(ms) for ts, ms, rec in lat if t_kill <= ts <= max(t_back, t_kill) and not rec]
    recovered = [float(ms) for _, ms, rec in lat if rec]
    out: dict[str, Any] = {"recovered": len(recovered), "recovered_max_ms": max(recovered) if recovered else None}
    for name, values in (("steady", steady), ("storm", storm)):
        for k, v in percentiles(values).items():
            out[f"{name}_{k}"] = v
    backs = [float(t) - t_kill for f in finals for t in f.get("back_times", [])]
    if backs:
        p = percentiles(backs)
        out["back_p50_s"], out["back_p99_s"] = (p["p50"] or 0) / 1000, (p["p99"] or 0) / 1000
    return out


def answers(answered: Sequence[Sequence[float]], t_kill: float, t_back: float) -> dict[str, Any]:
    """How long the nodes took to answer the publisher's POSTs, before the kill and during the storm: separates a
    slow publish route from slow delivery."""
    out: dict[str, Any] = {}
    steady = [float(ms) for ts, ms in answered if ts < t_kill]
    storm = [float(ms) for ts, ms in answered if t_kill <= ts <= max(t_back, t_kill)]
    for name, values in (("post_steady", steady), ("post_storm", storm)):
        for k, v in percentiles(values).items():
            out[f"{name}_{k}"] = v
    return out


def resets(finals: Sequence[Report], history_seconds: float) -> dict[str, Any]:
    """Resets by ``code/reason``; a reset is false when the presented position was inside the history window.

    (The channels here get a few events each, far below HISTORY_SIZE, and Redis never loses data in this scenario,
    so inside the window the history existed whatever the reason says.)"""
    found = [r for f in finals for r in f["reset_list"]]
    codes: dict[str, int] = {}
    for entry in found:
        codes[entry[1]] = codes.get(entry[1], 0) + 1
    window_ms = history_seconds * 1000
    return {
        "resets": len(found),
        "reset_codes": dict(sorted(codes.items())),
        "false_resets": sum(1 for entry in found if entry[2] is not None and entry[2] < window_ms - 2000),
    }


def presence(plan: StormPlan, expected: Mapping[str, set[str]], probed: Mapping[str, Sequence[str]]) -> dict[str, int]:
    """Ghosts (members whose client is not up) and live members missing, over every presence channel probed."""
    ghosts = missing = unprobed = 0
    for k in range(plan.presence_channels):
        channel = f"presence-chat.{k}"
        if channel not in probed:
            unprobed += 1
            continue
        seen, want = set(probed[channel]), expected.get(channel, set())
        ghosts += len(seen - want)
        missing += len(want - seen)
    return {"presence_ghosts": ghosts, "presence_missing": missing, "presence_unprobed": unprobed,
            "presence_members": sum(len(v) for v in expected.values())}


def false_leavings(finals: Sequence[Report], until: float) -> int:
    """Users announced as ``presence:leaving`` before ``until`` (wall ms: the teardown starts then) although none of
    their sockets ever went down: a live member removed, e.g. by a reaper that took a live node for dead. The presence
    probes (users ``probe<k>``) join and leave by design and are not counted."""
    down = {str(u) for f in finals for u in f.get("went_down", [])}
    named = {str(u) for f in finals for u, at in f.get("leaving_users", [])
             if float(at) < until and not str(u).startswith("probe")}
    return len(named - down)
