"""Unit tests of the deadline wheel (engine/deadlines.py): when deadlines fire, moved and cancelled ones, failures, and
deadlines that fell in a stall of the loop."""

from __future__ import annotations

import asyncio
import time

import pytest
import uvloop

from realtime_sio.engine.deadlines import DeadlineWheel

TICK = 0.01


class Item:
    """A Due that records the ticks it is told and, like LeanSocket, acts only on its latest one."""

    def __init__(self, wheel: DeadlineWheel, fail: bool = False) -> None:
        self.wheel, self.fail = wheel, fail
        self.due = 0
        self.told: list[int] = []
        self.acted: list[float] = []
        self.fired = asyncio.Event()

    def at(self, delay: float) -> None:
        self.due = self.wheel.schedule(self, delay, self.due)

    def deadline_due(self, tick: int) -> None:
        self.told.append(tick)
        if self.fail:
            raise RuntimeError("boom")
        if tick == self.due:
            self.acted.append(asyncio.get_running_loop().time())
            self.fired.set()


async def test_a_deadline_fires_once_and_not_before_its_time() -> None:
    """Each item is told once, at or after its deadline, however the deadlines were scheduled."""
    wheel = DeadlineWheel(TICK)
    loop = asyncio.get_running_loop()
    items = [Item(wheel) for _ in range(3)]
    start = loop.time()
    for item, delay in zip(items, (0.05, 0.02, 0.03), strict=True):
        item.at(delay)
    await asyncio.wait_for(asyncio.gather(*(i.fired.wait() for i in items)), timeout=5)
    for item, delay in zip(items, (0.05, 0.02, 0.03), strict=True):
        assert len(item.told) == 1 and item.acted[0] >= start + delay - 0.0011
    assert wheel.pending() == 0


async def test_a_moved_deadline_is_told_only_at_its_new_tick() -> None:
    """Moving a deadline takes the item out of its old tick: it is told once, at the later deadline."""
    wheel = DeadlineWheel(TICK)
    item = Item(wheel)
    item.at(0.02)
    item.at(0.08)
    await asyncio.wait_for(item.fired.wait(), timeout=5)
    assert item.told == [item.due] and len(item.acted) == 1


async def test_a_cancelled_deadline_is_never_told_and_not_kept() -> None:
    """A cancelled item leaves the wheel at once (a closed socket is not kept alive) and is never told."""
    wheel = DeadlineWheel(TICK)
    gone, witness = Item(wheel), Item(wheel)
    gone.at(0.02)
    witness.at(0.05)
    wheel.cancel(gone, gone.due)
    assert wheel.pending() == 1
    await asyncio.wait_for(witness.fired.wait(), timeout=5)
    assert gone.told == [] and wheel.pending() == 0
    wheel.cancel(gone, gone.due)  # cancelling again, or a tick already gone, is harmless


async def test_a_failing_item_does_not_cost_the_others_their_deadline() -> None:
    """One item raising in its call leaves the rest of its tick's items told, and the wheel keeps running."""
    wheel = DeadlineWheel(TICK)
    bad, good, later = Item(wheel, fail=True), Item(wheel), Item(wheel)
    bad.at(0.02)
    good.at(0.02)
    later.at(0.06)
    await asyncio.wait_for(asyncio.gather(good.fired.wait(), later.fired.wait()), timeout=5)
    assert len(bad.told) == 1


async def test_rescheduling_from_a_call_keeps_earlier_deadlines() -> None:
    """An item that schedules a far deadline while the wheel fires does not delay a nearer one already waiting."""
    wheel = DeadlineWheel(TICK)
    near = Item(wheel)

    class Rescheduler(Item):
        def deadline_due(self, tick: int) -> None:
            super().deadline_due(tick)
            if len(self.told) == 1:
                self.at(30.0)  # far away: the wheel must still wake for `near`

    first = Rescheduler(wheel)
    first.at(0.01)
    near.at(0.06)
    await asyncio.wait_for(near.fired.wait(), timeout=5)
    assert first.told and wheel.pending() == 1
    wheel.close()
    assert wheel.pending() == 0


@pytest.mark.parametrize("delay", [0.0, -1.0])
async def test_a_deadline_already_past_fires_at_the_next_tick(delay: float) -> None:
    """A zero or negative delay is told on the loop's next timer round, not lost."""
    wheel = DeadlineWheel(TICK)
    item = Item(wheel)
    item.at(delay)
    await asyncio.wait_for(item.fired.wait(), timeout=5)


def _after_a_stall(moved_by: str = "", stalls: int = 1) -> tuple[list[str], DeadlineWheel, Item]:
    """On uvloop (the server's loop, which runs due timers before it reads sockets): an item due in 20 ms, then a
    callback that blocks the loop for 100 ms (the stall) and at its end queues "the PONG's handling". Returns what
    ran in which order. ``moved_by="answer"``: the PONG's handling moves the item's deadline, as a PONG does.
    ``stalls=2``: the loop stands still again right after the first stall (a loop that stays late)."""
    loop = uvloop.new_event_loop()
    order: list[str] = []

    async def scenario() -> tuple[DeadlineWheel, Item]:
        wheel = DeadlineWheel(TICK)

        class Socket(Item):
            def deadline_due(self, tick: int) -> None:
                super().deadline_due(tick)
                if tick == self.due:
                    order.append("judged")

        item = Socket(wheel)
        item.at(0.02)

        def answer() -> None:
            order.append("answered")
            if moved_by == "answer":
                item.at(30.0)

        left = [stalls]

        def stall() -> None:
            time.sleep(0.1)  # the stall under test (the loop stands still), not a wait for a condition
            left[0] -= 1
            if left[0] == stalls - 1:
                loop.call_soon(answer)
            if left[0]:
                loop.call_soon(stall)

        loop.call_soon(stall)
        done = loop.create_future()
        loop.call_later(0.3, done.set_result, None)
        await done
        return wheel, item

    try:
        wheel, item = loop.run_until_complete(scenario())
    finally:
        loop.close()
    return order, wheel, item


def test_a_deadline_that_fell_in_a_stall_is_judged_after_the_loop_read_what_waited() -> None:
    """After the loop stood still past a deadline, what arrived meanwhile (a PONG) is handled before the item is
    told: the late firing holds its items one tick."""
    order, wheel, item = _after_a_stall()
    assert order == ["answered", "judged"]
    assert wheel.late_firings == 1 and len(item.told) == 1


def test_a_held_deadline_moved_by_the_answer_is_not_judged() -> None:
    """A PONG handled during the hold moves the deadline: the socket is never told its old one, nothing is left."""
    order, wheel, item = _after_a_stall(moved_by="answer")
    assert order == ["answered"] and item.told == []
    assert wheel.pending() == 1  # only its new, far deadline


def test_a_held_deadline_is_judged_even_when_the_loop_stays_late() -> None:
    """A deadline is held once: the next firing tells it although that firing is late too (a saturated loop cannot
    keep a silent client forever)."""
    order, wheel, item = _after_a_stall(stalls=2)
    assert order == ["answered", "judged"] and len(item.told) == 1
    assert wheel.late_firings == 1 and wheel.pending() == 0
