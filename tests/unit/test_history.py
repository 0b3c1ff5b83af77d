"""Unit tests of the in-memory recovery history (publish/history.py)."""

from __future__ import annotations

from realtime_sio.publish.history import MemoryHistory, parse_position


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_positions_increase_and_since_returns_later_events() -> None:
    """Positions are monotonic even within one millisecond; since() returns strictly later events in order."""
    clock = Clock()
    h = MemoryHistory(size=10, max_age=60, clock=clock)
    a = await h.append("c", "E", 1, None)
    b = await h.append("c", "E", 2, None)
    assert parse_position(b.position) > parse_position(a.position)  # type: ignore[operator]
    got = await h.since("c", parse_position(a.position))  # type: ignore[arg-type]
    assert got is not None and [e.data for e in got] == [2]


async def test_size_trim_signals_gap() -> None:
    """When the client's position fell out of the size window since() returns None."""
    clock = Clock()
    h = MemoryHistory(size=2, max_age=60, clock=clock)
    first = await h.append("c", "E", 1, None)
    for i in range(3):
        clock.now += 0.01
        await h.append("c", "E", i, None)
    assert await h.since("c", parse_position(first.position)) is None  # type: ignore[arg-type]


async def test_age_trim_signals_gap() -> None:
    """Events older than max_age are dropped and a position before them gets None."""
    clock = Clock()
    h = MemoryHistory(size=100, max_age=10, clock=clock)
    first = await h.append("c", "E", 1, None)
    clock.now += 1
    await h.append("c", "E", 2, None)
    assert [e.data for e in await h.since("c", parse_position(first.position)) or []] == [2]  # type: ignore[arg-type]
    clock.now += 11
    assert await h.since("c", parse_position(first.position)) is None  # type: ignore[arg-type]


def test_parse_position() -> None:
    """Only ms-seq digit pairs parse."""
    assert parse_position("12-3") == (12, 3)
    for bad in ("12", "a-b", "-1", 5, None, "1-" + "9" * 50):
        assert parse_position(bad) is None
