"""Many per-connection deadlines on one loop timer: each Engine.IO socket's next PING or its PONG deadline.

A loop timer per socket costs about 550 bytes while it waits (uvloop's ``TimerHandle`` and ``UVTimer``, a copied
context, the bound callback) and a timer creation and cancellation per ping cycle. A :class:`DeadlineWheel` keeps a
socket in one list of the tick its deadline falls in, and one loop timer wakes it for the earliest tick. A deadline is
never removed: whoever is due answers for the tick it was given last and ignores older ones (:class:`Due`), so moving
a deadline or closing a socket costs nothing.

Deadlines fire at the start of the first tick at or after them: up to one tick late (and never more than the
loop's 1 ms timer rounding early).
"""

from __future__ import annotations

import asyncio
import math
from typing import Protocol

from realtime_sio import logs

log = logs.get(__name__)

TICK_SECONDS = 0.25  # granularity: a PING or a PONG deadline is at most this late


class Due(Protocol):
    """Something with a deadline: told each tick it was scheduled for, it acts only on its latest one."""

    def deadline_due(self, tick: int) -> None: ...


class DeadlineWheel:
    """Deadlines bucketed by tick; one loop timer for the earliest bucket."""

    def __init__(self, tick_seconds: float = TICK_SECONDS) -> None:
        self._tick = tick_seconds
        self._buckets: dict[int, list[Due]] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._armed_for: int | None = None  # the tick the timer is set for

    def schedule(self, item: Due, delay: float) -> int:
        """Tell ``item`` after ``delay`` seconds (rounded up to a tick); returns the tick it will be told."""
        loop = asyncio.get_running_loop()
        tick = math.ceil((loop.time() + delay) / self._tick)
        bucket = self._buckets.get(tick)
        if bucket is None:
            self._buckets[tick] = [item]
            if self._armed_for is None or tick < self._armed_for:
                self._arm(loop, tick)
        else:
            bucket.append(item)
        return tick

    def pending(self) -> int:
        """Entries waiting, stale ones included (for tests and the curious)."""
        return sum(len(bucket) for bucket in self._buckets.values())

    def close(self) -> None:
        """Forget every deadline and stop the timer (the server is shutting down)."""
        if self._timer is not None:
            self._timer.cancel()
        self._timer, self._armed_for = None, None
        self._buckets.clear()

    def _arm(self, loop: asyncio.AbstractEventLoop, tick: int) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._armed_for = tick
        self._timer = loop.call_at(tick * self._tick, self._fire)

    def _fire(self) -> None:
        loop = asyncio.get_running_loop()
        self._timer, self._armed_for = None, None
        now = math.floor((loop.time() + 0.001) / self._tick)  # the loop's timers round to the millisecond
        for tick in sorted(t for t in self._buckets if t <= now):
            for item in self._buckets.pop(tick):
                try:
                    item.deadline_due(tick)
                except Exception as exc:  # noqa: BLE001 - one socket's failure must not cost the others their pings
                    log.warning("deadline_failed", error=type(exc).__name__)
        if self._buckets:
            first = min(self._buckets)
            if self._armed_for != first:
                self._arm(loop, first)
