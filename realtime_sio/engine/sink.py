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
DELIVERED: Literal[1] = 1  # written now, or queued behind what the socket is already sending
SKIPPED: Literal[0] = 0  # the socket is closing: nothing to do
SLOW: Literal[-1] = -1  # taking it would pass the socket's send-buffer bound: a slow reader, to be disconnected
Offer = Literal[1, 0, -1]


class FrameSink(Protocol):
    """A WebSocket's byte sink for prebuilt frames (unmasked, server to client)."""

    def write(self, data: bytes) -> None:
        """Write whole frames; dropped silently once the connection is closing."""
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

    def write(self, data: bytes) -> None:
        if not self._transport.is_closing():
            self._transport.write(data)

    def buffered(self) -> int:
        return self._transport.get_write_buffer_size()

    def is_closing(self) -> bool:
        return self._transport.is_closing()
