"""The delivering side: what a node does with an event its transport hands back (every node, every event, once).

The transport (``LocalTransport`` or the cluster bus) calls :meth:`LocalDelivery.deliver` for each event (the bus calls
:meth:`LocalDelivery.deliver_all` with the events of one read); it goes to this node's subscribers of the channel
through the protocol's fan-out (``sio/fanout.py`` ``LeanManager.prepare`` and ``send``: encoded once, one prebuilt
frame per recipient), except the socket that sent it and except sockets whose recovery is
still replaying history: their live events wait at a gate (:meth:`hold` / :meth:`release`, sio/recovery.py) so
replayed and live events reach them in order. A gate released after a replay leaves a *floor*: the position the
socket has everything up to. An event's live copy can reach this node after the history read that already replayed
it (the pub/sub connection runs behind the command connection under load); at or below a socket's floor it is not
sent to that socket again. A floor ends with the first live event above it (the bus delivers a channel's events in
position order), when the socket goes (:meth:`forget`), or after ``FLOOR_SECONDS``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol

from realtime_sio.latency.estimate import Estimator, Stamp
from realtime_sio.metrics import Metrics
from realtime_sio.publish.broadcaster import Message
from realtime_sio.publish.history import parse_position

NAMESPACE = "/"
# events prepared before they are written: one warm loop each, yet the first waits for at most this many encodings
# (one read of the bus can bring ~1,700 events; at ~20 us each, all of them would hold the first ~35 ms)
BATCH_EVENTS = 64
FLOOR_SECONDS = 60.0  # a floor no live event has passed is dropped after this (a late pub/sub copy comes in ms)


class Fanout(Protocol):
    """A protocol's local fan-out: queue one event for every member of ``room`` but ``skip_sid``; returns how many.

    :meth:`prepare` and :meth:`send` are the same in two halves, so that a batch of events is encoded in one loop and
    written in the next (:meth:`LocalDelivery.deliver_all`); nothing may change a room between them."""

    def fanout(self, event: str, data: Any, namespace: str, room: Any, skip_sid: Any, stamp: Stamp | None = None) -> int:
        """``stamp``: a broadcast's latency stamp, counted per delivery (latency/estimate.py)."""
        ...

    def prepare(self, event: str, data: Any, namespace: str, room: Any, skip_sid: Any, stamp: Stamp | None = None) -> Any:
        """The event encoded for the room's members, or None when the room has none here."""
        ...

    def send(self, prepared: Any) -> int:
        """Write what :meth:`prepare` returned (not None); returns how many sockets took it."""
        ...

    def has_members(self, namespace: str, room: str) -> bool:
        """Whether ``room`` has a socket on this node."""
        ...


