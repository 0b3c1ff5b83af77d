"""One storm against one server kind: start Redis and N nodes, connect the clients from several load generators,
measure memory, connect, a broadcast to all and a targeted stream, SIGKILL one node mid-stream, and measure the
reconnection storm (time until all are back, lost/duplicate events, resets, latency, presence, reaped nodes).

:func:`run_storm` returns a flat dict of metrics (``storm_report.py`` makes the table). Every wait has a deadline, and
every process started here is stopped before it returns or raises.
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

from . import storm_tally as tally
from .procs import ManagedProcess
from .redis_server import start_redis, used_memory
from .servers import BENCH_API_KEY, BENCH_JWT_SECRET, REALTIME_SIO
from .storm_cluster import Node, reaped_ids, scrape, start_node
from .storm_plan import StormPlan
from .storm_talk import Talker, ask_all

DEFAULTS = Settings()  # realtime_sio's defaults: the history window and the node lease the checks are read against
STATUS_TIMEOUT = 180.0  # seconds for every load generator to answer a status request
IDLE_SECONDS = 10.0  # each idle window around the broadcasts (the fan-out row subtracts their mean rate)
BCAST_TAIL_SECONDS = 3.0  # after a broadcast's last receipt, still counted with it (work it left for later)
Say = Callable[[str], None]
Statuses = list[dict[str, Any]]


@dataclass
class StormContext:
    plan: StormPlan
    logs: Path
    python: str
    node_bin: str
    base_env: Mapping[str, str]
    say: Say
    source: Path  # where realtime_sio is imported from (this checkout unless --realtime-sio-source)


def wall_ms() -> float:
    """Wall-clock ms: the load generators stamp events with performance.timeOrigin + performance.now()."""
    return time.time() * 1000.0


def _receipts_reach(event: str, count: int) -> Callable[[Statuses], bool]:
    """Whether the load generators have received ``count`` events named ``event`` ("bcast", "burst") in all."""
    return lambda statuses: tally.total(statuses, event) >= count


def _span_ms(sent: Mapping[str, Any], last_at: float, got: int) -> float | None:
    """Milliseconds from the publisher's first send (``sent["t0"]``) to the last receipt; None when nothing arrived."""
    t0 = float(sent["t0"])
    return last_at - t0 if got > 0 and last_at > t0 else None


def _receipts_settle(event: str, count: int, quiet: float) -> Callable[[Statuses], bool]:
    """Whether ``count`` events named ``event`` arrived in all, or none more for ``quiet`` seconds."""
    last = [-1.0, time.monotonic()]  # receipts at the last change, and when

    def done(statuses: Statuses) -> bool:
        got, now = tally.total(statuses, event), time.monotonic()
        if got != last[0]:
            last[0], last[1] = got, now
        return got >= count or now - last[1] >= quiet

    return done


