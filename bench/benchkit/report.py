"""The comparison table: medians over runs per server, the realtime_sio / peer ratio, Markdown for the terminal and
for the ``<!-- bench:begin -->`` … ``<!-- bench:end -->`` section of ``docs/performance.md``.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from .profiles import Profile
from .servers import NODE_PEER, REALTIME_SIO

Better = Literal["lower", "higher", "info"]
BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"

# runs[server] = [ {metric: value}, ... one dict per run ]
Runs = Mapping[str, Sequence[Mapping[str, Any]]]


@dataclass(frozen=True)
class Row:
    """One table row: the metric key, its label, how to scale it, and which direction is better."""

    key: str
    label: str
    better: Better
    scale: float = 1.0
    count: bool = False  # an error count: the worst run is shown, not the median


def _k(n: int) -> str:
    return f"{n // 1000}k" if n >= 1000 and n % 1000 == 0 else str(n)


def rows_for(profile: Profile, top: int | None = None) -> list[Row]:
    """The table's rows, labelled with the profile's sizes (``top`` = the largest idle step actually measured)."""
    p = profile
    top = top or max(p.idle_steps)
    offered_lat = p.latency_clients // p.latency_rooms * p.latency_rate
    offered_redis = p.redis_clients // p.redis_rooms * p.redis_rate
    rows = [Row("rss_base_mib", "RSS after start and a warm-up round, no clients (MiB)", "lower")]
    rows += [Row(f"rss_{n}_mib", f"RSS at {_k(n)} idle connections (MiB)", "lower") for n in p.idle_steps]
    rows += [
        Row("bytes_per_conn", "Memory per idle connection (KiB, largest step measured)", "lower", scale=1 / 1024),
        Row("connect_rate", f"Connect rate to {_k(top)} (handshakes/s)", "higher"),
        Row("cpu_ms_per_handshake", "Server CPU per handshake incl. JWT check (ms)", "lower"),
        Row("connect_failed", "Failed or dropped connections", "lower", count=True),
        Row("loadgen_cpu_pct_connect", "  load generator CPU while connecting (% of a core)", "info"),
        Row("lat_p50", f"HTTP emit → client latency p50 (ms; {_k(p.latency_clients)} clients, {_k(p.latency_rooms)} rooms, "
            f"{p.latency_rate}/s for {p.latency_seconds} s)", "lower"),
        Row("lat_p99", "HTTP emit → client latency p99 (ms)", "lower"),
        Row("lat_max", "HTTP emit → client latency max (ms)", "lower"),
        Row("lat_delivery_rate", f"  deliveries/s achieved (offered {offered_lat:,}/s)", "higher"),
        Row("lat_server_cpu_pct", "  server CPU during the emit stream (% of a core)", "lower"),
        Row("lat_problems", "  delivery problems (missing, duplicate, misrouted, refused)", "lower", count=True),
        Row("fan_rate", f"Fan-out to one {_k(p.fanout_clients)}-member room (deliveries/s)", "higher"),
        Row("fan_complete_p50", "  one broadcast reaches every member, p50 (ms)", "lower"),
        Row("fan_us_per_delivery", "  server CPU per delivery (µs)", "lower"),
        Row("fan_loadgen_cpu_pct", "  load generator CPU during fan-out (% of a core)", "info"),
        Row("fan_problems", "  delivery problems", "lower", count=True),
        Row("redis_p50", f"Redis PUBLISH → client latency p50 (ms; {_k(p.redis_clients)} clients, "
            f"{p.redis_rate}/s for {p.redis_seconds} s)", "lower"),
        Row("redis_p99", "Redis PUBLISH → client latency p99 (ms)", "lower"),
        Row("redis_delivery_rate", f"  deliveries/s achieved (offered {offered_redis:,}/s)", "higher"),
        Row("redis_server_cpu_pct", "  server CPU during the publish stream (% of a core)", "lower"),
        Row("redis_problems", "  delivery problems", "lower", count=True),
        Row("poll_cpu_ms_per_handshake", f"Long-polling: server CPU per handshake (ms; {_k(p.polling_clients)} clients, "
            "transports=['polling'])", "lower"),
        Row("poll_bytes_per_conn", "  memory per idle polling client (KiB)", "lower", scale=1 / 1024),
        Row("poll_us_per_delivery", f"  server CPU per fan-out delivery (µs; one {_k(p.polling_clients)}-member room)", "lower"),
        Row("poll_fan_rate", "  fan-out deliveries/s", "higher"),
        Row("poll_problems", "  connect failures and delivery problems", "lower", count=True),
    ]
    return rows


def aggregate(runs: Sequence[Mapping[str, Any]], row: Row) -> float | None:
    """Median over runs (worst run for counts); None when no run measured it."""
    values = [float(r[row.key]) for r in runs if isinstance(r.get(row.key), (int, float))]
    if not values:
        return None
    return (max(values) if row.count else statistics.median(values)) * row.scale


def fmt(value: float | None, count: bool = False) -> str:
    if value is None:
        return "n/a"
    if count:
        return f"{value:,.0f}"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def ratio_cell(ours: float | None, peer: float | None, row: Row) -> str:
    """``realtime_sio / peer`` with a verdict for realtime_sio (worse / better / ≈ within 10 %)."""
    if ours is None or peer is None:
        return "—"
    if row.count:
        if ours == peer:
            return "≈"
        return "worse" if ours > peer else "better"
    if peer == 0:
        return "—"
    ratio = ours / peer
    if row.better == "info":
        return f"{ratio:.2f}×"
    worse = ratio > 1.1 if row.better == "lower" else ratio < 1 / 1.1
    better = ratio < 1 / 1.1 if row.better == "lower" else ratio > 1.1
    verdict = "worse" if worse else "better" if better else "≈"
    return f"{ratio:.2f}× ({verdict})"


def table(runs: Runs, profile: Profile) -> str:
    """The Markdown comparison table."""
    measured = [n for n in profile.idle_steps if any(f"rss_{n}_mib" in r for rs in runs.values() for r in rs)]
    lines = ["| Metric | realtime_sio | node peer | ratio |", "|---|---:|---:|---|"]
    for row in rows_for(profile, max(measured) if measured else None):
        ours = aggregate(runs.get(REALTIME_SIO, []), row)
        peer = aggregate(runs.get(NODE_PEER, []), row)
        lines.append(f"| {row.label} | {fmt(ours, row.count)} | {fmt(peer, row.count)} | {ratio_cell(ours, peer, row)} |")
    return "\n".join(lines)


def section(runs: Runs, profile: Profile, machine: Mapping[str, Any], notes: Sequence[str], errors: Sequence[str]) -> str:
    """The whole generated docs section: heading, machine, versions, table, notes."""
    m = machine
    out = [
        BEGIN,
        f"## Results: `{profile.name}` profile, median of {profile.runs} run{'s' if profile.runs != 1 else ''}",
        "",
        (f"Measured {m.get('date')} on {m.get('cpu_model')} ({m.get('cores')} cores, {m.get('memory_gib')} GiB), "
        f"Linux {m.get('kernel')}; RLIMIT_NOFILE {m.get('nofile')}; commit `{m.get('git')}`. "
        "Server pinned to core 0, load generator (and redis-server) to core 1."),
        "",
        (f"Versions: Python {m.get('python')}, python-socketio {m.get('python-socketio')}, "
        f"python-engineio {m.get('python-engineio')}, aiohttp {m.get('aiohttp')}, uvloop {m.get('uvloop')}; "
        f"Node {m.get('node')}, socket.io {m.get('socket.io')}, socket.io-client {m.get('socket.io-client')}; "
        f"redis-server {m.get('redis-server')}."),
        "",
        "Ratio = realtime_sio ÷ node peer; the verdict is for realtime_sio (≈ means within 10 %).",
        "",
        table(runs, profile),
        "",
    ]
    if notes or errors:
        out.append("Notes:")
        out += [f"- {n}" for n in notes]
        out += [f"- **error**: {e}" for e in errors]
        out.append("")
    out.append(END)
    return "\n".join(out)


def update_docs(path: Path, generated: str, begin: str = BEGIN, end_marker: str = END) -> None:
    """Replace the generated section between ``begin`` and ``end_marker`` of ``path`` (append it when missing)."""
    text = path.read_text() if path.exists() else "# Performance\n\n"
    start, end = text.find(begin), text.find(end_marker)
    if start != -1 and end != -1 and end > start:
        text = text[:start] + generated + text[end + len(end_marker):]
    else:
        text = text.rstrip("\n") + "\n\n" + generated + "\n"
    path.write_text(text)
