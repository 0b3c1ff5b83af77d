"""The estimate: accepted → written to the socket, plus half the socket's last round trip, for every delivery.

Cost per delivery is one list increment. A fan-out carries a :class:`Stamp`; each recipient written at once adds 1
at its ``rtt_cell`` (``engine/round_trip.py``: the cell of half its round trip, computed when the PONG arrived).
After the fan-out, :meth:`Stamp.finish` takes the clock once and adds each non-empty cell to the histogram as one
(value, count) pair: ``written − accepted + HALF_RTT[cell]``. Error bars: the half round trip is a cell's middle
(±10 %); "written" is the end of the fan-out loop (a later bound for earlier recipients: the loop's own duration).

A delivery that is not written at once must show up as slow, not fast:

- queued in the socket's send queue (long-polling, a WebSocket mid-upgrade or behind a send in progress): the
  queued packet carries the stamp and is measured when it leaves the queue (:meth:`Stamp.left_queue`);
- written behind bytes the socket has not sent yet (a reader slower than the stream, or one that stopped reading):
  held here and measured when the socket's buffer has drained (checked every ``SWEEP_SECONDS``: that is its error
  bar), or when the socket closes with it still unsent (then it counts as at least that slow).

Bytes in the kernel's socket buffer count as sent: a client that stops reading looks fast until that buffer (and the
network's) is full, then slow. Its round trip grows too, since the next PING waits behind the same bytes.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any, Protocol

from realtime_sio.engine.round_trip import HALF_RTT
from realtime_sio.latency.acks import AckSampler
from realtime_sio.metrics import DELIVERY_PROTOCOLS, DELIVERY_SOURCES, DeliveryHistogram

SWEEP_SECONDS = 0.02  # how often sockets with deliveries behind unsent bytes are checked
MAX_HELD = 4096  # deliveries held per socket (more means the socket is about to be dropped as a slow reader)
_PROTOCOLS = len(DELIVERY_PROTOCOLS)
WEBSOCKET = DELIVERY_PROTOCOLS.index("websocket")
POLLING = DELIVERY_PROTOCOLS.index("polling")
PUSHER = DELIVERY_PROTOCOLS.index("pusher")


class Recipient(Protocol):
    """What the estimate reads of a socket (``engine.upstream.LeanSocket``)."""

    rtt_cell: int
    ack_countdown: int
    upgraded: bool
    closed: bool

    def unsent(self) -> int | None:
        """Bytes written to the socket's connection but not sent yet; None when it has no connection any more."""
        ...


class Held(Protocol):
    """What the sweep reads of a connection with deliveries behind unsent bytes (a Socket.IO or Pusher one)."""

    rtt_cell: int

    def unsent(self) -> int | None:
        """Bytes written to the connection but not sent yet; None when it has no connection any more."""
        ...


def source_index(source: str) -> int:
    """Index of a source in ``DELIVERY_SOURCES`` ("unknown" for anything else, e.g. a message from an older node)."""
    return DELIVERY_SOURCES.index(source) if source in DELIVERY_SOURCES else DELIVERY_SOURCES.index("unknown")


