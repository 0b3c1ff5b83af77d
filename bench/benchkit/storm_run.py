"""One storm against one server kind: start Redis and N nodes, connect the clients from several load generators,
measure memory, connect, a broadcast to all and a targeted stream, SIGKILL one node mid-stream, and measure the
reconnection storm (time until all are back, lost/duplicate events, resets, latency, presence, reaped nodes).

Returns a flat dict of metrics (``storm_report.py`` turns it into the table). Every phase waits with a deadline.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from realtime_sio.settings import Settings

from .procs import ManagedProcess
from .redis_server import start_redis, used_memory
from .servers import BENCH_API_KEY, BENCH_JWT_SECRET, REALTIME_SIO
from .storm_cluster import Node, reaped_ids, start_node
from .storm_plan import StormPlan
from .storm_talk import Talker, ask_all

DEFAULTS = Settings()  # realtime_sio's defaults: history window and node lease decide what "false reset" and "ghost" mean
Say = Callable[[str], None]


@dataclass
class StormContext:
    plan: StormPlan
    logs: Path
    python: str
    node_bin: str
    base_env: Mapping[str, str]
    say: Say
    notes: list[str] = field(default_factory=list)


def wall_ms() -> float:
    return time.time() * 1000.0


def percentiles(values: Sequence[float]) -> dict[str, float | None]:
    """Nearest-rank p50/p99 and max (None when empty)."""
    if not values:
        return {"p50": None, "p99": None, "max": None}
    ordered = sorted(values)

    def rank(p: float) -> float:
        return ordered[min(len(ordered) - 1, max(0, int(-(-p * len(ordered) // 100)) - 1))]

    return {"p50": rank(50), "p99": rank(99), "max": ordered[-1]}


def _cpu(nodes: Sequence[Node]) -> float:
    return sum(n.proc.cpu_seconds() or 0.0 for n in nodes if n.proc.alive())


def _loadgen_cpu(workers: Sequence[Talker]) -> float:
    return sum(t.proc.cpu_seconds() or 0.0 for t in workers)


def _rss(nodes: Sequence[Node]) -> list[int]:
    return [n.proc.rss_bytes() or 0 for n in nodes]


def _sum(statuses: Sequence[Mapping[str, Any]], key: str) -> int:
    return sum(int(s.get(key) or 0) for s in statuses)


def _merge_counts(statuses: Sequence[Mapping[str, Any]], key: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for s in statuses:
        for k, v in (s.get(key) or {}).items():
            out[k] = out.get(k, 0) + int(v)
    return out


def poll(workers: Sequence[Talker], done: Callable[[list[dict[str, Any]]], bool], timeout: float,
         step: float = 0.5) -> tuple[list[dict[str, Any]], bool]:
    """Ask every worker for its status until ``done(statuses)`` or ``timeout``; returns (last statuses, done)."""
    deadline = time.monotonic() + timeout
    while True:
        statuses = ask_all(workers, "status", "status", timeout=60)
        if done(statuses):
            return statuses, True
        if time.monotonic() >= deadline:
            return statuses, False
        time.sleep(step)


def run_storm(ctx: StormContext, kind: str) -> dict[str, Any]:
    """The whole scenario against ``kind``; every process it starts is stopped before it returns or raises."""
    say = ctx.say
    started: list[ManagedProcess] = []
    talkers: list[Talker] = []
    try:
        return _run(ctx, kind, started, talkers)
    finally:
        for t in talkers:
            t.stop()
        for proc in reversed(started):
            proc.stop(grace=5.0)
        say(f"{kind}: stopped {len(started)} server/redis processes and {len(talkers)} load generators")


def _run(ctx: StormContext, kind: str, started: list[ManagedProcess], talkers: list[Talker]) -> dict[str, Any]:
    plan, say = ctx.plan, ctx.say
    m: dict[str, Any] = {}
    ours = kind == REALTIME_SIO
    redis_proc, redis_url = start_redis(ctx.logs / f"{kind}-redis.log", None)
    started.append(redis_proc)
    nodes: list[Node] = []
    for i in range(plan.nodes):
        nodes.append(start_node(kind, i, python=ctx.python, node_bin=ctx.node_bin, redis_url=redis_url,
                                base_env=ctx.base_env, logs=ctx.logs))
        started.append(nodes[-1].proc)
    urls = [n.url for n in nodes]
    say(f"{kind}: redis + {plan.nodes} nodes up ({', '.join(str(n.port) for n in nodes)})")
    time.sleep(1.0)
    rss0, redis0 = _rss(nodes), used_memory(redis_url)

    budget = 120 + plan.clients / 150  # seconds a load generator may live: connect + storm + drains
    for w, (first, count) in enumerate(plan.worker_slices()):
        talkers.append(Talker(
            f"storm-w{w}", "storm",
            {"urls": urls, "clients": count, "first": first, "rooms": plan.rooms, "presence_every": plan.presence_every,
             "presence_channels": plan.presence_channels, "presence": ours, "recovery": ours,
             "kill_node": plan.killed, "source_address": f"127.0.0.{2 + w}", "jwt_secret": BENCH_JWT_SECRET,
             "concurrency": plan.concurrency},
            log_path=ctx.logs / f"{kind}-loadgen-w{w}.log", node=ctx.node_bin, max_seconds=budget + 600))
    workers = list(talkers)
    publisher = Talker("storm-pub", "storm-publisher",
                       {"urls": urls, "users": plan.clients, "rooms": plan.rooms, "rate": plan.rate,
                        "api_key": BENCH_API_KEY},
                       log_path=ctx.logs / f"{kind}-loadgen-publisher.log", node=ctx.node_bin,
                       max_seconds=budget + 600, heap_mb=1024)
    talkers.append(publisher)
    for t in talkers:
        t.expect("ready", 60)

    # -- connect: every client connects, gets its user room and subscribes its room (and presence channel) ---------
    cpu0, t0, lg0, mono0 = _cpu(nodes), wall_ms(), _loadgen_cpu(workers), time.monotonic()
    connected = ask_all(workers, "connect", "connected", timeout=plan.clients / 100 + 180)
    cpu1 = _cpu(nodes)
    m["loadgen_cpu_pct_connect"] = (_loadgen_cpu(workers) - lg0) / max(0.001, time.monotonic() - mono0) * 100
    up = _sum(connected, "up")
    m["connected"] = up
    m["connect_failed"] = plan.clients - up
    m["connect_s"] = (max(float(c["t1"]) for c in connected) - t0) / 1000
    m["cpu_ms_per_connect"] = (cpu1 - cpu0) * 1000 / max(1, up)
    m["connect_errors"] = _merge_counts(connected, "connect_errors")
    say(f"{kind}: {up}/{plan.clients} up in {m['connect_s']:.1f}s; connect errors {m['connect_errors']}")

    # -- idle: memory per connection, idle CPU rate (subtracted from the fan-out window) --------------------------
    idle_c0, idle_t0 = _cpu(nodes), time.monotonic()
    time.sleep(3.0)
    idle_rate = (_cpu(nodes) - idle_c0) / (time.monotonic() - idle_t0)
    rss1, redis1 = _rss(nodes), used_memory(redis_url)
    m["loadgen_rss_mib"] = sum(t.proc.rss_bytes() or 0 for t in workers) / 2**20
    m["rss_node_max_mib"] = max(rss1) / 2**20
    m["rss_total_mib"] = sum(rss1) / 2**20
    m["kib_per_conn"] = (sum(rss1) - sum(rss0)) / 1024 / max(1, up)
    if redis0 is not None and redis1 is not None:
        m["redis_b_per_conn"] = (redis1 - redis0) / max(1, up)
    m["idle_cpu_pct"] = idle_rate * 100

    # -- broadcast to all: one event to every room, until the last client has it --------------------------------
    b_cpu0, b_t0 = _cpu(nodes), time.monotonic()
    sent = publisher.ask("broadcast", "broadcast", timeout=120)
    statuses, complete = poll(workers, lambda s: _sum(s, "bcast") >= up, timeout=60 + plan.clients / 2000, step=0.2)
    window = time.monotonic() - b_t0
    b_cpu = _cpu(nodes) - b_cpu0 - idle_rate * window
    got = _sum(statuses, "bcast")
    m["bcast_ms"] = (max(float(s["bcast_last_at"]) for s in statuses) - float(sent["t0"])) if got else None
    m["bcast_missing"] = up - got
    m["bcast_posts_failed"] = int(sent["failed"])
    m["us_per_delivery"] = max(0.0, b_cpu) * 1e6 / max(1, got)
    say(f"{kind}: broadcast reached {got}/{up} in {m['bcast_ms']} ms{'' if complete else ' (timed out)'}")

    # -- targeted stream, then the kill -------------------------------------------------------------------------
    publisher.ask("stream", "streaming")
    stream_t0 = time.monotonic()
    while time.monotonic() - stream_t0 < plan.seconds:
        ask_all(workers, "status", "status", timeout=60)  # keeps an eye on the workers while the stream flows
        time.sleep(min(1.0, max(0.0, plan.seconds - (time.monotonic() - stream_t0))))
    victim = nodes[plan.killed]
    victim_id = victim.node_id()
    publisher.ask(f"dead {plan.killed}", "dead")
    time.sleep(0.3)  # let requests already sent to the victim finish: their events are accepted or retried elsewhere
    before = ask_all(workers, "status", "status", timeout=60)
    t_kill = wall_ms()
    os.killpg(victim.proc.pid, signal.SIGKILL)
    say(f"{kind}: SIGKILLed node {plan.killed} ({plan.clients_on(plan.killed)} clients) after {plan.seconds:g}s of stream")

    moved = plan.clients_on(plan.killed)
    base_disconnects = _sum(before, "disconnects")
    statuses, all_back = poll(
        workers,
        lambda s: _sum(s, "disconnects") - base_disconnects >= moved and _sum(s, "down") == 0,
        timeout=180 + plan.clients / 1000,
    )
    t_back = max(float(s["last_back_at"]) for s in statuses)
    m["moved"] = _sum(statuses, "disconnects") - base_disconnects
    m["all_back"] = all_back
    m["still_down"] = _sum(statuses, "down")
    m["back_s"] = (t_back - t_kill) / 1000 if t_back > t_kill else None
    m["leavers"] = _sum(statuses, "leavers")
    m["reconnect_attempts"] = _sum(statuses, "reconnect_attempts")
    m["storm_connect_errors"] = _merge_counts(statuses, "connect_errors")
    m["disconnect_reasons"] = _merge_counts(statuses, "disconnect_reasons")
    say(f"{kind}: {m['moved']} disconnected, all back: {all_back} after {m['back_s']} s; "
        f"{m['reconnect_attempts']} reconnect attempts; errors {m['storm_connect_errors']}")
    time.sleep(plan.after_seconds)
    stopped = publisher.ask("stop", "stopped", timeout=120)
    t_stop = wall_ms()
    accepted = [int(x) for x in stopped["accepted"]]
    m["events_sent"] = int(stopped["sent"])
    m["events_accepted"] = len(accepted)
    m["publish_failed"] = int(stopped["failed"])
    m["publish_statuses"] = stopped["statuses"]

    # -- drain: wait until the receipts stop growing ------------------------------------------------------------
    expect_max = len(accepted)
    last, stable_since = -1, time.monotonic()
    drain_deadline = time.monotonic() + 60
    while time.monotonic() < drain_deadline:
        got_t = _sum(ask_all(workers, "status", "status", timeout=60), "targeted")
        if got_t != last:
            last, stable_since = got_t, time.monotonic()
        if got_t >= expect_max or time.monotonic() - stable_since > 3.0:
            break
        time.sleep(0.3)

    # -- presence: after the lease, members = users whose clients are up; no ghost, no live member lost ------------
    if ours:
        settle_until = t_kill + DEFAULTS.node_lease_seconds * 1000 * 4 / 3 + 3000
        if wall_ms() < settle_until:
            time.sleep((settle_until - wall_ms()) / 1000)
        presence_now = ask_all(workers, "presence", "presence", timeout=60)
        expected: dict[str, set[str]] = {}
        for p in presence_now:
            for channel, users in p["members"].items():
                expected.setdefault(channel, set()).update(users)
        probe_url = next(n.url for n in nodes if n.proc.alive())
        answer = workers[0].ask(f"probe {probe_url}", "probe", timeout=30 + plan.presence_channels * 2)
        probed, m["presence_probe_refusals"] = answer["members"], answer["refusals"]
        m["presence_probe_refused"] = sum(int(v) for v in answer["refusals"].values())
        ghosts = missing = unprobed = 0
        for k in range(plan.presence_channels):
            channel = f"presence-chat.{k}"
            if channel not in probed:
                unprobed += 1
                continue
            seen = set(probed[channel])
            ghosts += len(seen - expected.get(channel, set()))
            missing += len(expected.get(channel, set()) - seen)
        m["presence_ghosts"], m["presence_missing"], m["presence_unprobed"] = ghosts, missing, unprobed
        m["presence_members"] = sum(len(v) for v in expected.values())
        reaped = reaped_ids(nodes)
        m["dead_node_reaped"] = victim_id in reaped
        m["live_nodes_reaped"] = len([r for r in reaped if r != victim_id])
        say(f"{kind}: presence ghosts {ghosts}, live members missing {missing}, unprobed {unprobed}; reaped {reaped}")

    # -- final reports: received sequence numbers, latencies, resets ---------------------------------------------
    finals = ask_all(workers, "final", "result", timeout=120)
    received: set[int] = set()
    for f in finals:
        received.update(int(x) for x in f["seen"])
    never_up = {int(i) for f in finals for i in f.get("never_up", [])}
    excluded = {i for i in range(plan.clients) if plan.is_leaver(i)} | never_up

    def target(seq: int) -> int:
        return seq % plan.clients

    counted = [s for s in accepted if target(s) not in excluded]
    lost = [s for s in counted if s not in received]
    m["events_expected"] = len(counted)
    m["events_received"] = len(set(counted) & received)
    m["lost"] = len(lost)
    m["lost_moved"] = len([s for s in lost if plan.home(target(s)) == plan.killed])
    m["lost_sample"] = lost[:10]
    m["not_accepted_but_received"] = len(received - set(accepted))
    m["duplicates"] = sum(int(f["dup"]) + int(f["bcast_dup"]) for f in finals)
    m["wrong_user"] = sum(int(f["wrong_user"]) for f in finals)
    m["subscribe_failures"] = sum(int(f["subscribe_failures"]) for f in finals)
    m["subscribe_refusals"] = _merge_counts(finals, "subscribe_refusals")

    lat = [e for f in finals for e in f["lat"]]
    steady = [float(ms) for ts, ms, rec in lat if ts < t_kill and not rec]
    storm = [float(ms) for ts, ms, rec in lat if t_kill <= ts <= max(t_back, t_kill) and not rec]
    recovered = [float(ms) for _, ms, rec in lat if rec]
    for name, values in (("steady", steady), ("storm", storm)):
        for k, v in percentiles(values).items():
            m[f"{name}_{k}"] = v
    backs = sorted(float(t) - t_kill for f in finals for t in f.get("back_times", []))
    if backs:
        m["back_p50_s"], m["back_p99_s"] = percentiles(backs)["p50"] / 1000, percentiles(backs)["p99"] / 1000
    problems: dict[str, int] = {}
    for node in nodes:
        for name, count in node.problem_counts().items():
            problems[name] = problems.get(name, 0) + count
    m["node_warnings"] = problems
    if ours:  # the peer logs no stalls (nothing to count, not zero)
        m["loop_stalls"] = problems.get("event_loop_stalled", 0)
    m["recovered"] = len(recovered)
    m["recovered_max_ms"] = max(recovered) if recovered else None
    m["stream_s"] = (t_stop - t_kill) / 1000 + plan.seconds

    resets = [r for f in finals for r in f["reset_list"]]
    window_ms = DEFAULTS.history_seconds * 1000
    m["resets"] = len(resets)
    m["reset_codes"] = dict(sorted({c: sum(1 for r in resets if r[1] == c) for c in {r[1] for r in resets}}.items()))
    # history exists when the presented position is inside the history window (and the channel had fewer than
    # HISTORY_SIZE events since, which this scenario guarantees: at most a few events per channel)
    # (epoch_changed means Redis lost the history: never the case here, so such a reset is not excused either)
    m["false_resets"] = sum(1 for r in resets if r[2] is not None and r[2] < window_ms - 2000)
    publisher.ask("quit", "result", timeout=30)
    say(f"{kind}: lost {m['lost']} of {m['events_expected']} (moved clients {m['lost_moved']}), "
        f"duplicates {m['duplicates']}, resets {m['resets']} {m['reset_codes']}")
    return m
