"""Sampled delivery acknowledgements: which deliveries ask for one, and what an acknowledgement measured.

Wire shape (issue 15). A client opts in at connect with ``auth.latency = true`` (the served ``/client/recovery.mjs``
does). The server then picks that socket's deliveries at ``DELIVERY_ACK_SAMPLE_RATE``, independently for each
delivery: a countdown drawn from the geometric distribution, so the cost is one integer decrement per delivery. A
picked delivery carries ``ack: <id>`` in its metadata argument (``{position, ack}``, the argument after the data;
created as ``{ack}`` when the event has no position); the client answers ``latency:ack`` with that id. The server
measures acceptance → acknowledgement with its own clock (acceptance is the accepting node's wall clock: nodes keep
NTP time, as the server-side delivery histogram already assumes).

Every other client gets the same bytes as before: the marked frame is built once per fan-out, only when some
recipient was picked. An acknowledgement counts only if this node asked that socket for that id within
``WINDOW`` seconds, once; anything else is dropped with a reason code (``bad_input`` and a throttled log line).
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from typing import Any

from realtime_sio.metrics import DELIVERY_PROTOCOLS, DeliveryHistogram

ACK_INVALID = "latency_ack_invalid"  # not a positive integer id
ACK_UNKNOWN = "latency_ack_unknown"  # an id this socket was not asked for, already acknowledged, or too old

WINDOW = 60.0  # seconds an asked acknowledgement is awaited
MAX_PENDING = 10_000  # fan-outs with an outstanding acknowledgement, oldest dropped first
_MAX_ID = 2**53 - 1  # a JavaScript client's safe integers


def parse_ack(raw: Any) -> int | None:
    """The acknowledged id, or None when ``raw`` is not a positive integer a JavaScript client could send."""
    if type(raw) is int and 0 < raw <= _MAX_ID:
        return raw
    return None


class AckSampler:
    """Picks deliveries to acknowledge and records what their acknowledgements measured."""

    def __init__(
        self,
        rate: float,
        histogram: DeliveryHistogram,
        *,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        self.rate = rate
        self._histogram = histogram
        self._clock = clock
        self._monotonic = monotonic
        self._random = (rng or random.Random()).random
        self._next_id = 0
        # pending[id] = (accepted_at, source index, asked at (monotonic), {sid: protocol index}); insertion = age order
        self._pending: dict[int, tuple[float, int, float, dict[str, int]]] = {}

    def countdown(self) -> int:
        """Deliveries until the next picked one (>= 1), geometric with mean 1/rate; 0 when sampling is off."""
        rate = self.rate
        if rate <= 0.0:
            return 0
        if rate >= 1.0:
            return 1
        return 1 + int(math.log(1.0 - self._random()) / math.log(1.0 - rate))

    def ask(self, accepted_at: float, source: int, ack_id: int, sid: str, protocol: int) -> int:
        """Expect ``sid`` to acknowledge the fan-out ``ack_id`` (0 = give it an id now); returns the id."""
        if not ack_id:
            now = self._monotonic()
            pending = self._pending
            while pending:
                oldest = next(iter(pending))
                if len(pending) < MAX_PENDING and pending[oldest][2] > now - WINDOW:
                    break
                del pending[oldest]
            self._next_id += 1
            ack_id = self._next_id
            pending[ack_id] = (accepted_at, source, now, {})
        entry = self._pending.get(ack_id)
        if entry is not None:
            entry[3][sid] = protocol
        return ack_id

    def acknowledge(self, sid: str, raw: Any) -> str | None:
        """Record ``sid``'s acknowledgement ``raw``; None when it counted, else the reason code it was dropped for."""
        ack_id = parse_ack(raw)
        if ack_id is None:
            return ACK_INVALID
        entry = self._pending.get(ack_id)
        if entry is None or self._monotonic() - entry[2] > WINDOW:
            return ACK_UNKNOWN
        accepted_at, source, _, asked = entry
        protocol = asked.pop(sid, None)
        if protocol is None:
            return ACK_UNKNOWN
        self._histogram.add(source * len(DELIVERY_PROTOCOLS) + protocol, max(0.0, self._clock() - accepted_at))
        return None
