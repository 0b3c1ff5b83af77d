"""WebSocketConnection (engine/connection.py) over a real socket pair: fan-out's offer, and held writes (what is held
goes out as one write, in order, at release or at the loop's next iteration at the latest; a close frame never
overtakes held data)."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

from realtime_sio.engine.connection import WebSocketConnection
from realtime_sio.engine.frames import OP_TEXT, frame
from realtime_sio.engine.sink import BUFFERED, DELIVERED, SKIPPED, SLOW


class CountingTransport:
    """The real transport of one end of a socket pair, counting ``write`` calls (each one is a send system call)."""

    def __init__(self, transport: asyncio.Transport) -> None:
        self._transport = transport
        self.writes: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.writes.append(bytes(data))
        self._transport.write(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


async def connected() -> tuple[WebSocketConnection, CountingTransport, socket.socket]:
    ours, theirs = socket.socketpair()
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_connection(asyncio.Protocol, sock=ours)
    counting = CountingTransport(transport)  # type: ignore[arg-type]
    connection = WebSocketConnection(counting, max_size=1 << 16)  # type: ignore[arg-type]
    transport.set_protocol(connection)
    theirs.setblocking(False)
    return connection, counting, theirs


async def received(peer: socket.socket, size: int) -> bytes:
    loop = asyncio.get_running_loop()
    data = b""
    while len(data) < size:
        data += await asyncio.wait_for(loop.sock_recv(peer, 65536), 5)
    return data


async def test_the_101_answer_and_what_follows_it_go_out_in_one_write() -> None:
    """accept() holds its 101: the OPEN packet written right after it shares the write; the peer reads both in order."""
    connection, transport, peer = await connected()
    try:
        connection.accept("dGhlIHNhbXBsZSBub25jZQ==")
        connection.write_message("0{}")
        assert transport.writes == []
        connection.release()
        assert len(transport.writes) == 1
        data = await received(peer, len(transport.writes[0]))
        assert data.startswith(b"HTTP/1.1 101 ") and data.endswith(frame(OP_TEXT, b"0{}"))
    finally:
        connection.abort()
        peer.close()


async def test_held_writes_are_released_by_the_next_loop_iteration_and_close_keeps_their_order() -> None:
    """A holder that never releases (its handler awaits) still gets its writes out at the next iteration; a close
    frame written while writes are held follows them."""
    connection, transport, peer = await connected()
    try:
        connection.accept("dGhlIHNhbXBsZSBub25jZQ==")
        connection.release()
        connection.hold()
        connection.write_message("42a")
        connection.write_message("42b")
        assert len(transport.writes) == 1  # the 101 only
        await asyncio.sleep(0)  # the next loop iteration
        assert transport.writes[1] == frame(OP_TEXT, b"42a") + frame(OP_TEXT, b"42b")
        connection.write_message("42c")  # not held any more: straight out
        assert transport.writes[2] == frame(OP_TEXT, b"42c")
        connection.hold()
        connection.write_message("42d")
        await connection.close()
        assert transport.writes[3] == frame(OP_TEXT, b"42d") and transport.writes[4][:1] == b"\x88"  # then CLOSE
        await received(peer, sum(len(w) for w in transport.writes))
    finally:
        connection.abort()
        peer.close()


async def test_an_aborted_connection_drops_what_was_held() -> None:
    """abort() is "unsent data included": held bytes are not written after it."""
    connection, transport, peer = await connected()
    try:
        connection.accept("dGhlIHNhbXBsZSBub25jZQ==")
        connection.write_message("0{}")
        connection.abort()
        connection.release()
        await asyncio.sleep(0)
        assert transport.writes == []
    finally:
        peer.close()


async def test_offer_tells_delivered_buffered_slow_and_skipped() -> None:
    """Fan-out's offer: DELIVERED with nothing unsent ahead, BUFFERED behind unsent (or held) bytes, SLOW without
    writing when the unsent bytes would pass the limit, SKIPPED once the connection is closing."""
    connection, transport, peer = await connected()
    try:
        connection.accept("dGhlIHNhbXBsZSBub25jZQ==")
        connection.release()
        one = frame(OP_TEXT, b"42x")
        assert connection.offer(one, 1 << 20) == DELIVERED
        connection.hold()
        connection.write(b"abc")
        assert connection.offer(one, 3 + len(one) - 1) == SLOW  # held bytes count as unsent
        assert connection.offer(one, 3 + len(one)) == BUFFERED
        connection.release()
        connection.write(b"\0" * (16 << 20))  # the peer reads nothing: most of it stays in the transport's buffer
        ahead = connection.buffered()
        assert ahead > 0
        writes = len(transport.writes)
        assert connection.offer(one, ahead + len(one) - 1) == SLOW and len(transport.writes) == writes
        assert connection.offer(one, ahead + len(one)) == BUFFERED and len(transport.writes) == writes + 1
        connection.end()
        assert connection.offer(one, 1 << 30) == SKIPPED
    finally:
        connection.abort()
        peer.close()
