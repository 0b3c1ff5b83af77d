"""The measurements, each against a freshly started server: idle memory + connect rate, HTTP-emit latency,
room fan-out, the Laravel Redis path and long-polling (connect and fan-out). Each returns a flat ``{metric: value}`` dict for one server and one run.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .loadgen import Event, run_loadgen
from .procs import ManagedProcess
from .profiles import Profile
from .servers import (
    BENCH_API_KEY,
    BENCH_JWT_SECRET,
    RunningServer,
    ServerSpec,
    start_server,
)

MIB = 1024 * 1024
FD_HEADROOM = 256  # descriptors a process needs besides its sockets (listeners, logs, Redis, node internals)

Metrics = dict[str, Any]


class ScenarioError(RuntimeError):
    """The scenario ran but its set-up failed in a way that makes its figures meaningless."""


@dataclass(frozen=True)
class Context:
    """Everything a scenario needs besides the server spec."""

    profile: Profile
    logs: Path
    run: int
    server_core: int | None
    loadgen_core: int | None
    nofile_hard: int
    per_address_limit: int
    base_env: Mapping[str, str]
    redis_url: str | None = None
    node: str = "node"
    notes: list[str] = field(default_factory=list)  # skipped rows and other remarks, shown under the table

    def log_path(self, spec: ServerSpec, scenario: str, what: str) -> Path:
        return self.logs / f"run{self.run}-{spec.name}-{scenario}-{what}.log"

    def note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)


def _start(ctx: Context, spec: ServerSpec, scenario: str, redis_url: str | None = None) -> RunningServer:
    return start_server(
        spec,
        log_path=ctx.log_path(spec, scenario, "server"),
        core=ctx.server_core,
        redis_url=redis_url,
        base_env=ctx.base_env,
    )


def _options(ctx: Context, server: RunningServer) -> dict[str, object]:
    return {
        "url": server.url,
        "api_key": BENCH_API_KEY,
        "jwt_secret": BENCH_JWT_SECRET,  # every client connects with its own JWT, as in production
        "per_address_limit": ctx.per_address_limit,
        "concurrency": ctx.profile.connect_concurrency,
        "source_addrs": ctx.profile.source_addrs,
    }


def _pct(cpu: float, wall: float) -> float | None:
    return round(100.0 * cpu / wall, 1) if wall > 0 else None


def _delivery_problems(result: Mapping[str, Any]) -> int:
    """Every way a delivery scenario can go wrong, summed: missing, duplicated, misrouted, unverified, no pong,
    refused emit, failed connect."""
    keys = ("missing", "duplicates", "wrong_channel", "unexpected", "unverified", "ping_failures", "emit_errors")
    return sum(int(result.get(k, 0)) for k in keys) + int(result.get("connect", {}).get("failed", 0))


class _Window:
    """Server (and load generator) CPU between the load generator's measure_start and measure_end events."""

    def __init__(self, server: RunningServer) -> None:
        self.server = server
        self.start: tuple[float, float, float] | None = None
        self.end: tuple[float, float, float] | None = None

    def on_event(self, event: Event, proc: ManagedProcess) -> str | None:
        sample = (time.monotonic(), self.server.proc.cpu_seconds() or 0.0, proc.cpu_seconds() or 0.0)
        if event.get("event") == "measure_start":
            self.start = sample
        elif event.get("event") == "measure_end":
            self.end = sample
        return None

    def server_cpu(self) -> float | None:
        return None if self.start is None or self.end is None else self.end[1] - self.start[1]

    def wall(self) -> float | None:
        return None if self.start is None or self.end is None else self.end[0] - self.start[0]

    def server_pct(self) -> float | None:
        cpu, wall = self.server_cpu(), self.wall()
        return None if cpu is None or wall is None else _pct(cpu, wall)

    def loadgen_pct(self) -> float | None:
        if self.start is None or self.end is None:
            return None
        return _pct(self.end[2] - self.start[2], self.end[0] - self.start[0])


