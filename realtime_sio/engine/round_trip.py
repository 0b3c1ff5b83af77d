"""Each connection's last round-trip time, from pings the server sends anyway, kept as two plain slots (issue 15).

Every Engine.IO client answers the server's PING with a PONG (``engineio_socket.LeanSocket``); the time between
them is one round trip over the whole path (network, proxies, the client's event loop, and anything queued ahead of
the PING in the socket's send buffer). Before the first PONG, the Engine.IO handshake gives a first figure: from
the OPEN packet the server sent to the Socket.IO CONNECT the client sends as soon as it has read it
(``sio/server.py``). Long-polling sockets measure the same way, but their round trip includes waiting for the
client's next poll request, so their figures are counted under their own ``protocol`` label ("polling").

The hook for other protocols: a connection object with the ``rtt`` and ``rtt_cell`` attributes of
:class:`RoundTrip` calls :func:`record` with each measured round trip. The Pusher protocol (``pusher:ping`` from the
server, ``pusher:pong`` back) feeds its connections through the same call, and fan-out reads ``rtt_cell`` alike.

``rtt_cell`` is the index of half the round trip on a fixed geometric grid (:data:`HALF_RTT`): fan-out adds one count
per recipient to a list at that index and turns counts into histogram observations once per broadcast
(``realtime_sio.latency``), instead of one observation per recipient.
"""

from __future__ import annotations

import math
from typing import Protocol

_FIRST = 0.0002  # seconds: half round trips below this count as 0 (cell 0, also "not measured yet")
_RATIO = 1.2  # each cell is 20 % wider than the previous one: a representative value is within ±10 % of the truth
_LAST = 60.0  # half round trips above this land in the last cell
_CELLS = 2 + math.ceil(math.log(_LAST / _FIRST) / math.log(_RATIO))

# HALF_RTT[cell] = the half round trip a cell stands for: 0 for cell 0, else the geometric middle of
# [_FIRST * _RATIO**(cell-1), _FIRST * _RATIO**cell).
HALF_RTT: tuple[float, ...] = (0.0, *(_FIRST * _RATIO ** (cell - 0.5) for cell in range(1, _CELLS)))


def cell_of(half_rtt: float) -> int:
    """The :data:`HALF_RTT` cell of a half round trip (seconds)."""
    if half_rtt < _FIRST:
        return 0
    return min(_CELLS - 1, 1 + int(math.log(half_rtt / _FIRST) / math.log(_RATIO)))


class RoundTrip(Protocol):
    """What a connection keeps of its round trip: the last one (seconds, -1.0 = not measured) and its half's cell."""

    rtt: float
    rtt_cell: int


def record(conn: RoundTrip, seconds: float) -> None:
    """Keep ``seconds`` as ``conn``'s last round trip (a negative or NaN figure from a clock step is ignored)."""
    if seconds >= 0.0:
        conn.rtt = seconds
        conn.rtt_cell = cell_of(seconds / 2)
