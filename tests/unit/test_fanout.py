"""Unit tests of the fan-out helpers (sio/fanout.py): prebuilt WebSocket frames and byte-counting queues."""

from __future__ import annotations

import pytest
from engineio import packet

from realtime_sio.engine.send_queue import ByteQueue
from realtime_sio.sio.fanout import LeanManager, websocket_frame


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


async def test_byte_queue_holds_no_deque_while_empty() -> None:
    """An idle socket's queue costs no deque (a lean WebSocket rarely queues); it comes back for the next packet."""
    q = ByteQueue()
    assert q.empty() and q.qsize() == 0 and q._items is None
    q.put_nowait(packet.Packet(packet.MESSAGE, "a"))
    q.put_nowait(packet.Packet(packet.MESSAGE, "b"))
    assert q.qsize() == 2
    assert (await q.get()).data == "a" and q.get_nowait().data == "b"
    assert q.empty() and q._items is None


def test_room_index_follows_enter_leave_and_disconnect() -> None:
    """LeanManager's sid → rooms index agrees with python-socketio's rooms after joins, leaves and a disconnect."""
    manager = LeanManager(max_buffered_bytes=1 << 20)
    for sid, eio in (("a", "ea"), ("b", "eb")):
        manager.basic_enter_room(sid, "/", None, eio_sid=eio)
        manager.basic_enter_room(sid, "/", sid, eio_sid=eio)
    manager.basic_enter_room("a", "/", "news")
    manager.basic_enter_room("a", "/", "private-user.1")
    manager.basic_enter_room("b", "/", "news")
    assert sorted(manager.get_rooms("a", "/")) == ["a", "news", "private-user.1"]
    manager.basic_leave_room("a", "/", "private-user.1")
    assert "private-user.1" not in manager.rooms["/"]
    manager.basic_disconnect("a", "/")
    assert manager.get_rooms("a", "/") == []
    assert "a" not in manager.rooms["/"] and "a" not in manager.rooms["/"][None]
    assert dict(manager.rooms["/"]["news"]) == {"b": "eb"}
    manager.basic_close_room("news", "/")
    assert manager.get_rooms("b", "/") == ["b"]
    manager.basic_disconnect("b", "/")
    assert manager.rooms == {} and manager.memberships == {}


def _served_manager() -> LeanManager:
    """A LeanManager attached to a server built as the app builds it (sio/server.create: no library log handler)."""
    from realtime_sio.settings import Settings
    from realtime_sio.sio import server as sio_server

    manager = LeanManager(max_buffered_bytes=1 << 20)
    sio_server.create(Settings(), manager)
    return manager


@pytest.mark.parametrize("namespace", ["/", "/admin"])
@pytest.mark.parametrize(
    "data",
    [("room.1", {"n": 1, "name": "Zoë"}), None, "text", ("presence-chat.1", [{"user_id": 1, "user_info": {"a": [1.5, None]}}])],
    ids=["channel and object", "none", "one string", "member list"],
)
def test_a_text_event_is_encoded_as_the_library_encodes_it(namespace: str, data: object) -> None:
    """The direct JSON path writes the same Engine.IO packet, frame and size as python-socketio's Packet.encode."""
    from socketio import packet as sio_packet

    manager = _served_manager()
    args = list(data) if isinstance(data, tuple) else ([] if data is None else [data])
    expected = "4" + sio_packet.Packet(sio_packet.EVENT, namespace=namespace, data=["ev", *args]).encode()
    frame, packets, size = manager._encode("ev", data, namespace, None)
    assert [p.encode() for p in packets] == [expected] and size == len(expected)
    assert frame == websocket_frame(expected)


def test_an_event_with_bytes_goes_out_as_binary_attachments() -> None:
    """Bytes anywhere in the payload take the library's binary path: placeholder packet plus attachment, no frame."""
    manager = _served_manager()
    frame, packets, _ = manager._encode("ev", ("room.1", {"blob": b"\x00\x01"}), "/", None)
    assert frame is None and len(packets) == 2
    assert packets[0].encode().startswith("451-") and packets[1].encode() == b"\x00\x01"
