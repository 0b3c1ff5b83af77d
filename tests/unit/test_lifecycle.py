"""Unit tests of lifecycle.py: parts start in order, stop in reverse, tasks end before resources close."""

from __future__ import annotations

import asyncio

import pytest

from realtime_sio.lifecycle import Lifecycle


async def test_parts_start_in_order_and_stop_in_reverse_after_their_tasks_end() -> None:
    """Starts run in the order added; every task is cancelled and finished before the first stop runs; stops run
    newest first."""
    events: list[str] = []
    lifecycle = Lifecycle()

    def part(name: str) -> None:
        async def start() -> None:
            events.append(f"start {name}")

        async def run() -> None:
            try:
                await asyncio.Event().wait()
            finally:
                events.append(f"task {name} ended")

        async def stop() -> None:
            events.append(f"stop {name}")

        lifecycle.add(name, start=start, run=run, stop=stop)

    part("redis")
    part("listener")
    await lifecycle.start()
    await asyncio.sleep(0)  # let the tasks begin
    await lifecycle.stop(5)
    assert events[:2] == ["start redis", "start listener"]
    assert sorted(events[2:4]) == ["task listener ended", "task redis ended"]
    assert events[4:] == ["stop listener", "stop redis"]


async def test_a_failing_or_hanging_stop_does_not_keep_the_others_from_running() -> None:
    """A stop that raises or outlives the deadline is skipped (logged) and the earlier parts still stop."""
    stopped: list[str] = []
    lifecycle = Lifecycle()

    async def record() -> None:
        stopped.append("first")

    async def hang() -> None:
        await asyncio.Event().wait()

    async def fail() -> None:
        raise RuntimeError("boom")

    lifecycle.add("first", stop=record)
    lifecycle.add("hangs", stop=hang)
    lifecycle.add("fails", stop=fail)
    await lifecycle.start()
    await lifecycle.stop(0.2)
    assert stopped == ["first"]


def test_names_are_unique_and_fixed_once_started() -> None:
    """A part name is used once; parts cannot be added after start (they would never be stopped in order)."""
    lifecycle = Lifecycle()
    lifecycle.add("a")
    with pytest.raises(ValueError, match="twice"):
        lifecycle.add("a")
    asyncio.run(lifecycle.start())
    with pytest.raises(RuntimeError, match="after start"):
        lifecycle.add("b")
    assert lifecycle.names == ["a"]
