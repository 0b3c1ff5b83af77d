"""Per-channel event positions and a bounded history, so a reconnecting client can recover what it missed.

Positions look like Redis stream ids, ``"<unix ms>-<seq>"``, and compare as ``(ms, seq)``; the in-memory store
issues them the same way Redis Streams do, so clients and the recovery code treat both stores alike.
A store answers ``since(channel, position)`` with the events after ``position`` in order, or ``None`` when the
history no longer reaches back that far (the client must reload its state).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True)
class Entry:
    """One published event as kept in history."""

    position: str
    event: str
    data: Any
    except_sid: str | None = None


def parse_position(value: object) -> tuple[int, int] | None:
    """``"1700000000000-3"`` → ``(1700000000000, 3)``; anything malformed → ``None``."""
    if not isinstance(value, str) or len(value) > 41:
        return None
    ms, sep, seq = value.partition("-")
    if not sep or not ms.isdigit() or not seq.isdigit():
        return None
    return int(ms), int(seq)


class History(Protocol):
    async def append(self, channel: str, event: str, data: Any, except_sid: str | None) -> Entry: ...

    async def since(self, channel: str, position: tuple[int, int]) -> list[Entry] | None: ...


class MemoryHistory:
    """Single-node history: the last ``size`` events per channel, none older than ``max_age`` seconds."""

    def __init__(self, size: int, max_age: float, clock: Callable[[], float] = time.time) -> None:
        self._size = size
        self._max_age = max_age
        self._clock = clock
        # entries[channel] = deque of (ms, seq, Entry); trimmed[channel] = newest (ms, seq) dropped
        self._entries: dict[str, deque[tuple[int, int, Entry]]] = {}
        self._trimmed: dict[str, tuple[int, int]] = {}
        self._last: tuple[int, int] = (0, 0)

    def _next_position(self) -> tuple[int, int]:
        ms = int(self._clock() * 1000)
        last_ms, last_seq = self._last
        self._last = (ms, 0) if ms > last_ms else (last_ms, last_seq + 1)
        return self._last

    def _trim(self, channel: str, entries: deque[tuple[int, int, Entry]]) -> None:
        cutoff = int((self._clock() - self._max_age) * 1000)
        while entries and (len(entries) > self._size or entries[0][0] < cutoff):
            ms, seq, _ = entries.popleft()
            self._trimmed[channel] = (ms, seq)
        if not entries:
            del self._entries[channel]

    async def append(self, channel: str, event: str, data: Any, except_sid: str | None) -> Entry:
        ms, seq = self._next_position()
        entry = Entry(f"{ms}-{seq}", event, data, except_sid)
        entries = self._entries.setdefault(channel, deque())
        entries.append((ms, seq, entry))
        self._trim(channel, entries)
        return entry

    async def since(self, channel: str, position: tuple[int, int]) -> list[Entry] | None:
        entries = self._entries.get(channel)
        if entries is not None:
            self._trim(channel, entries)
        trimmed = self._trimmed.get(channel)
        cutoff_ms = int((self._clock() - self._max_age) * 1000)
        if trimmed is not None and position < trimmed:
            return None
        if trimmed is None and position[0] < cutoff_ms and entries is None:
            # Nothing kept and the client's position is older than the window: we cannot prove nothing was lost.
            return None
        if entries is None or channel not in self._entries:
            return []
        return [e for ms, seq, e in entries if (ms, seq) > position]