class LocalDelivery:
    """Delivers events to this node's sockets; holds live events back for sockets mid-recovery."""

    def __init__(
        self,
        fanout: Fanout,
        metrics: Metrics,
        also: Callable[[Message], int] | None = None,
        controls: Mapping[str, Callable[[Message], None]] | None = None,
        estimator: Estimator | None = None,
        also_serves: Callable[[str], bool] | None = None,
    ) -> None:
        self._fanout = fanout
        self._metrics = metrics
        # also(message): the same event to this node's Pusher subscribers (pusher/hub.py, issue 12), after Socket.IO's
        self._also = also
        self._also_serves = also_serves  # also_serves(channel): whether ``also`` has a subscriber of it here
        # controls[internal channel] = this node's handler of signals sent with Broadcaster.control (names start
        # with "#", which no client channel can: publish/terminations.py); they are never fanned out
        self._controls = dict(controls or {})
        self._estimator = estimator  # delivery latency as users feel it (latency/estimate.py); None = not measured
        # gates[channel][sid] = messages held back while that socket's missed events are replayed (sio/recovery.py)
        self._gates: dict[str, dict[str, list[Message]]] = {}
        # floors[channel][sid] = (position that socket's replay reached, monotonic deadline); floored[sid] = its channels
        self._floors: dict[str, dict[str, tuple[tuple[int, int], float]]] = {}
        self._floored: dict[str, set[str]] = {}

    def deliver(self, message: Message) -> int:
        """Emit ``message`` to this node's members of its room; returns how many sockets it was queued for."""
        return self.deliver_all((message,))

    def deliver_all(self, messages: Iterable[Message]) -> int:
        """Deliver ``messages`` in order (what one read of the cluster bus brought); returns the deliveries.

        Every event of the batch is encoded first, then all are written, then counted: each step runs as one warm
        loop instead of alternating with the kernel's work of every write (at 14 recipients per event and node, 25.3 →
        18.7 µs of CPU per delivery in a 21,000-client storm over 3 nodes; issue 14, docs/performance.md), at most
        ``BATCH_EVENTS`` at a time. A control signal ends a batch: the events before it are written first."""
        total = 0
        batch: list[tuple[Message, Any, Stamp | None]] = []
        prepare = self._fanout.prepare
        for message in messages:
            if message.channel[:1] == "#":
                if batch:
                    total += self._send(batch)
                    batch = []
                control = self._controls.get(message.channel)
                if control is not None:
                    control(message)
                continue
            args: tuple[Any, ...] = (message.channel, message.data)
            if message.position is not None:
                args = (message.channel, message.data, {"position": message.position})
            skip: Any = message.except_sid
            gated = self._gates.get(message.channel)
            if gated:
                for held in gated.values():
                    held.append(message)
                skip = [message.except_sid, *gated]
            floors = self._floors.get(message.channel)
            if floors and message.position is not None:
                covered = self._covered(message.channel, floors, message.position)
                if covered:
                    skip = [*skip, *covered] if isinstance(skip, list) else [skip, *covered]
            stamp = self._estimator.stamp(message.accepted_at, message.source, args) if self._estimator is not None else None
            batch.append((message, prepare(message.event, args, NAMESPACE, message.channel, skip, stamp), stamp))
            if len(batch) == BATCH_EVENTS:
                total += self._send(batch)
                batch = []
        if batch:
            total += self._send(batch)
        return total

    def _send(self, batch: list[tuple[Message, Any, Stamp | None]]) -> int:
        """Write a prepared batch, then finish its latency stamps, hand it to the other protocol and count it."""
        send = self._fanout.send
        counts = [0 if prepared is None else send(prepared) for _, prepared, _ in batch]
        total = 0
        now = time.time()
        observe = self._metrics.delivery_latency.observe
        for (message, _, stamp), count in zip(batch, counts, strict=True):
            if stamp is not None:
                stamp.finish()
            if self._also is not None:
                count += self._also(message)
            if count:
                total += count
                if message.accepted_at:
                    observe(max(0.0, now - message.accepted_at))
        if total:
            self._metrics.messages_delivered.inc(total)
        return total

    def serves(self, channel: str) -> bool:
        """Whether an event on ``channel`` can reach anyone on this node: a socket in its room, one mid-recovery at its
        gate, a Pusher subscriber, or this node's handler of a control channel. The cluster bus skips decoding the
        others (in a cluster most events have no subscriber on most nodes)."""
        if channel[:1] == "#" or channel in self._gates or self._fanout.has_members(NAMESPACE, channel):
            return True
        return self._also_serves is not None and self._also_serves(channel)

    def to_socket(self, sid: str, event: str, *args: Any) -> int:
        """Queue one event for one socket (replayed history, recovery signals); returns 1 if queued."""
        return self._fanout.fanout(event, args, NAMESPACE, sid, None)

    def hold(self, channel: str, sid: str) -> list[Message]:
        """From now on keep ``channel``'s live events for ``sid`` in the returned list instead of delivering them."""
        held: list[Message] = []
        self._gates.setdefault(channel, {})[sid] = held
        return held

    def release(self, channel: str, sid: str, floor: tuple[int, int] | None = None) -> None:
        """Deliver ``channel``'s live events to ``sid`` again (what was held is the caller's to send); ``floor``: the
        position ``sid`` has every event of ``channel`` up to (a replay's last), whose late live copies it must not
        get twice."""
        gated = self._gates.get(channel)
        if gated is not None:
            gated.pop(sid, None)
            if not gated:
                del self._gates[channel]
        if floor is not None:
            self._floors.setdefault(channel, {})[sid] = (floor, time.monotonic() + FLOOR_SECONDS)
            self._floored.setdefault(sid, set()).add(channel)

    def forget(self, sid: str) -> None:
        """The socket is gone: drop its floors."""
        for channel in self._floored.pop(sid, ()):
            self._drop_floor(channel, sid, keep_index=True)

    def _covered(self, channel: str, floors: dict[str, tuple[tuple[int, int], float]], position: str) -> list[str]:
        """Sockets whose replay already sent the event at ``position``; floors it passes (or expired ones) end."""
        at = parse_position(position)
        if at is None:
            return []
        now = time.monotonic()
        covered = []
        for sid, (floor, deadline) in list(floors.items()):
            if at <= floor and now < deadline:
                covered.append(sid)
            else:
                self._drop_floor(channel, sid)
        return covered

    def _drop_floor(self, channel: str, sid: str, keep_index: bool = False) -> None:
        floors = self._floors.get(channel)
        if floors is not None:
            floors.pop(sid, None)
            if not floors:
                del self._floors[channel]
        if not keep_index:
            channels = self._floored.get(sid)
            if channels is not None:
                channels.discard(channel)
                if not channels:
                    del self._floored[sid]
