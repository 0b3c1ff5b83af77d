"""The one place events are published to a channel, honouring "except this socket".

Every path goes through here: the sidecar route, the Pusher API, Laravel's Redis broadcaster, whispers and presence
announcements. ``publish_batch`` hands a recorded event to the :class:`Transport`, which gives it a position (history, for
recovery) and carries it to every node; each node's transport then calls its local delivery
(:class:`~realtime_sio.publish.delivery.LocalDelivery`, given to the transport when it is built). Locally that happens
at once (``LocalTransport``); in a cluster it happens when Redis hands the event back (``cluster.bus``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Literal, Protocol

from realtime_sio.metrics import EVENT_SOURCES, Metrics
from realtime_sio.publish.history import Cursor, MemoryHistory, Replay, Unrecoverable

Results = list[str | None | Literal[False]]  # per event of a batch: its position, None without history, False: sent before
# what a batch publish hands its callback: every event's result, or the error that kept it from being confirmed
Then = Callable[[Results | BaseException], None]


async def outcome_of(start: Callable[[list[tuple[Message, str | None]], Then], None], batch: list[tuple[Message, str | None]]) -> Results:
    """Await what ``start(batch, then)`` hands ``then`` (raised when it is an error)."""
    future: asyncio.Future[Results] = asyncio.get_running_loop().create_future()

    def then(outcome: Results | BaseException) -> None:
        if future.done():
            return  # the awaiting caller was cancelled
        if isinstance(outcome, BaseException):
            future.set_exception(outcome)
        else:
            future.set_result(outcome)

    start(batch, then)
    return await future


@dataclass(frozen=True)
class Message:
    """An event on its way to a channel's room."""

    channel: str
    event: str
    data: Any
    except_sid: str | None = None
    position: str | None = None  # set for recorded events; sent to clients as a 4th argument
    accepted_at: float = 0.0  # wall-clock seconds when a node accepted it (delivery latency)
    user_id: str | None = None  # a whisper's sender on a presence channel (Pusher clients receive it; issue 12)
    source: str = ""  # where it was accepted (metrics.DELIVERY_SOURCES); "" from a node that predates the field


class Transport(Protocol):
    """Carries messages to every node and keeps the recovery history."""

    async def send(
        self, message: Message, record: bool, once_key: str | None = None, *, local_fallback: bool = True
    ) -> str | None | Literal[False]:
        """Deliver ``message`` on every node (recording it first when ``record``); returns its position.

        With ``once_key``, only if no node sent a message under that key before (else returns False, sends nothing).
        Raises when delivery cannot be guaranteed (the caller answers 503 and nothing was accepted), except for an
        unrecorded message with ``local_fallback``, which then reaches this node's sockets only.
        """
        ...

    def start_batch(self, batch: list[tuple[Message, str | None]], then: Then) -> None:
        """Record and deliver several messages in order, as :meth:`send` each with ``record=True``, started now; the
        outcome (each result, or the error) goes to ``then`` (which must not raise) instead of being awaited: a caller
        answering an HTTP request from ``then`` answers in the loop iteration that learnt the outcome."""
        ...

    async def since(self, channel: str, cursor: Cursor) -> Replay:
        """Recorded events of ``channel`` after ``cursor``, or why history no longer reaches back."""
        ...

    async def position(self, channel: str) -> str | None:
        """The channel's current position (``None`` without history): a client that has seen every event so far
        presents it to recover what comes after."""
        ...


