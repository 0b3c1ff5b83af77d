"""Per-channel event positions and a bounded history, so a reconnecting client can recover what it missed.

Positions look like Redis stream ids followed by the history's epoch, ``"<unix ms>-<seq>@<epoch>"``, and compare
as ``(ms, seq)``; the in-memory store issues them the same way Redis Streams do, so clients and the recovery code treat
both stores alike. The epoch names one life of the history (Centrifugo's stream epochs): it changes when the history
is lost (a Redis restart without persistence, a failover to an empty replica, an in-memory server restart), so a
position from an earlier life is known to be unrecoverable instead of being silently answered with nothing.
A store answers ``since(channel, cursor)`` with the events after the cursor in order, or :class:`Unrecoverable`
saying why the history no longer reaches back (the client must reload its state). ``position(channel)`` is the
channel's current position: what a client that has seen everything so far should present when it comes back.
"""

from __future__ import annotations

import os
import random
import re
import secrets
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, Protocol


@dataclass(frozen=True)
class Entry:
    """One published event as kept in history."""

    position: str
    event: str
    data: Any
    except_sid: str | None = None


@dataclass(frozen=True)
class Cursor:
    """A position a client presents: ``at`` = ``(ms, seq)``, ``epoch`` = the history's life it came from (``None``
    for positions issued before epochs existed: taken as the current life)."""

    at: tuple[int, int]
    epoch: str | None = None

    @property
    def text(self) -> str:
        """The cursor as the client sent it."""
        stream_id = f"{self.at[0]}-{self.at[1]}"
        return stream_id if self.epoch is None else f"{stream_id}@{self.epoch}"


@dataclass(frozen=True)
class Unrecoverable:
    """Why a cursor cannot be replayed: ``trimmed`` (older than what is kept), ``expired`` (the channel's history
    aged out after events the client did not see), ``epoch_changed`` (the history was lost since)."""

    reason: Literal["trimmed", "expired", "epoch_changed"]


Replay = list[Entry] | Unrecoverable

MAX_POSITION_LENGTH = 64
# "<ms>-<seq>" with an optional "@<epoch>": ASCII digits only ([0-9], not \d: other scripts' digits are not ids), an
# epoch of 1-32 ASCII letters and digits
_POSITION = re.compile(r"([0-9]{1,20})-([0-9]{1,20})(?:@([0-9A-Za-z]{1,32}))?")


def _match(value: object) -> re.Match[str] | None:
    if not isinstance(value, str) or len(value) > MAX_POSITION_LENGTH:
        return None
    return _POSITION.fullmatch(value)


def parse_cursor(value: object) -> Cursor | None:
    """``"1700000000000-3@ab12cd34"`` (or without ``@epoch``) → :class:`Cursor`; anything malformed → ``None``."""
    match = _match(value)
    if match is None:
        return None
    ms, seq, epoch = match.groups()
    return Cursor((int(ms), int(seq)), epoch)


def parse_position(value: object) -> tuple[int, int] | None:
    """``"1700000000000-3"`` (an optional ``@epoch`` is ignored) → ``(1700000000000, 3)``; malformed → ``None``.
    Every node runs this for every event it delivers: no Cursor is built."""
    match = _match(value)
    return None if match is None else (int(match[1]), int(match[2]))


def format_position(at: tuple[int, int], epoch: str) -> str:
    return f"{at[0]}-{at[1]}@{epoch}"


def new_epoch() -> str:
    """A fresh random epoch name: 32 random bits in hex. Not a secret (every position shows it), only unique, so it
    comes from the process's seeded PRNG: every published event proposes one (used when the history has none), and
    ``secrets`` would cost a getrandom system call each time."""
    return f"{_epochs.getrandbits(32):08x}"


_epochs = random.Random(secrets.randbits(64))  # seeded from the OS once; a forked process must not share its sequence
os.register_at_fork(after_in_child=lambda: _epochs.seed(secrets.randbits(64)))


class History(Protocol):
    async def append(self, channel: str, event: str, data: Any, except_sid: str | None) -> Entry: ...

    async def since(self, channel: str, cursor: Cursor) -> Replay: ...

    def position(self, channel: str) -> str: ...


class MemoryHistory:
    """Single-node history: the last ``size`` events per channel, none older than ``max_age`` seconds.

    Its epoch is new with every process, so positions from before a restart are answered ``epoch_changed``.
    """

    def __init__(self, size: int, max_age: float, clock: Callable[[], float] = time.time, epoch: str | None = None) -> None:
        self._size = size
        self._max_age = max_age
        self._clock = clock
        self.epoch = epoch or new_epoch()
        # entries[channel] = deque of (ms, seq, Entry); trimmed[channel] = newest (ms, seq) dropped;
        # top[channel] = newest (ms, seq) ever issued on the channel (kept after its entries age out)
        self._entries: dict[str, deque[tuple[int, int, Entry]]] = {}
        self._trimmed: dict[str, tuple[int, int]] = {}
        self._top: dict[str, tuple[int, int]] = {}
        self._last: tuple[int, int] = (int(clock() * 1000), 0)

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
        return self.record(channel, event, data, except_sid)

    def record(self, channel: str, event: str, data: Any, except_sid: str | None) -> Entry:
        """Append an event now (nothing to wait for in memory): its entry, with its position."""
        ms, seq = self._next_position()
        entry = Entry(format_position((ms, seq), self.epoch), event, data, except_sid)
        entries = self._entries.setdefault(channel, deque())
        entries.append((ms, seq, entry))
        self._top[channel] = (ms, seq)
        self._trim(channel, entries)
        return entry

    def position(self, channel: str) -> str:
        """The channel's newest position, or, before its first event, the store's newest (every later event of the
        channel is after it)."""
        return format_position(self._top.get(channel, self._last), self.epoch)

    async def since(self, channel: str, cursor: Cursor) -> Replay:
        if cursor.epoch is not None and cursor.epoch != self.epoch:
            return Unrecoverable("epoch_changed")
        position = cursor.at
        entries = self._entries.get(channel)
        if entries is not None:
            self._trim(channel, entries)
        trimmed = self._trimmed.get(channel)
        if trimmed is not None and position < trimmed:
            return Unrecoverable("trimmed")
        top = self._top.get(channel)
        if top is None or position >= top:
            return []  # this life of the store issued nothing on the channel after the cursor
        if channel not in self._entries:
            return Unrecoverable("expired")
        return [e for ms, seq, e in self._entries[channel] if (ms, seq) > position]