class Stamp:
    """One broadcast on its way through fan-out: when and where it was accepted, and how its recipients fared."""

    __slots__ = ("accepted_at", "ack_id", "args", "cells", "estimator", "source")

    def __init__(self, estimator: Estimator, accepted_at: float, source: int, args: tuple[Any, ...]) -> None:
        self.estimator = estimator
        self.accepted_at = accepted_at
        self.source = source
        self.args = args  # the event's arguments: (channel, data[, {position}])
        self.cells = [0] * len(HALF_RTT)  # cells[c] = recipients written at once whose half round trip is in cell c
        self.ack_id = 0  # set when the first recipient is picked for an acknowledgement

    def pick(self, sock: Recipient, sid: str) -> bool:
        """Count down ``sock``'s acknowledgement sampling; True when this delivery asks for one (:meth:`ack_args`)."""
        left = sock.ack_countdown - 1
        if left > 0:
            sock.ack_countdown = left
            return False
        sampler = self.estimator.sampler
        sock.ack_countdown = sampler.countdown() or -1  # -1: sampling was turned off meanwhile; stays off
        protocol = WEBSOCKET if sock.upgraded else POLLING
        self.ack_id = sampler.ask(self.accepted_at, self.source, self.ack_id, sid, protocol)
        return True

    def ack_args(self) -> tuple[Any, ...]:
        """The event's arguments with ``ack`` added to its metadata argument (created when there is none)."""
        args = self.args
        meta = dict(args[2]) if len(args) > 2 and isinstance(args[2], dict) else {}
        meta["ack"] = self.ack_id
        return (*args[:2], meta)

    def buffered(self, sock: Held, protocol: int = WEBSOCKET) -> None:
        """``sock`` took the delivery behind bytes it has not sent yet: measure it once they are out."""
        self.estimator.hold(sock, self, protocol)

    def left_queue(self, sock: Recipient) -> None:
        """The delivery leaves ``sock``'s send queue now (written by the WebSocket writer or answered to a poll)."""
        label = self.source * _PROTOCOLS + (WEBSOCKET if sock.upgraded else POLLING)
        self.estimator.histogram.add(label, self.estimator.clock() - self.accepted_at + HALF_RTT[sock.rtt_cell])

    def finish(self, protocol: int = WEBSOCKET) -> None:
        """After the fan-out: add the recipients written at once, one histogram entry per non-empty cell."""
        if not any(self.cells):  # nobody here was written at once (e.g. a channel with no subscribers on this node)
            return
        base = self.estimator.clock() - self.accepted_at
        add = self.estimator.histogram.add
        label = self.source * _PROTOCOLS + protocol
        for cell, count in enumerate(self.cells):
            if count:
                add(label, base + HALF_RTT[cell], count)


class Estimator:
    """Builds the stamps of one node's fan-outs and measures the deliveries that could not be written at once."""

    def __init__(self, histogram: DeliveryHistogram, sampler: AckSampler, clock: Callable[[], float] = time.time) -> None:
        self.histogram = histogram
        self.sampler = sampler
        self.clock = clock
        # held[socket] = (its protocol's label index, stamps of deliveries written behind bytes it had not sent yet,
        # oldest first)
        self._held: dict[Held, tuple[int, list[Stamp]]] = {}
        self._sweep: asyncio.TimerHandle | None = None

    def stamp(self, accepted_at: float, source: str, args: tuple[Any, ...]) -> Stamp | None:
        """A stamp for one fan-out of an event accepted at ``accepted_at`` (None when that is unknown: 0)."""
        if not accepted_at:
            return None
        return Stamp(self, accepted_at, source_index(source), args)

    def hold(self, sock: Held, stamp: Stamp, protocol: int = WEBSOCKET) -> None:
        entry = self._held.get(sock)
        if entry is None:
            entry = self._held[sock] = (protocol, [])
        held = entry[1]
        if len(held) < MAX_HELD:
            held.append(stamp)
        if self._sweep is None:
            self._sweep = asyncio.get_running_loop().call_later(SWEEP_SECONDS, self.sweep)

    def held(self) -> int:
        """Deliveries waiting behind unsent bytes, all sockets together."""
        return sum(len(stamps) for _, stamps in self._held.values())

    def sweep(self) -> None:
        """Measure the held deliveries of every socket whose unsent bytes are out (or that closed meanwhile)."""
        self._sweep = None
        now = self.clock()
        add = self.histogram.add
        for sock, (protocol, stamps) in list(self._held.items()):
            if sock.unsent():  # None (gone) or 0 (sent): measured now
                continue
            del self._held[sock]
            half = HALF_RTT[sock.rtt_cell]
            for stamp in stamps:
                add(stamp.source * _PROTOCOLS + protocol, now - stamp.accepted_at + half)
        if self._held:
            self._sweep = asyncio.get_running_loop().call_later(SWEEP_SECONDS, self.sweep)

    def close(self) -> None:
        """Stop sweeping (shutdown)."""
        if self._sweep is not None:
            self._sweep.cancel()
            self._sweep = None
        self._held.clear()
