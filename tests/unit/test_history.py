"""Unit tests of the in-memory recovery history and of positions (publish/history.py)."""

from __future__ import annotations

from realtime_sio.publish.history import (
    Cursor,
    MemoryHistory,
    Unrecoverable,
    parse_cursor,
    parse_position,
)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def cursor(position: str) -> Cursor:
    parsed = parse_cursor(position)
    assert parsed is not None
    return parsed


async def test_positions_increase_and_since_returns_later_events() -> None:
    """Positions are monotonic even within one millisecond; since() returns strictly later events in order."""
    clock = Clock()
    h = MemoryHistory(size=10, max_age=60, clock=clock)
    a = await h.append("c", "E", 1, None)
    b = await h.append("c", "E", 2, None)
    assert cursor(b.position).at > cursor(a.position).at
    got = await h.since("c", cursor(a.position))
    assert isinstance(got, list) and [e.data for e in got] == [2]


async def test_size_trim_signals_gap() -> None:
    """When the client's position fell out of the size window since() says it was trimmed."""
    clock = Clock()
    h = MemoryHistory(size=2, max_age=60, clock=clock)
    first = await h.append("c", "E", 1, None)
    for i in range(3):
        clock.now += 0.01
        await h.append("c", "E", i, None)
    assert await h.since("c", cursor(first.position)) == Unrecoverable("trimmed")


async def test_age_trim_signals_gap() -> None:
    """Events older than max_age are dropped and a position before them is unrecoverable."""
    clock = Clock()
    h = MemoryHistory(size=100, max_age=10, clock=clock)
    first = await h.append("c", "E", 1, None)
    clock.now += 1
    await h.append("c", "E", 2, None)
    got = await h.since("c", cursor(first.position))
    assert isinstance(got, list) and [e.data for e in got] == [2]
    clock.now += 11
    assert isinstance(await h.since("c", cursor(first.position)), Unrecoverable)


async def test_quiet_channel_position_recovers_nothing_missed_long_after() -> None:
    """A position handed out before a channel's first event still recovers, however long the channel stays quiet."""
    clock = Clock()
    h = MemoryHistory(size=10, max_age=10, clock=clock)
    await h.append("other", "E", 0, None)
    before = h.position("quiet")
    clock.now += 3600
    assert await h.since("quiet", cursor(before)) == []
    event = await h.append("quiet", "E", 1, None)
    got = await h.since("quiet", cursor(before))
    assert isinstance(got, list) and [e.position for e in got] == [event.position]


async def test_position_is_the_channels_newest_event() -> None:
    """position() names the newest event of the channel, so nothing at or before it is replayed."""
    h = MemoryHistory(size=10, max_age=60, clock=Clock())
    await h.append("c", "E", 1, None)
    last = await h.append("c", "E", 2, None)
    assert h.position("c") == last.position
    assert await h.since("c", cursor(h.position("c"))) == []


async def test_position_from_another_epoch_is_unrecoverable() -> None:
    """A position issued by an earlier life of the history (a restart) is answered epoch_changed, not with silence."""
    clock = Clock()
    old = MemoryHistory(size=10, max_age=60, clock=clock)
    position = (await old.append("c", "E", 1, None)).position
    new = MemoryHistory(size=10, max_age=60, clock=clock)
    assert await new.since("c", cursor(position)) == Unrecoverable("epoch_changed")


def test_parse_position() -> None:
    """Only ms-seq digit pairs parse, with an optional alphanumeric @epoch."""
    assert parse_position("12-3") == (12, 3)
    assert parse_position("12-3@ab12") == (12, 3)
    assert parse_cursor("12-3@ab12") == Cursor((12, 3), "ab12")
    assert Cursor((12, 3), "ab12").text == "12-3@ab12" and Cursor((12, 3)).text == "12-3"
    for bad in ("12", "a-b", "-1", 5, None, "1-" + "9" * 50, "²-1", "1-٣", "1-2@", "1-2@a-b", "1-2@é",
                "1-2\n", " 1-2", "1-2@" + "a" * 33):
        assert parse_position(bad) is None