def measure_idle(
    ctx: Context, spec: ServerSpec, *, transport: str = "websocket", idle_steps: tuple[int, ...] | None = None, scenario: str = "idle"
) -> Metrics:
    """RSS at each idle step, bytes per connection, handshake rate, server CPU per handshake, failures."""
    limit = ctx.nofile_hard - FD_HEADROOM
    wanted = ctx.profile.idle_steps if idle_steps is None else idle_steps
    steps = [n for n in wanted if n <= limit]
    for n in wanted:
        if n > limit:
            ctx.note(
                f"{n:,} idle connections: skipped — RLIMIT_NOFILE hard limit is {ctx.nofile_hard:,} on this machine "
                f"(the server needs one descriptor per connection and cannot raise it without CAP_SYS_RESOURCE)."
            )
    out: Metrics = {}
    if not steps:
        return out
    server = _start(ctx, spec, scenario)
    try:
        base = 0
        mark = {"server_cpu": 0.0, "loadgen_cpu": 0.0, "t": 0.0}
        connect_cpu = 0.0
        loadgen_busy: list[float] = []

        def on_event(event: Event, proc: ManagedProcess) -> str | None:
            nonlocal base, connect_cpu
            if event.get("event") == "warm":
                # baseline after a warm-up round (clients connected and gone), so neither server is measured cold
                time.sleep(ctx.profile.settle_seconds)
                base = server.proc.rss_bytes() or 0
                out["rss_base_mib"] = base / MIB
                mark.update(server_cpu=server.proc.cpu_seconds() or 0.0, loadgen_cpu=proc.cpu_seconds() or 0.0, t=time.monotonic())
                return "next"
            if event.get("event") != "step":
                return None
            now_cpu = server.proc.cpu_seconds() or 0.0
            lg_cpu = proc.cpu_seconds() or 0.0
            connect_cpu += now_cpu - mark["server_cpu"]
            if event.get("elapsed_s"):
                loadgen_busy.append(100.0 * (lg_cpu - mark["loadgen_cpu"]) / max(time.monotonic() - mark["t"], 1e-6))
            time.sleep(ctx.profile.settle_seconds)
            rss = server.proc.rss_bytes() or 0
            n = int(event["n"])
            out[f"rss_{n}_mib"] = rss / MIB
            connected = int(event.get("connected_total", n))
            if connected:
                out["bytes_per_conn"] = (rss - base) / connected
                out["bytes_per_conn_n"] = n
            mark.update(server_cpu=server.proc.cpu_seconds() or 0.0, loadgen_cpu=proc.cpu_seconds() or 0.0, t=time.monotonic())
            return "next"

        options = {
            **_options(ctx, server), "steps": steps, "step_wait_ms": 120_000, "warmup": ctx.profile.warmup_clients,
            "transport": transport,
        }
        timeout = 120 + sum(steps) / 100  # generous: 100 handshakes/s would be very slow
        result, _ = run_loadgen(
            "idle", options, log_path=ctx.log_path(spec, scenario, "loadgen"), core=ctx.loadgen_core,
            timeout=timeout, on_event=on_event, node=ctx.node, env=ctx.base_env,
        )
        out["connect_rate"] = result.get("connect_rate_per_s")
        out["connect_failed"] = int(result.get("failed", 0)) + int(result.get("dropped", 0))
        connected = int(result.get("connected", 0))
        out["cpu_ms_per_handshake"] = 1000.0 * connect_cpu / connected if connected else None
        out["loadgen_cpu_pct_connect"] = round(loadgen_busy[-1], 1) if loadgen_busy else None  # largest step
        out["connect_errors"] = result.get("errors", {})
        out["source_addresses"] = result.get("source_addresses")
    finally:
        server.stop()
    return out


def _delivery(
    ctx: Context,
    spec: ServerSpec,
    scenario: str,
    options: Mapping[str, object],
    timeout: float,
    redis_url: str | None = None,
) -> tuple[Mapping[str, Any], _Window]:
    server = _start(ctx, spec, scenario, redis_url=redis_url)
    try:
        window = _Window(server)
        name = "fanout" if scenario in ("fanout", "polling") else "latency"
        result, _ = run_loadgen(
            name, {**_options(ctx, server), **options}, log_path=ctx.log_path(spec, scenario, "loadgen"),
            core=ctx.loadgen_core, timeout=timeout, on_event=window.on_event, node=ctx.node, env=ctx.base_env,
        )
    finally:
        server.stop()
    if not result.get("members"):
        samples = "; ".join(result.get("emit_error_samples", [])[:2])
        raise ScenarioError(
            f"no client received the warm-up event, so nothing was measured "
            f"({result.get('unverified')} unverified; publisher said: {samples or 'nothing'})"
        )
    return result, window


