"""Where fan-out writes a connection's prebuilt frames: one typed interface for every kind of WebSocket.

A broadcast is encoded once into one WebSocket frame (:func:`realtime_sio.engine.frames.frame`) and the same bytes
are written to every idle recipient. The recipient is a :class:`FrameSink`: the lean
:class:`~realtime_sio.engine.connection.WebSocketConnection` implements it itself, and :class:`TransportSink` adapts
the transport under aiohttp's ``WebSocketResponse`` (``REALTIME_SIO_LEAN_WEBSOCKET=false``). Fan-out code touches
nothing else of a connection.
"""

from __future__ import annotations

import asyncio
from typing import Literal, Protocol

# What a recipient did with a delivery offered to it (engine/upstream.py LeanSocket.offer):
# (every outcome above 0 is a delivery; the latency estimate measures them differently, latency/estimate.py)
DELIVERED: Literal[1] = 1  # written now, nothing unsent ahead of it
BUFFERED: Literal[2] = 2  # written now, behind bytes the connection has not sent yet
QUEUED: Literal[3] = 3  # queued behind what the socket is already sending (polling, upgrading, a send in progress)
SKIPPED: Literal[0] = 0  # the socket is closing: nothing to do
SLOW: Literal[-1] = -1  # taking it would pass the socket's send-buffer bound: a slow reader, to be disconnected
Offer = Literal[1, 2, 3, 0, -1]


class FrameSink(Protocol):
    """A WebSocket's byte sink for prebuilt frames (unmasked, server to client)."""

    def offer(self, data: bytes, limit: int) -> Offer:
        """Fan-out's write: ``data`` (whole frames) unless the connection is closing (SKIPPED) or it would leave more
        than ``limit`` bytes unsent (SLOW, nothing written); DELIVERED when nothing unsent was ahead of it, else
        BUFFERED. One call per recipient, so the checks and the write cost one method call between them."""
        ...

    def buffered(self) -> int:
        """Bytes accepted but not yet sent (the transport's write buffer): the slow-reader bound reads it."""
        ...

    def is_closing(self) -> bool: ...


class TransportSink:
    """:class:`FrameSink` over the transport of an aiohttp ``WebSocketResponse`` (no compression: the frames we
    build are exactly what aiohttp would have written)."""

    __slots__ = ("_transport",)

    def __init__(self, transport: asyncio.Transport) -> None:
        self._transport = transport

    def offer(self, data: bytes, limit: int) -> Offer:
        transport = self._transport
        if transport.is_closing():
            return SKIPPED
        ahead = transport.get_write_buffer_size()
        if ahead + len(data) > limit:
            return SLOW
        transport.write(data)
        return BUFFERED if ahead else DELIVERED

    def buffered(self) -> int:
        return self._transport.get_write_buffer_size()

    def is_closing(self) -> bool:
        return self._transport.is_closing()