class OnceKeys:
    """Keys seen within the last ``ttl`` seconds (a single node's once-only publishes: idempotency keys)."""

    def __init__(self, ttl: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._ttl = ttl
        self._clock = clock
        self._expires: dict[str, float] = {}  # insertion order = expiry order (constant ttl)

    def claim(self, key: str) -> bool:
        """True the first time ``key`` is seen within ``ttl``."""
        now = self._clock()
        expires = self._expires
        while expires:  # drop the expired ones from the front (oldest first), without copying the table
            oldest = next(iter(expires))
            if expires[oldest] > now:
                break
            del expires[oldest]
        if key in expires:
            return False
        expires[key] = now + self._ttl
        return True


class LocalTransport:
    """Single node: record in memory, deliver straight away."""

    def __init__(self, history: MemoryHistory | None, deliver: Callable[[Message], int], once_seconds: float = 120.0) -> None:
        self.history = history
        self._deliver = deliver  # this node's local delivery (publish/delivery.py)
        self._once = OnceKeys(once_seconds)

    async def send(
        self, message: Message, record: bool, once_key: str | None = None, *, local_fallback: bool = True
    ) -> str | None | Literal[False]:
        return self._send(message, record, once_key)

    def _send(self, message: Message, record: bool, once_key: str | None) -> str | None | Literal[False]:
        if once_key is not None and not self._once.claim(once_key):
            return False
        if record and self.history is not None:
            entry = self.history.record(message.channel, message.event, message.data, message.except_sid)
            message = replace(message, position=entry.position)
        self._deliver(message)
        return message.position

    def start_batch(self, batch: list[tuple[Message, str | None]], then: Then) -> None:
        then([self._send(message, True, key) for message, key in batch])

    async def since(self, channel: str, cursor: Cursor) -> Replay:
        return Unrecoverable("expired") if self.history is None else await self.history.since(channel, cursor)

    async def position(self, channel: str) -> str | None:
        return None if self.history is None else self.history.position(channel)


class Broadcaster:
    """The publishing side: records and sends events through one transport, which hands them to every node's
    local delivery (publish/delivery.py)."""

    def __init__(self, metrics: Metrics, transport: Transport) -> None:
        self.transport = transport
        self._received = {source: metrics.events_received.labels(source=source) for source in EVENT_SOURCES}

    async def publish_batch(
        self, batch: list[tuple[Message, str | None]], *, source: str
    ) -> list[str | None | Literal[False]]:
        """Record and broadcast application events cluster-wide, in order, with one transport call (one Redis round
        trip in a cluster); messages are built with ``accepted_at`` set by the caller.

        Returns each event's position (None without history), or False where its ``once_key`` was published before
        (once per cluster however many nodes try: Laravel's Redis broadcasts, idempotency keys; nothing is sent).
        Raises whatever the transport raises when delivery cannot be guaranteed; then none of the batch is confirmed
        (some may have been delivered: callers answer 503 and publishers retry, with an idempotency key if they
        must not deliver twice)."""
        return await outcome_of(lambda events, then: self.start_batch(events, then, source=source), batch)

    def start_batch(self, batch: list[tuple[Message, str | None]], then: Then, *, source: str) -> None:
        """:meth:`publish_batch` started now, its outcome (the results, or the error) handed to ``then`` in the loop
        iteration that learnt it (``then`` must not raise)."""
        received = self._received[source]

        def count(outcome: Results | BaseException) -> None:
            if not isinstance(outcome, BaseException):
                for result in outcome:
                    if result is not False:
                        received.inc()
            then(outcome)

        self.transport.start_batch(
            [(message if message.source == source else replace(message, source=source), key) for message, key in batch], count
        )

    async def signal(
        self,
        channel: str,
        event: str,
        data: Any,
        *,
        except_sid: str | None = None,
        source: str | None = None,
        user_id: str | None = None,
    ) -> None:
        """Broadcast an ephemeral event (whisper, presence announcement): not recorded, no position."""
        message = Message(channel, event, data, except_sid, None, time.time(), user_id, source=source or "presence")
        await self.transport.send(message, record=False)
        if source is not None:
            self._received[source].inc()

    async def control(self, channel: str, event: str, data: Any) -> None:
        """Send an internal signal to every node's delivery (``channel`` starts with ``#``: no socket's room); not
        recorded. Raises when it cannot reach every node (no fallback to this node alone)."""
        await self.transport.send(Message(channel, event, data, None, None, time.time()), record=False, local_fallback=False)

    async def history_since(self, channel: str, cursor: Cursor) -> Replay:
        """Events of ``channel`` after ``cursor``, or why history no longer reaches back."""
        return await self.transport.since(channel, cursor)

    async def position(self, channel: str) -> str | None:
        """The channel's current position (``None`` without history)."""
        return await self.transport.position(channel)
