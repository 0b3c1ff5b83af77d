"""Unit tests of the fan-out helpers (sio/fanout.py): prebuilt WebSocket frames and byte-counting queues."""

from __future__ import annotations

import pytest
from engineio import packet

from realtime_sio.sio.fanout import ByteQueue, websocket_frame


@pytest.mark.parametrize(("size", "header"), [(5, b"\x81\x05"), (125, b"\x81\x7d"), (126, b"\x81\x7e\x00\x7e"),
                                             (70_000, b"\x81\x7f" + (70_000).to_bytes(8, "big"))])
def test_websocket_frame_lengths(size: int, header: bytes) -> None:
    """Frames are FIN+text, unmasked, with the RFC 6455 7/16/64-bit length forms."""
    frame = websocket_frame("x" * size)
    assert frame.startswith(header) and frame.endswith(b"x" * size) and len(frame) == len(header) + size


def test_websocket_frame_utf8_length_counts_bytes() -> None:
    """The length field counts UTF-8 bytes, not characters."""
    assert websocket_frame("é") == b"\x81\x02" + "é".encode()


async def test_byte_queue_tracks_encoded_bytes() -> None:
    """ByteQueue.bytes rises on put and falls on get, by each packet's encoded size; None counts zero."""
    q = ByteQueue()
    q.put_nowait(packet.Packet(packet.MESSAGE, "hello"))
    q.put_nowait(None)
    assert q.bytes == len("4hello")
    await q.get()
    assert q.bytes == 0
