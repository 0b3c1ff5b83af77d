"""The benchmark profiles: ``quick`` (a check, under two minutes) and ``full`` (the published figures)."""

from __future__ import annotations

from dataclasses import dataclass, replace


@dataclass(frozen=True)
class Profile:
    """Sizes and durations of every scenario; each figure is the median over ``runs`` runs."""

    name: str
    runs: int
    idle_steps: tuple[int, ...]  # cumulative idle connection counts whose RSS is read
    settle_seconds: float  # wait after a step before reading RSS
    latency_clients: int
    latency_rooms: int
    latency_rate: int  # emits per second
    latency_seconds: int
    fanout_clients: int
    fanout_broadcasts: int
    redis_clients: int
    redis_rooms: int
    redis_rate: int
    redis_seconds: int
    polling_clients: int = 500  # long-polling clients (connect cost, then fan-out to all of them)
    polling_broadcasts: int = 20
    connect_concurrency: int = 200  # handshakes in flight
    payload_bytes: int = 100
    warmup_clients: int = 200  # connected and closed before the idle baseline is read
    source_addrs: int = 0  # force this many loopback source addresses (0 = only when one runs out of ports)


QUICK = Profile(
    name="quick",
    runs=1,
    idle_steps=(1000, 2000),
    settle_seconds=1.5,
    latency_clients=1000,
    latency_rooms=100,
    latency_rate=200,
    latency_seconds=5,
    fanout_clients=1000,
    fanout_broadcasts=20,
    redis_clients=1000,
    redis_rooms=100,
    redis_rate=200,
    redis_seconds=5,
)

FULL = Profile(
    name="full",
    runs=3,
    idle_steps=(1000, 10_000, 100_000),
    settle_seconds=3.0,
    latency_clients=10_000,
    latency_rooms=1000,
    latency_rate=1000,
    latency_seconds=30,
    fanout_clients=10_000,
    fanout_broadcasts=20,
    redis_clients=10_000,
    redis_rooms=1000,
    redis_rate=1000,
    redis_seconds=20,
    polling_clients=2000,
)

# The smallest useful sizes: what tests/bench/test_bench_smoke.py runs.
TINY = Profile(
    name="tiny",
    runs=1,
    idle_steps=(10, 20),
    settle_seconds=0.2,
    latency_clients=20,
    latency_rooms=5,
    latency_rate=20,
    latency_seconds=1,
    fanout_clients=20,
    fanout_broadcasts=5,
    redis_clients=20,
    redis_rooms=5,
    redis_rate=20,
    redis_seconds=1,
    connect_concurrency=20,
    polling_clients=20,
    polling_broadcasts=5,
    warmup_clients=10,
    source_addrs=2,  # exercise the 127.0.0.2/127.0.0.3 spreading
)

PROFILES = {p.name: p for p in (QUICK, FULL, TINY)}


def with_runs(profile: Profile, runs: int | None) -> Profile:
    """The profile with ``runs`` overridden (None keeps it)."""
    return profile if runs is None else replace(profile, runs=runs)
