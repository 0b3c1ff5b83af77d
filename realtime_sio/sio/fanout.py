"""Lean room fan-out and bounded per-connection send buffers.

python-socketio's ``AsyncManager.emit`` encodes a broadcast once but then creates one asyncio task per recipient
(python-socketio notes §1.4), which dominates CPU at 10k-member rooms. ``LeanManager.emit`` keeps the encode-once
packet and puts it straight onto each recipient's Engine.IO send queue: no task, no await per recipient. Emits with
an ack callback keep the library path.

Every send queue counts the bytes it holds (:class:`ByteQueue`); a recipient whose queue would pass
``max_buffered_bytes`` is a slow reader and is dropped (``on_slow_consumer`` is told, for the metric and the log), so
one client that stops reading cannot grow memory without bound.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, NamedTuple

import socketio
from engineio import packet as eio_packet
from socketio import packet as sio_packet

from realtime_sio.engine.frames import OP_TEXT, frame
from realtime_sio.engine.sink import BUFFERED, DELIVERED, SLOW
from realtime_sio.engine.upstream import LeanSocket, PendingSids, Room
from realtime_sio.latency.estimate import Stamp

# json.dumps builds a new encoder for every call with separators; this one is built once (the same output)
_COMPACT = json.JSONEncoder(separators=(",", ":"))


def websocket_frame(text: str) -> bytes:
    """An unmasked, uncompressed, final WebSocket text frame (RFC 6455 §5.2), as a server sends it."""
    return frame(OP_TEXT, text.encode())


class Outgoing(NamedTuple):
    """One event encoded for one room's participants (:meth:`LeanManager.prepare`), written by
    :meth:`LeanManager.send`."""

    event: str
    namespace: str
    participants: Iterable[tuple[str, str]]  # (sid, eio_sid), read when sent
    skip: set[Any]
    stamp: Stamp | None
    frame: bytes | None  # the prebuilt WebSocket frame (None for binary)
    packets: list[Any]  # the same as Engine.IO packets (queued for a socket that cannot take the frame now)
    size: int  # their encoded bytes


class LeanManager(socketio.AsyncManager):  # type: ignore[misc]
    """In-memory client manager with task-free fan-out and slow-reader protection."""

    def __init__(self, max_buffered_bytes: int, on_slow_consumer: Callable[[str], None] | None = None) -> None:
        super().__init__()
        self.pending_connect: PendingSids = PendingSids()
        self.pending_disconnect: PendingSids = PendingSids()
        self.max_buffered_bytes = max_buffered_bytes
        self.on_slow_consumer = on_slow_consumer or (lambda sid: None)
        self.last_delivered = 0  # recipients of the most recent emit (read by the broadcaster for metrics)
        # memberships[namespace][sid] = rooms the sid is in (its own sid room and None, "everyone", included)
        self.memberships: dict[str, dict[str, set[Any]]] = {}
        # Called with (sid, namespace) once the client's CONNECT packet is out: what the connect handler prepared
        # (recovery of the automatic rooms) is sent after it, as the Socket.IO protocol orders it.
        self.on_connected: Callable[[str, str], Awaitable[None]] | None = None

    async def connect(self, sid: str, namespace: str) -> Any:
        """python-socketio calls this right after it sent the CONNECT packet (``always_connect=False``)."""
        result = await super().connect(sid, namespace)
        if self.on_connected is not None:
            await self.on_connected(sid, namespace)
        return result

    # python-socketio finds a client's rooms by scanning every room of the namespace (a copy of the whole room dict
    # per disconnect): O(rooms) per disconnect, so 10k clients leaving together cost O(10k x 11k rooms), seconds of
    # blocked event loop. These overrides keep a reverse index instead; the rooms structure itself is unchanged.
    def basic_enter_room(self, sid: str, namespace: str, room: Any, eio_sid: str | None = None) -> None:
        if room is None:  # the namespace's own room stays upstream's bidict (it looks up sids by eio_sid)
            super().basic_enter_room(sid, namespace, room, eio_sid=eio_sid)
        else:  # upstream's basic_enter_room, with a Room (half a bidict's memory) for a new room
            if eio_sid is None and namespace not in self.rooms:
                raise ValueError("sid is not connected to requested namespace")
            if sid != room and self.is_sid_room(namespace, room):
                raise ValueError("cannot enter a sid room")
            rooms = self.rooms.setdefault(namespace, {})
            members = rooms.get(room)
            if members is None:
                members = rooms[room] = Room()
            members[sid] = rooms[None][sid] if eio_sid is None else eio_sid
        self.memberships.setdefault(namespace, {}).setdefault(sid, set()).add(room)

    def basic_leave_room(self, sid: str, namespace: str, room: Any) -> None:
        super().basic_leave_room(sid, namespace, room)
        by_sid = self.memberships.get(namespace)
        rooms = by_sid.get(sid) if by_sid is not None else None
        if rooms is not None:
            rooms.discard(room)
            if not rooms:
                del by_sid[sid]  # type: ignore[union-attr]
                if not by_sid:
                    del self.memberships[namespace]

    def get_rooms(self, sid: str, namespace: str) -> list[Any]:
        return [room for room in self.memberships.get(namespace, {}).get(sid, ()) if room is not None]

    def basic_disconnect(self, sid: str, namespace: str, **kwargs: Any) -> None:
        for room in list(self.memberships.get(namespace, {}).get(sid, ())):
            self.basic_leave_room(sid, namespace, room)
        # The rest is upstream's basic_disconnect (base_manager.py) without its scan of every room.
        self.callbacks.pop(sid, None)
        for pending in (self.pending_connect, self.pending_disconnect):
            waiting = pending.get(namespace)
            if waiting is not None and sid in waiting:
                waiting.remove(sid)
                if not waiting:
                    del pending[namespace]

    async def emit(
        self,
        event: str,
        data: Any,
        namespace: str,
        room: Any = None,
        skip_sid: Any = None,
        callback: Any = None,
        to: Any = None,
        **kwargs: Any,
    ) -> None:
        if callback is not None:
            await super().emit(event, data, namespace, room=room, skip_sid=skip_sid, callback=callback, to=to, **kwargs)
            return
        self.last_delivered = self.fanout(event, data, namespace, to or room, skip_sid)

    def _encode(self, event: str, data: Any, namespace: str, stamp: Stamp | None) -> tuple[bytes | None, list[Any], int]:
        """(prebuilt WebSocket frame or None for binary, Engine.IO packets, their encoded size) of one event."""
        args = list(data) if isinstance(data, tuple) else ([] if data is None else [data])
        packet_class = self.server.packet_class
        try:
            # Text: JSON straight away, as packet_class.encode writes it. Its constructor would first walk the whole
            # payload looking for bytes (data_is_binary), the larger part of the cost for a presence member list.
            dumps = packet_class.json.dumps
            doc = [event, *args]
            body = _COMPACT.encode(doc) if dumps is json.dumps else dumps(doc, separators=(",", ":"))
        except TypeError:  # bytes somewhere (or something JSON cannot hold): the library's path decides
            body = None
        if body is not None:
            text = f"2{body}" if namespace in ("/", None) else f"2{namespace},{body}"
            eio_pkt = eio_packet.Packet(eio_packet.MESSAGE, text)
            if stamp is not None:
                eio_pkt.stamp = stamp
            encoded_text = eio_pkt.encode()
            return websocket_frame(encoded_text), [eio_pkt], len(encoded_text)
        encoded = packet_class(sio_packet.EVENT, namespace=namespace, data=[event, *args]).encode()
        parts = encoded if isinstance(encoded, list) else [encoded]
        eio_pkts = [eio_packet.Packet(eio_packet.MESSAGE, p) for p in parts]
        if stamp is not None:
            eio_pkts[-1].stamp = stamp  # a queued copy is measured when it leaves the queue (engine/upstream.py)
        size = sum(len(p.encode()) for p in eio_pkts)
        # One text packet (no binary attachments) can go out as one prebuilt WebSocket frame for every recipient.
        frame = websocket_frame(eio_pkts[0].encode()) if len(eio_pkts) == 1 and not eio_pkts[0].binary else None
        return frame, eio_pkts, size

    def fanout(self, event: str, data: Any, namespace: str, room: Any, skip_sid: Any, stamp: Stamp | None = None) -> int:
        """Queue one encoded packet for every participant of ``room`` except ``skip_sid``; returns recipients.

        With a ``stamp`` (a broadcast event, latency/estimate.py), each delivery is counted for the latency estimate
        and the recipients that asked for acknowledgements are picked at their sample rate (one marked frame).
        """
        outgoing = self.prepare(event, data, namespace, room, skip_sid, stamp)
        return 0 if outgoing is None else self.send(outgoing)

    def prepare(
        self, event: str, data: Any, namespace: str, room: Any, skip_sid: Any, stamp: Stamp | None = None
    ) -> Outgoing | None:
        """:meth:`fanout`'s first half: the event encoded for ``room`` (None when nobody here is in it), to be written
        by :meth:`send`. Nothing may change the room in between: the bus prepares a batch of events, then sends them
        all (publish/delivery.py), with no await between."""
        rooms = self.rooms.get(namespace)
        if rooms is None:
            return None
        if isinstance(room, str):
            # Nothing in send() changes a room synchronously (a dropped socket leaves from its own task), so the
            # room's dict is iterated as is; python-socketio's get_participants copies it per emit.
            members = rooms.get(room)
            if not members:
                return None
            participants: Iterable[tuple[str, str]] = members.items()
        else:
            participants = self.get_participants(namespace, room)
        skip = set(skip_sid) if isinstance(skip_sid, list) else {skip_sid}
        return Outgoing(event, namespace, participants, skip, stamp, *self._encode(event, data, namespace, stamp))

    def send(self, outgoing: Outgoing) -> int:
        """:meth:`fanout`'s second half: write a prepared event to every participant; returns recipients."""
        event, namespace, participants, skip, stamp, frame, eio_pkts, size = outgoing
        marked: tuple[bytes | None, list[Any], int] | None = None  # the frame asking for an acknowledgement
        cells = stamp.cells if stamp is not None else []
        sockets: dict[str, LeanSocket] = self.server.eio.sockets
        limit = self.max_buffered_bytes
        delivered = 0
        for sid, eio_sid in participants:
            if sid in skip:
                continue
            sock = sockets.get(eio_sid)
            if sock is None:
                continue
            if stamp is None:
                outcome = sock.offer(frame, eio_pkts, size, limit)
            else:
                if sock.ack_countdown > 0 and stamp.pick(sock, sid):
                    if marked is None:
                        marked = self._encode(event, stamp.ack_args(), namespace, stamp)
                    outcome = sock.offer(*marked, limit)
                else:
                    outcome = sock.offer(frame, eio_pkts, size, limit)
                if outcome == DELIVERED:
                    cells[sock.rtt_cell] += 1
                elif outcome == BUFFERED:
                    stamp.buffered(sock)
            if outcome > 0:
                delivered += 1
            elif outcome == SLOW:
                self.on_slow_consumer(eio_sid)  # counted and logged by the app
                sock.drop_soon()
        return delivered

    def has_members(self, namespace: str, room: str) -> bool:
        """Whether ``room`` has a socket on this node (no copy of the room table)."""
        rooms = self.rooms.get(namespace)
        return bool(rooms and rooms.get(room))

    def channel_counts(self, namespace: str = "/") -> dict[str, int]:
        """Channel → local subscriber count; each socket's own sid room is not a channel."""
        # rooms[namespace][room] = bidict(sid → eio_sid); room None holds every client, and each sid has its own room
        rooms = self.rooms.get(namespace, {})
        everyone = rooms.get(None, {})
        return {room: len(members) for room, members in rooms.items() if room is not None and room not in everyone and members}