def measure_latency(ctx: Context, spec: ServerSpec) -> Metrics:
    """Publish → receipt latency under a paced stream of HTTP emits to rooms."""
    p = ctx.profile
    options = {
        "via": "http", "clients": p.latency_clients, "rooms": p.latency_rooms, "rate": p.latency_rate,
        "duration": p.latency_seconds, "payload_bytes": p.payload_bytes,
    }
    result, window = _delivery(ctx, spec, "latency", options, timeout=120 + p.latency_seconds + p.latency_clients / 100)
    lat = result.get("latency", {})
    return {
        "lat_p50": lat.get("p50_ms"), "lat_p99": lat.get("p99_ms"), "lat_max": lat.get("max_ms"),
        "lat_problems": _delivery_problems(result),
        "lat_expected": result.get("expected"), "lat_received": result.get("received"),
        "lat_rate": result.get("achieved_rate"), "lat_server_cpu_pct": window.server_pct(),
        "lat_delivery_rate": result.get("deliveries_per_s"), "lat_offered_rate": result.get("offered_deliveries_per_s"),
        "lat_loadgen_cpu_pct": window.loadgen_pct(),
    }


def measure_fanout(ctx: Context, spec: ServerSpec) -> Metrics:
    """Deliveries per second for back-to-back broadcasts to one room holding every client."""
    p = ctx.profile
    options = {"via": "http", "clients": p.fanout_clients, "broadcasts": p.fanout_broadcasts, "payload_bytes": p.payload_bytes}
    result, window = _delivery(ctx, spec, "fanout", options, timeout=180 + p.fanout_clients / 100)
    cpu = window.server_cpu()
    received = int(result.get("received", 0))
    return {
        "fan_rate": result.get("deliveries_per_s"),
        "fan_complete_p50": result.get("broadcast_complete", {}).get("p50_ms"),
        "fan_us_per_delivery": 1e6 * cpu / received if cpu is not None and received else None,
        "fan_problems": _delivery_problems(result),
        "fan_expected": result.get("expected"), "fan_received": result.get("received"),
        "fan_server_cpu_pct": window.server_pct(),
        "fan_loadgen_cpu_pct": window.loadgen_pct(),
    }


def measure_redis(ctx: Context, spec: ServerSpec) -> Metrics:
    """Laravel path: Redis PUBLISH laravel_database_<channel> → client receipt latency."""
    p = ctx.profile
    if ctx.redis_url is None:
        raise RuntimeError("the redis scenario needs a redis-server")
    options = {
        "via": "redis", "redis_url": ctx.redis_url, "clients": p.redis_clients, "rooms": p.redis_rooms,
        "rate": p.redis_rate, "duration": p.redis_seconds, "payload_bytes": p.payload_bytes,
    }
    result, window = _delivery(
        ctx, spec, "redis", options, timeout=120 + p.redis_seconds + p.redis_clients / 100, redis_url=ctx.redis_url
    )
    lat = result.get("latency", {})
    return {
        "redis_p50": lat.get("p50_ms"), "redis_p99": lat.get("p99_ms"), "redis_max": lat.get("max_ms"),
        "redis_problems": _delivery_problems(result),
        "redis_expected": result.get("expected"), "redis_received": result.get("received"),
        "redis_server_cpu_pct": window.server_pct(),
        "redis_delivery_rate": result.get("deliveries_per_s"),
        "redis_offered_rate": result.get("offered_deliveries_per_s"),
    }


def measure_polling(ctx: Context, spec: ServerSpec) -> Metrics:
    """Long-polling only (the plan's fallback): server CPU per handshake and memory per idle polling client, then
    server CPU per delivery for back-to-back broadcasts to one room holding every polling client."""
    p = ctx.profile
    idle = measure_idle(ctx, spec, transport="polling", idle_steps=(p.polling_clients,), scenario="polling_idle")
    out: Metrics = {
        "poll_cpu_ms_per_handshake": idle.get("cpu_ms_per_handshake"),
        "poll_bytes_per_conn": idle.get("bytes_per_conn"),
        "poll_connect_failed": idle.get("connect_failed"),
    }
    options = {"via": "http", "clients": p.polling_clients, "broadcasts": p.polling_broadcasts,
               "payload_bytes": p.payload_bytes, "transport": "polling"}
    result, window = _delivery(ctx, spec, "polling", options, timeout=180 + p.polling_clients / 50)
    cpu = window.server_cpu()
    received = int(result.get("received", 0))
    out.update({
        "poll_fan_rate": result.get("deliveries_per_s"),
        "poll_us_per_delivery": 1e6 * cpu / received if cpu is not None and received else None,
        "poll_fan_complete_p50": result.get("broadcast_complete", {}).get("p50_ms"),
        "poll_problems": _delivery_problems(result) + int(idle.get("connect_failed") or 0),
    })
    return out


SCENARIOS: dict[str, Callable[[Context, ServerSpec], Metrics]] = {
    "idle": measure_idle,
    "latency": measure_latency,
    "fanout": measure_fanout,
    "redis": measure_redis,
    "polling": measure_polling,
}
