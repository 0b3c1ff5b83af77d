"""Watches the Python runtime for stalls: event-loop lag and garbage-collection pauses, as metrics and log lines.

A realtime server's tail latency is made of moments when the event loop runs nothing else; these two collectors
show when that happens and whether the cyclic GC is the cause (docs/performance.md, docs/operations.md).
"""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Callable
from typing import Any

from realtime_sio import logs
from realtime_sio.metrics import Metrics

log = logs.get(__name__)

PROBE_INTERVAL = 0.05  # seconds between loop-lag probes
STALL_LOG_THRESHOLD = 0.25  # a lag or GC pause longer than this is also logged


def install_gc_timing(metrics: Metrics) -> None:
    """Time every collection through ``gc.callbacks`` (once per process)."""
    started: list[float] = [0.0]
    children = {g: metrics.gc_pause.labels(generation=str(g)) for g in (0, 1, 2)}

    def callback(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            started[0] = time.perf_counter()
            return
        took = time.perf_counter() - started[0]
        generation = int(info.get("generation", 2))
        children.get(generation, children[2]).observe(took)
        if took > STALL_LOG_THRESHOLD:
            log.warning("gc_pause", generation=generation, ms=round(took * 1000), collected=info.get("collected"))

    gc.callbacks.append(callback)


async def watch_loop_lag(metrics: Metrics, on_lag: Callable[[float], None] | None = None) -> None:
    """Probe how late a short sleep wakes up, for the life of the server; ``on_lag`` gets every measurement."""
    loop = asyncio.get_running_loop()
    while True:
        before = loop.time()
        await asyncio.sleep(PROBE_INTERVAL)
        lag = max(0.0, loop.time() - before - PROBE_INTERVAL)
        metrics.event_loop_lag.observe(lag)
        if on_lag is not None:
            on_lag(lag)
        if lag > STALL_LOG_THRESHOLD:
            log.warning("event_loop_stalled", ms=round(lag * 1000))