@dataclass
class Storm:
    """The processes of one run and what has been measured so far (``m``)."""

    ctx: StormContext
    kind: str
    started: list[ManagedProcess] = field(default_factory=list)
    nodes: list[Node] = field(default_factory=list)
    workers: list[Talker] = field(default_factory=list)
    publisher: Talker | None = None
    redis_url: str = ""
    m: dict[str, Any] = field(default_factory=dict)

    @property
    def ours(self) -> bool:
        return self.kind == REALTIME_SIO

    def say(self, text: str) -> None:
        self.ctx.say(f"{self.kind}: {text}")

    def idle_rate(self, seconds: float) -> float:
        """The live nodes' CPU rate (cores) over the next ``seconds``, while nothing is published."""
        c0, i0 = self.cpu(), time.monotonic()
        time.sleep(seconds)
        return (self.cpu() - c0) / (time.monotonic() - i0)

    def cpu(self) -> float:
        return sum(n.proc.cpu_seconds() or 0.0 for n in self.nodes if n.proc.alive())

    def system_cpu(self) -> float:
        return sum(n.proc.system_seconds() or 0.0 for n in self.nodes if n.proc.alive())

    def rss(self) -> list[int]:
        return [n.proc.rss_bytes() or 0 for n in self.nodes]

    def loadgen_cpu(self) -> float:
        return sum(t.proc.cpu_seconds() or 0.0 for t in self.workers)

    def storm_cpu(self, victim: Node) -> dict[str, float]:
        """CPU seconds so far of the surviving nodes, the load generators (publisher included; ``of_which_movers``: the
        load generators of the killed node's clients) and redis-server, beside the wall clock."""
        publisher = (self.publisher.proc.cpu_seconds() or 0.0) if self.publisher is not None else 0.0
        return {"nodes": self.cpu(),
                "survivors": sum(n.proc.cpu_seconds() or 0.0 for n in self.nodes if n is not victim and n.proc.alive()),
                "load_generators": self.loadgen_cpu() + publisher,
                "of_which_movers": sum(t.proc.cpu_seconds() or 0.0 for t, part in zip(self.workers, self.ctx.plan.worker_slices(), strict=True)
                                       if part.homes == "moving"),
                "redis": self.started[0].cpu_seconds() or 0.0,
                "wall": time.monotonic()}

    def status(self) -> Statuses:
        # A load generator starved of CPU in the storm answers late, not never (one took over 60 s at 100,000 clients)
        return ask_all(self.workers, "status", "status", timeout=STATUS_TIMEOUT)

    def poll(self, done: Callable[[Statuses], bool], timeout: float, step: float = 0.5) -> tuple[Statuses, bool]:
        """Ask every worker for its status until ``done(statuses)`` or ``timeout``; returns (last statuses, done)."""
        deadline = time.monotonic() + timeout
        while True:
            statuses = self.status()
            if done(statuses):
                return statuses, True
            if time.monotonic() >= deadline:
                return statuses, False
            time.sleep(step)

    # -- phases ----------------------------------------------------------------------------------------------------
    def start(self) -> None:
        """redis-server, the N nodes, the load generators and the publisher."""
        ctx, plan = self.ctx, self.ctx.plan
        redis_proc, self.redis_url = start_redis(ctx.logs / f"{self.kind}-redis.log", None)
        self.started.append(redis_proc)
        for i in range(plan.nodes):
            self.nodes.append(start_node(self.kind, i, python=ctx.python, node_bin=ctx.node_bin,
                                         redis_url=self.redis_url, base_env=ctx.base_env, logs=ctx.logs,
                                         source=ctx.source))
            self.started.append(self.nodes[-1].proc)
        urls = [n.url for n in self.nodes]
        self.say(f"redis + {plan.nodes} nodes up ({', '.join(str(n.port) for n in self.nodes)})")
        lifetime = 720 + plan.clients / 150  # the load generators' own deadline: connect + storm + drains
        for w, part in enumerate(plan.worker_slices()):
            self.workers.append(Talker(
                f"storm-w{w}", "storm",
                {"urls": urls, "first": part.first, "span": part.span, "homes": part.homes, "rooms": plan.rooms,
                 "presence_every": plan.presence_every, "presence_channels": plan.presence_channels,
                 "presence": True, "recovery": self.ours, "kill_node": plan.killed,
                 # no source address: binding one before connect costs the kernel 3-5 ms per connect once ~12,000
                 # sockets hold that address (a port search), which starved the load generators in the 100,000 storm;
                 # from 127.0.0.1 each node's port gets its own 28,000 ephemeral ports
                 "jwt_secret": BENCH_JWT_SECRET, "concurrency": plan.concurrency},
                log_path=ctx.logs / f"{self.kind}-loadgen-w{w}.log", node=ctx.node_bin, max_seconds=lifetime))
        self.publisher = Talker(
            "storm-pub", "storm-publisher",
            {"urls": urls, "users": plan.clients, "rooms": plan.rooms, "rate": plan.rate, "api_key": BENCH_API_KEY},
            log_path=ctx.logs / f"{self.kind}-loadgen-publisher.log", node=ctx.node_bin, max_seconds=lifetime,
            heap_mb=1024)
        for t in [*self.workers, self.publisher]:
            t.expect("ready", 60)

    def connect(self) -> int:
        """Every client connects, is auto-joined to its user room and subscribes; memory and CPU per connection."""
        plan, m = self.ctx.plan, self.m
        time.sleep(1.0)
        rss0, redis0 = self.rss(), used_memory(self.redis_url)
        cpu0, t0, lg0, mono0 = self.cpu(), wall_ms(), self.loadgen_cpu(), time.monotonic()
        connected = ask_all(self.workers, "connect", "connected", timeout=plan.clients / 100 + 180)
        cpu1 = self.cpu()
        m["loadgen_cpu_pct_connect"] = (self.loadgen_cpu() - lg0) / max(0.001, time.monotonic() - mono0) * 100
        up = m["connected"] = tally.total(connected, "up")
        m["connect_failed"] = plan.clients - up
        m["connect_s"] = (max(float(c["t1"]) for c in connected) - t0) / 1000
        m["presence_joined"] = tally.total(connected, "presence_subscribed")  # member lists received while connecting
        m["cpu_ms_per_connect"] = (cpu1 - cpu0) * 1000 / max(1, up)
        m["connect_errors"] = tally.merged(connected, "connect_errors")
        m["connect_error_count"] = sum(m["connect_errors"].values())
        self.say(f"{up}/{plan.clients} up in {m['connect_s']:.1f}s; connect errors {m['connect_errors']}")
        # idle: memory per connection, and the idle CPU rate with every client connected
        c0, i0 = self.cpu(), time.monotonic()
        time.sleep(3.0)
        m["idle_cpu_pct"] = (self.cpu() - c0) / (time.monotonic() - i0) * 100
        rss1, redis1 = self.rss(), used_memory(self.redis_url)
        m["loadgen_rss_mib"] = sum(t.proc.rss_bytes() or 0 for t in self.workers) / 2**20
        m["rss_node_max_mib"] = max(rss1) / 2**20
        m["rss_nodes_mib"] = [round(r / 2**20, 1) for r in rss1]
        m["kib_per_conn"] = (sum(rss1) - sum(rss0)) / 1024 / max(1, up)
        if redis0 is not None and redis1 is not None:
            m["redis_b_per_conn"] = (redis1 - redis0) / max(1, up)
        return up

    def broadcast(self, up: int) -> None:
        """A warm-up broadcast, then ``plan.broadcasts`` measured ones, each one event to every room (100 channels per
        POST), waited for until the last client has it and then ``BCAST_TAIL_SECONDS`` more; then the burst:
        ``plan.burst`` events to every room, all POSTed at once, waited for the same way. The time rows come from
        the broadcasts, the fan-out CPU row from the burst: the nodes' CPU from its first POST until
        ``BCAST_TAIL_SECONDS`` after its last receipt, less the idle rate over the same time, divided by its
        deliveries. The idle rate is the mean of ``IDLE_SECONDS`` windows before the warm-up and right after the
        burst. The details list every broadcast (warm-up first) against the idle rate before, and their whole-phase
        figure (the row's method before the burst).

        Why so: one event per room makes a broadcast's CPU (100,000 deliveries, ~2 s of CPU) about as large as the
        idle CPU the same seconds hold (tens of % of a core for the pings of 100,000 clients, over 4-6 s of delivery
        and the tail), and the peer's idle rate drifted by a third of a core within a run (2026-12-07: 41.9 → 18.0 %),
        so its figure moved between 27.7 and 56.9 µs per delivery from run to run. A burst of several events per
        room is several times the signal over about the same idle time. Work a burst leaves for later (V8 collects
        garbage when its loop is idle) falls into its tail and counts with it.

        The warm-up is there for the peer: its first broadcasts run before V8 has optimised the path (45-50 µs per
        delivery at 20,000 clients in its first two rounds, 26 µs in the third), and a server runs warm in
        production."""
        assert self.publisher is not None
        plan, m = self.ctx.plan, self.m
        rounds: list[dict[str, float | None]] = []
        idle_before = self.idle_rate(IDLE_SECONDS)
        phase0 = (self.cpu(), time.monotonic())
        delivered = 0
        complete = False
        for r in range(plan.broadcasts + 1):  # round 0: the warm-up
            if r == 1:
                phase0 = (self.cpu(), time.monotonic())
            cpu0, sys0, mono0 = self.cpu(), self.system_cpu(), time.monotonic()
            sent = self.publisher.ask(f"broadcast {r}", "broadcast", timeout=120)
            statuses, complete = self.poll(_receipts_reach("bcast", up * (r + 1)),  # counted over every round so far
                                           timeout=60 + plan.clients / 2000, step=0.2)
            time.sleep(BCAST_TAIL_SECONDS)
            used, took = self.cpu() - cpu0, time.monotonic() - mono0
            kernel = (self.system_cpu() - sys0) / used * 100 if used > 0 else None  # idle included, as measured
            got = tally.total(statuses, "bcast") - up * r
            if r:
                delivered += got
            last_at = max(float(s["bcast_last_at"]) for s in statuses)
            rounds.append({"ms": _span_ms(sent, last_at, got),
                           "missing": up - got, "posts_failed": float(sent["failed"]),
                           "us_per_delivery": max(0.0, used - idle_before * took) * 1e6 / max(1, got),
                           "kernel_pct": kernel})
            self.say(f"broadcast {r} reached {got}/{up} in {rounds[-1]['ms']} ms{'' if complete else ' (timed out)'}")
            if not complete:
                break
        phase_used, phase_took = self.cpu() - phase0[0], time.monotonic() - phase0[1]
        burst = self.burst(up) if complete and plan.burst > 0 else None
        idle_after = self.idle_rate(IDLE_SECONDS)
        idle = (idle_before + idle_after) / 2
        m["bcast_rounds"] = [{k: round(v, 1) if v is not None else None for k, v in x.items()} for x in rounds]
        m["bcast_idle_pct"] = [round(idle_before * 100, 1), round(idle_after * 100, 1)]
        # the broadcasts' own figure (none without a measured broadcast: --broadcasts 0, or the warm-up never completed)
        m["us_per_delivery_rounds"] = max(0.0, phase_used - idle * phase_took) * 1e6 / delivered if delivered else None
        if burst is not None:
            report, used, took = burst
            got = report["delivered"]
            report["us_per_delivery"] = max(0.0, used - idle * took) * 1e6 / got if got else None
            m["burst"] = {k: round(v, 1) if isinstance(v, float) else v for k, v in report.items()}
            m["us_per_delivery"] = report["us_per_delivery"]
        else:
            m["us_per_delivery"] = m["us_per_delivery_rounds"]
        measured = rounds[1:] or rounds  # the warm-up alone only when every later round failed to start
        times = sorted(x["ms"] for x in measured if x["ms"] is not None)
        m["bcast_ms"] = times[len(times) // 2] if times else None
        m["bcast_missing"] = max(int(x["missing"] or 0) for x in rounds)
        m["bcast_posts_failed"] = sum(int(x["posts_failed"] or 0) for x in rounds)

    def burst(self, up: int) -> tuple[dict[str, Any], float, float]:
        """``plan.burst`` events to every room at once: what arrived, and the nodes' CPU seconds and the seconds from
        the first POST until ``BCAST_TAIL_SECONDS`` after the last receipt."""
        assert self.publisher is not None
        n = self.ctx.plan.burst
        cpu0, sys0, mono0 = self.cpu(), self.system_cpu(), time.monotonic()
        sent = self.publisher.ask(f"burst {n}", "burst", timeout=300)
        # until all arrived, or none for BCAST_TAIL_SECONDS: a server that lost some must not have minutes of idle
        # CPU counted as its fan-out (the peer's clients got 473,771 of 500,000 at 100,000, 2026-12-07 22:44)
        statuses, _ = self.poll(_receipts_settle("burst", up * n, BCAST_TAIL_SECONDS),
                                timeout=120 + self.ctx.plan.clients * n / 2000, step=0.2)
        got = tally.total(statuses, "burst")
        complete = got >= up * n
        if complete:
            time.sleep(BCAST_TAIL_SECONDS)  # else the receipts stopped that long ago: that was the tail
        used, took = self.cpu() - cpu0, time.monotonic() - mono0
        last_at = max(float(s["burst_last_at"]) for s in statuses)
        self.say(f"burst of {n} events per room reached {got}/{up * n}{'' if complete else ' (timed out)'}")
        report = {"events_per_room": n, "delivered": got, "missing": up * n - got, "posts_failed": int(sent["failed"]),
                  "ms": _span_ms(sent, last_at, got),
                  "kernel_pct": (self.system_cpu() - sys0) / used * 100 if used > 0 else None}
        return report, used, took

    def stream_and_kill(self) -> tuple[float, float, list[int]]:
        """Targeted events for ``seconds``, the SIGKILL, the reconnection storm, then ``after_seconds`` more.
        Returns (kill time, time the last client was back, accepted sequence numbers)."""
        assert self.publisher is not None
        plan, m = self.ctx.plan, self.m
        victim = self.nodes[plan.killed]
        self.publisher.ask("stream", "streaming")
        t0 = time.monotonic()
        time.sleep(min(2.0, plan.seconds / 2))  # the stream's rate settles before its CPU is sampled
        stream0 = self.storm_cpu(victim)
        while (left := plan.seconds - (time.monotonic() - t0)) > 0:
            self.status()  # notices a failed load generator while the stream flows
            time.sleep(min(1.0, max(0.0, left)))
        m["victim_id"] = victim.node_id()
        self.publisher.ask(f"dead {plan.killed}", "dead")
        time.sleep(0.3)  # requests already sent to the victim finish: their events are accepted or retried elsewhere
        base = tally.total(self.status(), "disconnects")
        cpu0 = self.storm_cpu(victim)
        # the same processes' CPU rate (cores) in the stream before the kill: what the storm's figures compare against
        m["stream_cores"] = {k: round((v - stream0[k]) / max(0.001, cpu0["wall"] - stream0["wall"]), 3)
                             for k, v in cpu0.items() if k != "wall"}
        # every node's CPU per targeted event (POST, publish script, bus, delivery), the idle rate subtracted
        m["server_us_per_event"] = max(0.0, m["stream_cores"]["nodes"] - m["idle_cpu_pct"] / 100) / plan.rate * 1e6
        t_kill = wall_ms()
        os.killpg(victim.proc.pid, signal.SIGKILL)
        moved = plan.clients_on(plan.killed)
        self.say(f"SIGKILLed node {plan.killed} ({moved} clients) after {plan.seconds:g}s of stream")
        statuses, all_back = self.poll(
            lambda s: tally.total(s, "disconnects") - base >= moved and tally.total(s, "down") == 0,
            timeout=180 + plan.clients / 1000,
        )
        t_back = max(float(s["last_back_at"]) for s in statuses)
        # Who had the cores from the kill until every moved client was back (or the deadline): CPU seconds each
        m["storm_cpu_s"] = {k: round(v - cpu0[k], 1) for k, v in self.storm_cpu(victim).items() if k != "nodes"}
        # a survivor that exited took its CPU seconds with it: its sum is then not known (and the exit is a finding)
        m["survivors_exited"] = sum(1 for n in self.nodes if n is not victim and not n.proc.alive())
        if m["survivors_exited"]:
            m["storm_cpu_s"]["survivors"] = None
        # CPU per moved client above the stream's rate: what a reconnect (with recovery) cost, the stream not counted
        used, wall = m["storm_cpu_s"], m["storm_cpu_s"]["wall"]
        m["storm_cpu_ms_per_mover"] = {k: round((used[k] - rate * wall) * 1000 / max(1, moved), 2)
                                       for k, rate in m["stream_cores"].items() if used.get(k) is not None}
        m["survivor_ms_per_reconnect"] = m["storm_cpu_ms_per_mover"].get("survivors")
        m.update(moved=tally.total(statuses, "disconnects") - base, all_back=all_back,
                 still_down=tally.total(statuses, "down"), back_s=(t_back - t_kill) / 1000 if t_back > t_kill else None,
                 leavers=tally.total(statuses, "leavers"), reconnect_attempts=tally.total(statuses, "reconnect_attempts"),
                 storm_connect_errors=tally.since(tally.merged(statuses, "connect_errors"), m["connect_errors"]),
                 disconnect_reasons=tally.merged(statuses, "disconnect_reasons"),
                 loadgen_loop_max_ms=[int(s.get("loop_max_ms") or 0) for s in statuses])
        m["storm_connect_error_count"] = sum(m["storm_connect_errors"].values())
        self.say(f"{m['moved']} disconnected, all back: {all_back} after {m['back_s']} s; "
                 f"{m['reconnect_attempts']} reconnect attempts; errors {m['storm_connect_errors']}")
        time.sleep(plan.after_seconds)
        stopped = self.publisher.ask("stop", "stopped", timeout=120)
        accepted = [int(x) for x in stopped["accepted"]]
        m.update(tally.answers(stopped.get("answered", []), t_kill, t_back))
        m.update(events_sent=int(stopped["sent"]), events_accepted=len(accepted),
                 publish_failed=int(stopped["failed"]), publish_statuses=stopped["statuses"])
        return t_kill, t_back, accepted

    def drain(self, expected: int) -> None:
        """Wait until the receipts stop growing (3 s without a new one) or all arrived, at most 60 s."""
        last, since, deadline = -1, time.monotonic(), time.monotonic() + 60
        while time.monotonic() < deadline:
            got = tally.total(self.status(), "targeted")
            if got != last:
                last, since = got, time.monotonic()
            if got >= expected or time.monotonic() - since > 3.0:
                return
            time.sleep(0.3)

    def check_presence(self, t_kill: float) -> None:
        """After the lease, presence = the users whose clients are up; and no live node was reaped."""
        plan = self.ctx.plan
        # cluster/nodes.py: a SIGKILLed node's members leave within lease + 2 beat intervals (lease/3 each); 3 s more
        # for the reap itself on loaded loops (4/3 of a lease, as before, probed a moment early: one ghost under load)
        settle_until = t_kill + DEFAULTS.cluster.node_lease_seconds * 1000 * 5 / 3 + 3000
        if wall_ms() < settle_until:
            time.sleep((settle_until - wall_ms()) / 1000)
        expected: dict[str, set[str]] = {}
        for p in ask_all(self.workers, "presence", "presence", timeout=60):
            for channel, users in p["members"].items():
                expected.setdefault(channel, set()).update(users)
        probe_url = next(n.url for n in self.nodes if n.proc.alive())
        answer = self.workers[0].ask(f"probe {probe_url}", "probe", timeout=30 + plan.presence_channels * 2)
        self.m.update(tally.presence(plan, expected, answer["members"]))
        self.m["presence_probe_refusals"] = answer["refusals"]
        self.m["presence_probe_refused"] = sum(int(v) for v in answer["refusals"].values())
        reaped = reaped_ids(self.nodes)
        self.m["dead_node_reaped"] = self.m["victim_id"] in reaped
        self.m["live_nodes_reaped"] = len([r for r in reaped if r != self.m["victim_id"]])
        self.say(f"presence ghosts {self.m['presence_ghosts']}, live members missing {self.m['presence_missing']}, "
                 f"unprobed {self.m['presence_unprobed']}; reaped {reaped}")

    def finish(self, t_kill: float, t_back: float, accepted: Sequence[int]) -> None:
        """The load generators' final reports: lost, duplicates, latencies, resets; node log warnings."""
        assert self.publisher is not None
        t_final = wall_ms()  # from here the workers close their clients: presence:leaving is expected
        finals = ask_all(self.workers, "final", "result", timeout=120)
        self.m.update(tally.deliveries(self.ctx.plan, accepted, finals))
        self.m.update(tally.latencies(finals, t_kill, t_back))
        self.m.update(tally.resets(finals, DEFAULTS.cluster.history_seconds))
        # Both servers do presence; the peer announces a leaving only for a socket that left, so 0 is its expected figure
        self.m["false_leavings"] = tally.false_leavings(finals, t_final)
        warnings: dict[str, int] = {}
        for node in self.nodes:
            for name, count in node.problem_counts().items():
                warnings[name] = warnings.get(name, 0) + count
        self.m["node_warnings"] = warnings
        if self.ours:  # the peer logs no stalls and has no /metrics: nothing to count, not zero
            self.m["loop_stalls"] = warnings.get("event_loop_stalled", 0)
            series = scrape(self.nodes)
            self.m["survivor_metrics"] = {k: round(v, 3) for k, v in series.items() if v}

            def pick(prefix: str) -> float:
                return sum(v for k, v in series.items() if k.startswith(prefix))

            self.m["pool_waits"] = int(pick("realtime_sio_redis_pool_wait_seconds_count"))
            self.m["pool_wait_s"] = pick("realtime_sio_redis_pool_wait_seconds_sum")
            self.m["pool_exhausted"] = int(pick("realtime_sio_redis_pool_exhausted_total"))
            self.m["admission_refused"] = int(pick("realtime_sio_admission_refused_total"))
        self.publisher.ask("quit", "result", timeout=30)
        m = self.m
        self.say(f"lost {m['lost']} of {m['events_expected']} (to moved clients {m['lost_moved']}; after a reset "
                 f"{m['lost_after_reset']}, without one {m['lost_unannounced']}), "
                 f"duplicates {m['duplicates']}, resets {m['resets']} {m['reset_codes']}")

    def stop(self) -> None:
        talkers = [*self.workers, *([self.publisher] if self.publisher else [])]
        for t in talkers:
            t.stop()
        for proc in reversed(self.started):
            proc.stop(grace=5.0)
        self.say(f"stopped {len(self.started)} server/redis processes and {len(talkers)} load generators")


def run_storm(ctx: StormContext, kind: str, partial: dict[str, Any] | None = None) -> dict[str, Any]:
    """The whole scenario against ``kind``; raises on a failed phase (after stopping everything it started).
    ``partial[kind]`` is the figures as they are measured, so the phases before a failure are not lost."""
    storm = Storm(ctx, kind)
    if partial is not None:
        partial[kind] = storm.m
    try:
        storm.start()
        up = storm.connect()
        storm.broadcast(up)
        t_kill, t_back, accepted = storm.stream_and_kill()
        storm.drain(len(accepted))
        if storm.ours:
            storm.check_presence(t_kill)
        storm.finish(t_kill, t_back, accepted)
        return storm.m
    finally:
        storm.stop()
