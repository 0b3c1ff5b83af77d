"""Many per-connection deadlines on one loop timer: each Engine.IO socket's next PING or its PONG deadline.

A loop timer per socket costs about 550 bytes while it waits (uvloop's ``TimerHandle`` and ``UVTimer``, a copied
context, the bound callback) and a timer creation and cancellation per ping cycle. A :class:`DeadlineWheel` keeps a
socket in the set of the tick its deadline falls in, and one loop timer wakes it for the earliest tick. Moving a
deadline or cancelling it (a socket that closes) takes the socket out of its old set, so the wheel never holds a
closed socket. Whoever is due still checks that the tick is its latest one (:class:`Due`).

Deadlines fire at the start of the first tick at or after them: up to one tick late (and never more than the
loop's 1 ms timer rounding early).

A node whose loop stood still (a long callback, a GC pause, a starved or stopped process) must not judge its clients by
that time: their PONGs arrived meanwhile and wait, unread, in the sockets. uvloop runs due timers *before* it reads
sockets, so the tick that fires after such a stall would close every socket whose PONG deadline fell in it. When the
wheel's timer fires more than a tick late, the items due are *held*: they are told at a tick at least one tick away,
after the loop has read and handled what arrived (once; a held item is never held again).
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
        self._buckets: dict[int, set[Due]] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._armed_for: int | None = None  # the tick the timer is set for
        self._expected = 0.0  # the loop time the timer is due to run at
        # held[item] = (the tick it was due in, the tick it is told at): items of a tick that fired late
        self._held: dict[Due, tuple[int, int]] = {}
        self.late_firings = 0  # firings more than a tick late (stalls the wheel held its items through)

    def schedule(self, item: Due, delay: float, previous: int = 0) -> int:
        """Tell ``item`` after ``delay`` seconds (rounded up to a tick), instead of at tick ``previous`` (0: none);
        returns the tick it will be told."""
        if previous:
            self.cancel(item, previous)
        loop = asyncio.get_running_loop()
        tick = math.ceil((loop.time() + delay) / self._tick)
        bucket = self._buckets.get(tick)
        if bucket is None:
            self._buckets[tick] = {item}
            if self._armed_for is None or tick < self._armed_for:
                self._arm(loop, tick)
        else:
            bucket.add(item)
        return tick

    def cancel(self, item: Due, tick: int) -> None:
        """Forget ``item``'s deadline at ``tick`` (nothing happens when it is not there)."""
        bucket = self._buckets.get(tick)
        if bucket is not None:
            bucket.discard(item)
            if not bucket:
                del self._buckets[tick]  # the timer may still fire for it: it finds nothing due and moves on
        held = self._held.get(item)
        if held is not None and held[0] == tick:
            del self._held[item]

    def pending(self) -> int:
        """Deadlines waiting (for tests and the curious)."""
        return sum(len(bucket) for bucket in self._buckets.values()) + len(self._held)

    def close(self) -> None:
        """Forget every deadline and stop the timer (the server is shutting down)."""
        if self._timer is not None:
            self._timer.cancel()
        self._timer, self._armed_for = None, None
        self._buckets.clear()
        self._held.clear()

    def _arm(self, loop: asyncio.AbstractEventLoop, tick: int) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._armed_for = tick
        self._expected = max(tick * self._tick, loop.time())  # when the timer should run (a past tick: at once)
        self._timer = loop.call_at(tick * self._tick, self._fire)

    def _fire(self) -> None:
        loop = asyncio.get_running_loop()
        late = loop.time() - self._expected
        self._timer, self._armed_for = None, None
        now = math.floor((loop.time() + 0.001) / self._tick)  # the loop's timers round to the millisecond
        if self._held:  # held through a stall: told once a whole tick has passed (the loop has read since)
            ready = [(item, tick) for item, (tick, release) in self._held.items() if release <= now]
            for item, tick in ready:
                del self._held[item]
                self._tell(item, tick)
        due = sorted(t for t in self._buckets if t <= now)
        if late > self._tick and due:
            self.late_firings += 1
            for tick in due:
                for item in self._buckets.pop(tick):
                    self._held[item] = (tick, now + 2)
        else:
            for tick in due:
                for item in self._buckets.pop(tick):
                    self._tell(item, tick)
        first = min(self._buckets, default=None)
        if self._held:
            release = min(r for _, r in self._held.values())
            first = release if first is None else min(first, release)
        if first is not None and self._armed_for != first:
            self._arm(loop, first)

    @staticmethod
    def _tell(item: Due, tick: int) -> None:
        try:
            item.deadline_due(tick)
        except Exception as exc:  # noqa: BLE001 - one socket's failure must not cost the others their pings
            log.warning("deadline_failed", error=type(exc).__name__)
