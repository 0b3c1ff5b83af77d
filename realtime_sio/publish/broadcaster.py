"""The one place that emits ``(event, channel, data)`` to a channel's room, honouring "except this socket".

Every path goes through here: the sidecar route, the Pusher API, Laravel's Redis broadcaster, whispers and presence
announcements. ``publish`` records the event in history first (it gets a position the client can recover from) and
then hands it to the :class:`Transport`: locally that delivers at once; in a cluster the Redis transport carries it
to every node (this one included), which then calls :meth:`Broadcaster.deliver`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Protocol

from realtime_sio.metrics import Metrics
from realtime_sio.publish.history import Entry, History
from realtime_sio.sio.fanout import LeanManager

NAMESPACE = "/"


@dataclass(frozen=True)
class Message:
    """An event on its way to a channel's room."""

    channel: str
    event: str
    data: Any
    except_sid: str | None = None
    position: str | None = None  # set for recorded events; sent to clients as a 4th argument
    accepted_at: float = 0.0  # wall-clock seconds when this node accepted it (delivery latency)


class Transport(Protocol):
    async def send(self, message: Message) -> None:
        """Carry ``message`` to every node's :meth:`Broadcaster.deliver`; raise when that cannot be guaranteed."""
        ...


class LocalTransport:
    """Single node: deliver straight away."""

    def __init__(self) -> None:
        self.broadcaster: Broadcaster | None = None

    async def send(self, message: Message) -> None:
        assert self.broadcaster is not None
        self.broadcaster.deliver(message)


class Broadcaster:
    """Publishes events to rooms through one transport, recording them in history when configured."""

    def __init__(self, manager: LeanManager, metrics: Metrics, history: History | None, transport: Transport) -> None:
        self._manager = manager
        self._metrics = metrics
        self._history = history
        self._transport = transport
        # gates[channel][sid] = messages held back while that socket's missed events are replayed (sio/recovery.py)
        self.gates: dict[str, dict[str, list[Message]]] = {}

    @property
    def records_positions(self) -> bool:
        return self._history is not None

    async def publish(self, channel: str, event: str, data: Any, *, except_sid: str | None = None, source: str) -> str | None:
        """Record and broadcast an application event; returns its position (None without history).

        Raises whatever the transport or history raises when delivery cannot be guaranteed (callers answer 503).
        """
        accepted_at = time.time()
        position = None
        if self._history is not None:
            entry = await self._history.append(channel, event, data, except_sid)
            position = entry.position
        await self._transport.send(Message(channel, event, data, except_sid, position, accepted_at))
        self._metrics.events_received.labels(source=source).inc()
        return position

    async def signal(self, channel: str, event: str, data: Any, *, except_sid: str | None = None, source: str | None = None) -> None:
        """Broadcast an ephemeral event (whisper, presence announcement): not recorded, no position."""
        await self._transport.send(Message(channel, event, data, except_sid, None, time.time()))
        if source is not None:
            self._metrics.events_received.labels(source=source).inc()

    def deliver(self, message: Message) -> int:
        """Emit ``message`` to this node's members of its room; returns how many sockets it was queued for."""
        args: tuple[Any, ...] = (message.channel, message.data)
        if message.position is not None:
            args = (message.channel, message.data, {"position": message.position})
        skip: Any = message.except_sid
        gated = self.gates.get(message.channel)
        if gated:
            for held in gated.values():
                held.append(message)
            skip = [message.except_sid, *gated]
        count = self._manager.fanout(message.event, args, NAMESPACE, message.channel, skip)
        if count:
            self._metrics.messages_delivered.inc(count)
            if message.accepted_at:
                self._metrics.delivery_latency.observe(max(0.0, time.time() - message.accepted_at))
        return count

    def to_socket(self, sid: str, event: str, *args: Any) -> int:
        """Queue one event for one socket (replayed history, recovery signals); returns 1 if queued."""
        return self._manager.fanout(event, args, NAMESPACE, sid, None)

    async def history_since(self, channel: str, position: tuple[int, int]) -> list[Entry] | None:
        """Events of ``channel`` after ``position``; ``None`` when history no longer reaches back."""
        if self._history is None:
            return None
        return await self._history.since(channel, position)
