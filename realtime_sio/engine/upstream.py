"""The one seam to python-engineio and python-socketio internals, and to aiohttp's private names.

Everything realtime_sio overrides or reads that is not a library's public API happens here, nowhere else
(tests/unit/test_seam_boundary.py enforces it; tests/unit/test_upstream_contract.py checks every symbol below still
exists with the shape relied on). Written against python-engineio 4.15, python-socketio 5.18 and aiohttp 3.12-3.14;
``setup.cfg`` pins those ranges. Before widening a pin run ``bash scripts/test-upgrades.sh`` (docs/architecture.md).

Overrides, by upstream symbol:

- ``engineio.async_socket.AsyncSocket`` becomes :class:`LeanSocket` (``SocketTable`` swaps ``__class__`` when engineio
  registers a socket in ``AsyncServer.sockets``): ``schedule_ping``, ``receive`` (a PONG records the round trip,
  engine/round_trip.py), ``send``, ``close``, ``poll``,
  ``handle_get_request`` and ``_websocket_handler`` (upstream's ``_upgrade_websocket`` calls it; the probe/upgrade
  exchange is our own ``_upgrade_handshake``). Why: python-engineio keeps about six tasks per idle WebSocket (a task
  per inbound frame, a ``wait_for`` task around the writer, a sleeping task per ping); here pings are deadlines on
  one wheel per server (engine/deadlines.py) that also enforce the PONG deadline, and on
  a lean WebSocket (engine/connection.py) the socket is driven by callbacks: nothing waits per idle socket.
- ``engineio.AsyncServer._async`` entries ``websocket``, ``translate_request``, ``make_response`` (the aiohttp driver
  table): the driver's WebSocket class serves the lean connection the router accepted, turns permessage-deflate off
  unless asked for, and records each socket's :class:`~realtime_sio.engine.sink.FrameSink`; requests the router
  serves itself (lean WebSocket upgrades and long-polling) get their environ as is and answer with a ``Reply``.
- ``engineio.AsyncServer.create_queue``: :class:`~realtime_sio.engine.send_queue.ByteQueue` (counts bytes).
- ``socketio.AsyncServer._handle_eio_connect`` / ``_handle_connect`` / ``_handle_eio_disconnect`` /
  ``_handle_eio_message`` and ``_binary_packet``: :class:`HookedServer` turns them into public hooks
  (``session_opened``, ``namespace_connected``, ``session_closed``, ``on_malformed``); its ``_handle_eio_message``
  replaces upstream's (one decode per packet, client input that upstream answers with a traceback refused) and
  calls ``_handle_disconnect``, ``_handle_event`` and ``_handle_ack``.
- python-socketio's rooms: every room but the namespace's ``None`` room is a :class:`Room` (a dict that answers
  bidict's ``_fwdm``, which ``BaseManager.get_participants`` reads) instead of a ``bidict``; its ``pending_connect``
  and ``pending_disconnect`` hold a :class:`SidSet` per namespace (:class:`PendingSids`) instead of a list.
- ``aiohttp.web_response.SERVER_SOFTWARE``: :func:`hide_versions`.
- ``aiohttp.web.TCPSite``'s private state: :class:`RoutedSite` listens through the upgrade router.

Fan-out reaches a socket only through :meth:`LeanSocket.offer` and its :class:`~realtime_sio.engine.sink.FrameSink`.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

import socketio
from aiohttp import web
from aiohttp.web import WebSocketResponse
from engineio import exceptions, packet
from engineio.async_drivers import aiohttp as eio_aiohttp
from engineio.async_socket import AsyncSocket
from socketio import packet as sio_packet

from realtime_sio import request_bodies
from realtime_sio.engine import round_trip
from realtime_sio.engine.connection import WebSocketConnection
from realtime_sio.engine.deadlines import DeadlineWheel
from realtime_sio.engine.send_queue import ByteQueue
from realtime_sio.engine.sink import (
    BUFFERED,
    DELIVERED,
    QUEUED,
    SKIPPED,
    SLOW,
    FrameSink,
    Offer,
    TransportSink,
)
from realtime_sio.engine.upgrade_router import (
    POLLING_KEY,
    WEBSOCKET_KEY,
    LeanRequest,
    Reply,
    UpgradeRouter,
    Upgrades,
)

SERVER_HEADER = "realtime-sio"

_MAX_INBOUND = 64  # unhandled inbound packets per socket before reading from its connection pauses
_YIELD_EVERY = 32  # inbound packets handled in a row before the socket lets other callbacks run


class LeanSocket(AsyncSocket):  # type: ignore[misc]
    """Engine.IO socket with pings on the server's deadline wheel and task-free waits."""

    # The tick of this socket's deadline on the server's DeadlineWheel (engine/deadlines.py): the next PING, or with a
    # PING unanswered (last_ping set) the PONG deadline; 0 = none.
    _due: int = 0
    last_ping: float | None
    connected: bool
    # lean: the raw WebSocket (engine/connection.py) once this socket serves it in callback mode. Then nothing waits per
    # socket: sends are written at once, inbound packets are handled by a task that exists only while some are
    # pending, and its deadline on the wheel also enforces the PONG deadline.
    lean: WebSocketConnection | None = None
    _inbound: deque[str | bytes] | None = None
    _inbound_task: asyncio.Task[None] | None = None
    # sink: where fan-out may write a prebuilt frame while this socket is a plain WebSocket and nothing is queued or
    # being written (so order is kept); None while polling or upgrading. The driver records the WebSocket's sink in
    # ws_sink when it serves one (TransportSink without the lean WebSocket). writing: the writer task is mid-send.
    ws_sink: FrameSink | None = None
    sink: FrameSink | None = None
    writing: bool = False
    abort_transport: Callable[[], None] | None = None  # drops the connection at once, even with a stuck writer
    # Delivery latency (issue 15, engine/round_trip.py): the last round trip (seconds, -1.0 = not measured yet) and
    # the cell of its half; ping_sent: monotonic time of the PING (or the handshake's OPEN) awaiting its answer.
    # ack_countdown: deliveries until the next one that asks for an acknowledgement (latency/acks.py); 0 = this
    # client did not opt in. Class defaults: a socket that never measures keeps no per-instance value.
    rtt: float = -1.0
    rtt_cell: int = 0
    ping_sent: float = 0.0
    ack_countdown: int = 0

    def schedule_ping(self) -> None:
        # Only schedule a new ping when the previous ping cycle completed (the PONG arrived), as upstream does.
        if self.last_ping:
            self.last_ping = None
            self._due = self.server.deadlines.schedule(self, self.server.ping_interval, self._due)

    def deadline_due(self, tick: int) -> None:
        """The wheel's call for ``tick``: time for the next PING, or, with a PING unanswered, the PONG is overdue."""
        if tick != self._due or self.closing or self.closed:
            return
        if self.last_ping is None:
            self._ping_now()
        else:
            self._pong_overdue()

    def _ping_now(self) -> None:
        self.last_ping = time.time()
        self.ping_sent = time.monotonic()
        self.enqueue((packet.Packet(packet.PING),))
        self._due = self.server.deadlines.schedule(self, self.server.ping_timeout, self._due)

    def answered(self) -> None:
        """The client answered the PING (its PONG) or the handshake (its CONNECT): one round trip measured."""
        sent = self.ping_sent
        if sent:
            self.ping_sent = 0.0
            round_trip.record(self, time.monotonic() - sent)

    async def receive(self, pkt: Any) -> None:
        if pkt.packet_type == packet.PONG:
            self.answered()
        await super().receive(pkt)

    def _pong_overdue(self) -> None:
        """No PONG within ping_timeout: the client is gone (engineio's service task did this by polling)."""
        self._due = 0
        _spawn(self.close(wait=False, abort=False, reason=self.server.reason.PING_TIMEOUT))

    def enqueue(self, packets: Any) -> None:
        """Send packets without waiting: written now in lean mode, else queued for the transport's writer."""
        lean = self.lean
        if lean is not None:
            for pkt in packets:
                lean.write_message(pkt.encode())  # str for text packets, bytes for binary ones
            return
        for pkt in packets:
            self.queue.put_nowait(pkt)

    def offer(self, frame: bytes | None, packets: list[packet.Packet], size: int, limit: int) -> Offer:
        """Fan-out's one entry point: take one broadcast (``packets``, ``size`` encoded bytes; ``frame``: the same as
        one prebuilt WebSocket frame, None for binary) unless this socket's buffered bytes would pass ``limit``.

        Written straight to the sink when nothing is queued or in flight (order is kept): DELIVERED, or BUFFERED when
        the sink still held unsent bytes; else QUEUED for the writer (polling, upgrading, or behind a send in
        progress). The delivery latency estimate measures the last two later (latency/estimate.py).
        """
        if self.closed or self.closing:
            return SKIPPED
        queue = self.queue
        sink = self.sink
        if sink is not None and not self.writing and not queue.qsize():
            if frame is not None:
                return sink.offer(frame, limit)
            ahead = sink.buffered()
            if ahead + size > limit:
                return SLOW
            if self.lean is not None:  # binary: the lean socket frames each packet as it writes it
                self.enqueue(packets)
                return BUFFERED if ahead else DELIVERED
        if queue.bytes + size > limit:
            return SLOW
        for pkt in packets:
            queue.put_nowait(pkt)
        return QUEUED

    def unsent(self) -> int | None:
        """Bytes written to this socket's WebSocket but not sent yet; None without one (closed, polling)."""
        sink = self.sink
        return None if sink is None or sink.is_closing() else sink.buffered()

    async def drop(self) -> None:
        """Close at once, even when the writer is stuck on a client that stopped reading: no CLOSE packet, and the
        transport is aborted (a blocked ``ws.send()`` raises and the writer exits)."""
        if not self.closed and not self.closing:
            await self.close(wait=False, abort=True)
        if self.abort_transport is not None:
            self.abort_transport()

    def drop_soon(self) -> None:
        """:meth:`drop` from synchronous code (fan-out finding a slow reader, a deferred recovery)."""
        if not self.closing:
            _spawn(self.drop())

    async def send(self, pkt: Any) -> None:
        if self.lean is not None:
            if not self.closed:
                self.enqueue((pkt,))
            return
        await super().send(pkt)

    async def close(self, wait: bool = True, abort: bool = False, reason: Any = None) -> None:
        if self._due:
            self.server.deadlines.cancel(self, self._due)  # the wheel must not keep a closed socket alive
            self._due = 0
        already = self.closed
        await super().close(wait=wait, abort=abort, reason=reason)
        if not already:
            lean = self.lean
            if lean is not None:
                self.sink = None
                if abort and not lean.ended:
                    lean.abort()
                else:  # a normal close, or the client already ended it: close frame (once), then a clean TCP close
                    await lean.close()
            else:
                # Upstream does not wake what waits on the queue: a long-poll GET stayed parked for ping_interval +
                # ping_timeout (45 s) after the client left, and an aborted WebSocket's writer never closed the
                # transport. A None ends the writer (which closes the WebSocket) or answers the parked poll.
                self.queue.put_nowait(None)
            # engineio's service task used to sweep closed sockets; nothing else would for a lean or idle one.
            if self.server.sockets.get(self.sid) is self:
                del self.server.sockets[self.sid]

    async def poll(self) -> list[Any]:
        """Wait for packets to send (as upstream, without a ``wait_for`` task)."""
        try:
            async with asyncio.timeout(self.server.ping_interval + self.server.ping_timeout):
                first = await self.queue.get()
            self.queue.task_done()
        except (TimeoutError, asyncio.CancelledError):
            raise exceptions.QueueEmpty() from None
        if first is None:
            return []
        packets = [first]
        while True:
            try:
                pkt = self.queue.get_nowait()
            except asyncio.QueueEmpty:
                break
            self.queue.task_done()
            if pkt is None:
                self.queue.put_nowait(None)
                break
            packets.append(pkt)
        _left_queue(self, packets)
        return packets

    async def handle_get_request(self, environ: dict[str, Any]) -> Any:
        """A long-polling GET: the packets to send, never an empty answer.

        :meth:`close` wakes a parked poll with the end marker, which upstream answers 200 with an empty body: not an
        Engine.IO payload at all (issue 11 item 10). A normal close has queued CLOSE before that marker, so the
        poll carries ``1``; an aborted one (drain, the client's own CLOSE, a slow reader) answers NOOP ``6`` as the
        reference server does, and the client's next poll learns that the session is gone.
        """
        packets = await super().handle_get_request(environ)
        if isinstance(packets, list) and not packets:
            return [packet.Packet(packet.NOOP)]
        return packets

    async def _wait(self, ws: Any) -> Any:
        data = await ws.wait()
        if data and len(data) > self.server.max_http_buffer_size:
            raise ValueError("packet is too large")
        return data

    async def _upgrade_handshake(self, ws: Any) -> bool:
        """Polling → WebSocket upgrade (PING probe / PONG probe / UPGRADE), as upstream; True when upgraded."""
        self.upgrading = True  # hold packet sends during the upgrade
        try:
            probe = packet.Packet(encoded_packet=await self._wait(ws))
        except (OSError, ValueError):
            self.upgrading = False
            return False
        if probe.packet_type != packet.PING or probe.data != "probe":
            self.upgrading = False
            return False
        await ws.send(packet.Packet(packet.PONG, data="probe").encode())
        await self.queue.put(packet.Packet(packet.NOOP))  # end the pending poll
        try:
            upgrade = packet.Packet(encoded_packet=await self._wait(ws))
        except (OSError, ValueError):
            self.upgrading = False
            return False
        if upgrade.packet_type != packet.UPGRADE:
            self.upgraded = False
            self.upgrading = False
            return False
        self.upgraded = True
        self.upgrading = False
        return True

    async def _websocket_handler(self, ws: Any) -> bool | None:
        if self.connected:
            if not await self._upgrade_handshake(ws):
                return None
        else:
            self.connected = True
            self.upgraded = True
        if isinstance(ws, WebSocketConnection):
            self._attach(ws)
            return True  # the connection now belongs to this socket; the request that opened it is done

        async def writer() -> None:
            while True:
                try:
                    packets = await self.poll()
                except exceptions.QueueEmpty:
                    break
                if not packets:
                    break
                self.writing = True
                try:
                    for pkt in packets:
                        await ws.send(pkt.encode())
                except Exception:  # noqa: BLE001 - the peer went away; the read loop notices too
                    break
                finally:
                    self.writing = False
            self.sink = None
            await ws.close()

        writer_task = asyncio.ensure_future(writer())
        self.sink = self.ws_sink
        timeout = self.server.ping_interval + self.server.ping_timeout
        while True:
            try:
                async with asyncio.timeout(timeout):
                    raw = await self._wait(ws)
            except asyncio.CancelledError:
                break
            except Exception:  # noqa: BLE001 - timeout, oversized frame, closed or broken transport
                break
            if raw is None:
                break
            if not await self._receive_raw(raw):
                break
        self.sink = None
        await self.queue.put(None)
        await asyncio.wait_for(writer_task, timeout=None)
        await self.close(wait=False, abort=True, reason=self.server.reason.TRANSPORT_CLOSE)
        return None

    def _attach(self, connection: WebSocketConnection) -> None:
        """Serve ``connection`` in callback mode: flush what was queued (OPEN, anything held by an upgrade)."""
        self.lean = connection
        queued = []
        while not self.queue.empty():
            item = self.queue.get_nowait()
            self.queue.task_done()
            if item is not None:
                queued.append(item)
        _left_queue(self, queued)
        self.enqueue(queued)
        connection.release()  # the 101 answer (held by accept) and OPEN go out in one write
        self.sink = self.ws_sink
        connection.deliver_to(self._on_message, self._on_end)

    def _on_message(self, raw: str | bytes) -> None:
        if raw == "3":  # PONG, the only packet an idle client sends: no task needed
            if not self.closed:
                self.answered()
                self.schedule_ping()
            return
        inbound = self._inbound
        if inbound is None:
            inbound = self._inbound = deque()
        inbound.append(raw)
        if len(inbound) >= _MAX_INBOUND and self.lean is not None:
            self.lean.pause_reading()
        if self._inbound_task is None:
            self._inbound_task = asyncio.get_running_loop().create_task(self._handle_inbound())

    async def _handle_inbound(self) -> None:
        """Handle pending inbound packets in arrival order; the task ends when none are left."""
        inbound = self._inbound
        handled = 0
        lean = self.lean
        if lean is not None:
            lean.hold()  # what this socket's handlers send for these packets: one write per loop iteration
        try:
            while inbound:
                handled += 1
                if handled % _YIELD_EVERY == 0:
                    await asyncio.sleep(0)  # one client's burst must not hold the loop from everyone else
                    if lean is not None:
                        lean.hold()
                raw = inbound.popleft()
                if len(inbound) == _MAX_INBOUND // 2 and self.lean is not None:
                    self.lean.resume_reading()
                if not await self._receive_raw(raw):
                    inbound.clear()
        finally:
            if lean is not None:
                lean.release()
            self._inbound_task = None
            if not inbound:
                self._inbound = None  # ~0.7 KiB per idle socket otherwise; the next packet makes a new one

    async def _receive_raw(self, raw: str | bytes) -> bool:
        """Decode and handle one inbound Engine.IO packet; False once the socket is closed.

        An undecodable packet or an unknown packet type is dropped and reported once through the server's
        ``on_malformed`` (a count and a log line), not logged as an ERROR with a traceback as upstream does.
        """
        try:
            pkt = packet.Packet(encoded_packet=raw)
            if not 0 <= pkt.packet_type < len(packet.packet_names):
                raise exceptions.UnknownPacketError()
        except Exception as exc:  # noqa: BLE001 - whatever the client sent, it is not an Engine.IO packet
            on_malformed = getattr(self.server, "on_malformed", None)
            if on_malformed is not None:
                on_malformed(self.sid, type(exc).__name__)
            return True
        try:
            await self.receive(pkt)
        except exceptions.UnknownPacketError:
            pass
        except exceptions.SocketIsClosedError:
            return False
        except Exception:
            self.server.logger.exception("Unknown receive error")  # a bug of ours, not bad input: keep the traceback
        return True

    def _on_end(self) -> None:
        """The WebSocket ended (client close, protocol error, connection lost)."""
        self.sink = None
        if not self.closed and not self.closing:
            _spawn(self.close(wait=False, abort=True, reason=self.server.reason.TRANSPORT_CLOSE))


class Room(dict[str, str]):
    """One room's members, ``sid → eio_sid``, in half the memory of the ``bidict`` python-socketio makes for it.

    A ``bidict`` keeps a second, inverse dict. python-socketio reads the inverse of one room only, the namespace's
    ``None`` room (``sid_from_eio_sid``), which stays a ``bidict``. Every other room it reads as a mapping, in
    ``get_participants`` through bidict's private ``_fwdm``, which this class answers with itself. Each connection
    has two one-member rooms (its own sid and its user's room): 526 bytes each as a ``bidict``, 249 as a ``Room``.
    """

    __slots__ = ()

    @property
    def _fwdm(self) -> dict[str, str]:
        return self


class SidSet(dict[str, None]):
    """The sids python-socketio holds per namespace while they connect or disconnect (``pending_connect``,
    ``pending_disconnect``). Upstream keeps a list and searches it (``sid in``, ``remove``) for every socket that
    connects, disconnects or is asked whether it is connected: O(n) each, so when thousands of sockets leave together
    (each disconnect waits in the list while its handler runs) the loop spends O(n²) there: 20 % of a survivor's
    samples in a mass disconnect, which held its loop for up to 32 s at 16,667 sockets (issue 14). The same list
    methods upstream calls, in O(1), in insertion order."""

    __slots__ = ()

    def append(self, sid: str) -> None:
        self[sid] = None

    def remove(self, sid: str) -> None:
        del self[sid]


class PendingSids(dict[str, SidSet]):
    """namespace → :class:`SidSet`: upstream stores a new list for a namespace (``pending[namespace] = []``)."""

    __slots__ = ()

    def __setitem__(self, namespace: str, sids: Iterable[str]) -> None:
        if not isinstance(sids, SidSet):
            sids = SidSet((sid, None) for sid in sids)
        super().__setitem__(namespace, sids)


def _left_queue(sock: LeanSocket, packets: list[Any]) -> None:
    """Packets leave ``sock``'s send queue: a broadcast's last packet carries its latency stamp (sio/fanout.py)."""
    for pkt in packets:
        stamp = getattr(pkt, "stamp", None)
        if stamp is not None:
            stamp.left_queue(sock)


_background: set[asyncio.Task[None]] = set()  # strong references to fire-and-forget closes


def _spawn(coro: Any) -> None:
    task = asyncio.get_running_loop().create_task(coro)
    _background.add(task)
    task.add_done_callback(_background.discard)


class SocketTable(dict[str, Any]):
    """engineio's ``sockets`` dict: registers every new socket as a :class:`LeanSocket`."""

    def __setitem__(self, sid: str, sock: Any) -> None:
        if type(sock) is AsyncSocket:
            sock.__class__ = LeanSocket
        super().__setitem__(sid, sock)


# -- python-engineio's aiohttp driver ------------------------------------------------------------------------------


def _websocket_class(compress: bool, max_msg_size: int) -> type:
    """engineio's aiohttp WebSocket wrapper (``eio_aiohttp.WebSocket``: ``__call__``, ``_sock``, ``handler``) serving
    the lean connection the router accepted, with permessage-deflate under our control.

    engineio's driver always lets aiohttp negotiate deflate, which costs ~100 KB of zlib state per connection
    (python-socketio notes §3.4); we turn it off unless REALTIME_SIO_WS_COMPRESSION asks for it.
    """

    class WebSocket(eio_aiohttp.WebSocket):  # type: ignore[misc]
        async def __call__(self, environ: dict[str, Any]) -> WebSocketResponse | WebSocketConnection | None:
            connection = environ.get(WEBSOCKET_KEY)
            if connection is not None:
                # The connection itself when its socket took it over (engine/upgrade_router.py leaves it open then).
                return connection if await self._serve_lean(environ, connection) else None
            request = environ["aiohttp.request"]
            self._sock = WebSocketResponse(max_msg_size=max_msg_size, compress=compress, autoping=True)
            await self._sock.prepare(request)
            owner = getattr(self.handler, "__self__", None)  # the engineio AsyncSocket this WebSocket serves
            if isinstance(owner, LeanSocket) and request.transport is not None:
                owner.abort_transport = request.transport.abort
                if not compress:  # uncompressed frames are the same bytes for every recipient (sio/fanout.py)
                    owner.ws_sink = TransportSink(request.transport)
            self.environ = environ
            await self.handler(self)
            return self._sock

        async def _serve_lean(self, environ: dict[str, Any], connection: WebSocketConnection) -> bool:
            """Accept the upgrade the router read; True once the socket serves the connection."""
            if connection.transport.is_closing():
                return False
            connection.accept(environ["HTTP_SEC_WEBSOCKET_KEY"])
            owner = getattr(self.handler, "__self__", None)
            if isinstance(owner, LeanSocket):
                owner.abort_transport = connection.abort
                owner.ws_sink = connection
            self.environ = environ
            return bool(await self.handler(connection))

    return WebSocket


def translate_request(request: Any) -> dict[str, Any]:
    """engineio's environ: the router's own for a lean WebSocket, aiohttp's translation for everything else."""
    if isinstance(request, LeanRequest):
        return request.environ
    environ: dict[str, Any] = eio_aiohttp.translate_request(request)
    environ["wsgi.input"] = request_bodies.engineio_input(request)  # the body read under BODY_TIMEOUT
    return environ


def make_response(status: str, headers: list[tuple[str, str]], body: bytes, environ: dict[str, Any]) -> Any:
    """engineio's HTTP answer: a :class:`Reply` the router writes itself, or an aiohttp ``Response``."""
    if WEBSOCKET_KEY in environ or POLLING_KEY in environ:
        return Reply(status, headers, body if isinstance(body, bytes) else str(body).encode())
    return eio_aiohttp.make_response(status, headers, body, environ)


def install(eio: Any, *, compress: bool, max_message_bytes: int, on_malformed: Callable[[str, str], None]) -> None:
    """Make ``eio`` (python-socketio's engineio server) use the lean socket, the counting send queue and the driver
    above; undecodable Engine.IO packets go to ``on_malformed(eio_sid, error_name)``."""
    eio.sockets = SocketTable()
    eio.deadlines = DeadlineWheel()  # every LeanSocket's PING and PONG deadlines
    eio.on_malformed = on_malformed
    eio.create_queue = lambda *args, **kwargs: ByteQueue()
    eio._async = dict(
        eio._async,
        websocket=_websocket_class(compress, max_message_bytes),
        translate_request=translate_request,
        make_response=make_response,
    )


# -- python-socketio's server ------------------------------------------------------------------------------------


class HookedServer(socketio.AsyncServer):  # type: ignore[misc]
    """python-socketio's ``AsyncServer`` with its private per-session steps turned into public hooks.

    - ``session_opened(eio_sid)``: an Engine.IO session opened (after upstream's ``_handle_eio_connect``);
    - ``namespace_connected(eio_sid)``: a namespace CONNECT succeeded (after upstream's ``_handle_connect``);
    - ``session_closed(eio_sid)``: before upstream's ``_handle_eio_disconnect``;
    - ``on_malformed(eio_sid, error_name)``: a Socket.IO packet that does not decode or that no client sends is
      dropped with this call instead of the ERROR traceback engineio's handler wrapper would log
      (``_handle_eio_message`` is upstream's dispatch, decoding once, onto ``_handle_connect``,
      ``_handle_disconnect``, ``_handle_event``, ``_handle_ack`` and ``_binary_packet``).
    - ``environ_keys``: the handshake environ entries a namespace's connect handler reads. python-socketio keeps each
      session's environ for its lifetime (``AsyncServer.environ``, handed to every namespace CONNECT), every header
      included, about 1 KiB per connection; with ``environ_keys`` set only those entries are kept.
    """

    on_malformed: Callable[[str, str], None] = staticmethod(lambda eio_sid, error: None)
    environ_keys: frozenset[str] | None = None  # None: keep the whole environ, as upstream does

    def session_opened(self, eio_sid: str) -> None:
        pass

    def namespace_connected(self, eio_sid: str) -> None:
        pass

    def session_closed(self, eio_sid: str) -> None:
        pass

    async def _handle_eio_connect(self, eio_sid: str, environ: dict[str, Any]) -> Any:
        keys = self.environ_keys
        if keys is not None:
            environ = {key: value for key, value in environ.items() if key in keys}
        result = await super()._handle_eio_connect(eio_sid, environ)
        sock = self.eio.sockets.get(eio_sid)
        if isinstance(sock, LeanSocket):  # its OPEN is going out now: the CONNECT answering it is one round trip
            sock.ping_sent = time.monotonic()
        self.session_opened(eio_sid)
        return result

    async def _handle_connect(self, eio_sid: str, namespace: str | None, data: Any) -> None:
        sock = self.eio.sockets.get(eio_sid)
        if isinstance(sock, LeanSocket):
            sock.answered()
        await super()._handle_connect(eio_sid, namespace, data)
        if self.manager.sid_from_eio_sid(eio_sid, namespace or "/") is not None:
            self.namespace_connected(eio_sid)

    async def _handle_eio_disconnect(self, eio_sid: str, reason: Any) -> None:
        self.session_closed(eio_sid)
        await super()._handle_eio_disconnect(eio_sid, reason)

    async def _handle_eio_message(self, eio_sid: str, data: Any) -> None:
        """Upstream's dispatch of one inbound Socket.IO packet, decoding it once and refusing what upstream would
        answer with an ERROR traceback (every case below is client input, not a bug of ours):

        - a packet that does not decode;
        - a type a client never sends (CONNECT_ERROR, or none at all);
        - an EVENT without an event name (``42``, ``42{}``, ``42[]``, ``42[1]``) or an ACK without a list;
        - a binary packet without attachments (upstream would take every later packet as its attachment);
        - an attachment that is text, one too many, or one its placeholders do not name.
        """
        pending = self._binary_packet.get(eio_sid)
        if pending is not None:
            if not isinstance(data, bytes):  # a text packet while attachments are due: the binary packet is broken
                del self._binary_packet[eio_sid]
                self.on_malformed(eio_sid, "TextInsteadOfAttachment")
            else:
                try:
                    complete = pending.add_attachment(data)
                except Exception as exc:  # noqa: BLE001 - placeholders naming a missing attachment, one too many
                    del self._binary_packet[eio_sid]
                    self.on_malformed(eio_sid, type(exc).__name__)
                    return
                if complete:
                    del self._binary_packet[eio_sid]
                    await self._dispatch(eio_sid, pending)
                return
        try:
            pkt = self.packet_class(encoded_packet=data)
        except Exception as exc:  # noqa: BLE001 - any decode failure means the packet is unusable
            self.on_malformed(eio_sid, type(exc).__name__)
            return
        kind = pkt.packet_type
        if kind == sio_packet.CONNECT:
            await self._handle_connect(eio_sid, pkt.namespace, pkt.data)
        elif kind == sio_packet.DISCONNECT:
            await self._handle_disconnect(eio_sid, pkt.namespace, self.reason.CLIENT_DISCONNECT)
        elif kind in (sio_packet.EVENT, sio_packet.ACK):
            await self._dispatch(eio_sid, pkt)
        elif kind in (sio_packet.BINARY_EVENT, sio_packet.BINARY_ACK):
            if pkt.attachment_count < 1 or not self.manager.sid_from_eio_sid(eio_sid, pkt.namespace or "/"):
                self.on_malformed(eio_sid, "UnexpectedBinaryPacket")
                return
            self._binary_packet[eio_sid] = pkt
        else:
            self.on_malformed(eio_sid, "UnexpectedPacketType")

    async def _dispatch(self, eio_sid: str, pkt: Any) -> None:
        """An event (a list starting with its name) or an ack (a list of arguments) to upstream's handlers."""
        data = pkt.data
        if pkt.packet_type in (sio_packet.EVENT, sio_packet.BINARY_EVENT):
            if not isinstance(data, list) or not data or not isinstance(data[0], str):
                self.on_malformed(eio_sid, "EventWithoutName")
                return
            await self._handle_event(eio_sid, pkt.namespace, pkt.id, data)
        elif not isinstance(data, list):
            self.on_malformed(eio_sid, "AckWithoutList")
        else:
            await self._handle_ack(eio_sid, pkt.namespace, pkt.id, data)


# -- aiohttp -------------------------------------------------------------------------------------------------------


def hide_versions() -> None:
    """Answer ``Server: realtime-sio`` instead of aiohttp's ``Python/3.x aiohttp/3.x`` (issue 11, item 7).

    aiohttp fills the header in ``web_response.StreamResponse._prepare_headers`` from the module global
    ``aiohttp.web_response.SERVER_SOFTWARE`` (aiohttp 3.9-3.14) for every response, its own 400s for unparsable
    requests included, which no signal or middleware sees. tests/integration/test_hardening.py checks both paths.
    """
    import aiohttp.web_response

    aiohttp.web_response.SERVER_SOFTWARE = SERVER_HEADER  # type: ignore[attr-defined]


class RoutedSite(web.TCPSite):
    """aiohttp's TCP site (``web.TCPSite``: ``start``, ``stop``, ``_runner``, ``_server``, ``_host``, ``_port``, ``_backlog``,
    ``_ssl_context``, ``_bound_port``), except that each accepted connection starts at an :class:`UpgradeRouter`.

    With ``ssl_context`` the router sits above the TLS layer: it (and later the lean WebSocket or aiohttp) sees
    plaintext, and ``transport.set_protocol`` swaps the protocol of the TLS transport (asyncio and uvloop alike).
    """

    def __init__(
        self,
        runner: web.BaseRunner,
        host: str,
        port: int,
        upgrades: Upgrades,
        *,
        backlog: int = 4096,
        ssl_context: ssl.SSLContext | None = None,
        ssl_handshake_timeout: float = 10.0,
    ) -> None:
        super().__init__(runner, host, port, backlog=backlog, reuse_address=True, ssl_context=ssl_context)
        self._upgrades = upgrades
        self._handshake_timeout = ssl_handshake_timeout

    async def start(self) -> None:
        await web.BaseSite.start(self)  # registers the site with the runner
        fallback = self._runner.server
        assert fallback is not None
        upgrades = self._upgrades
        self._server = await asyncio.get_running_loop().create_server(
            lambda: UpgradeRouter(upgrades, fallback),
            self._host,
            self._port,
            backlog=self._backlog,
            reuse_address=True,
            ssl=self._ssl_context,
            ssl_handshake_timeout=self._handshake_timeout if self._ssl_context is not None else None,
        )
        if self._server.sockets:
            self._bound_port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Stop listening. Connections already accepted whose request head completes later are closed unanswered:
        the runner shuts aiohttp's handlers down right after this, and a handler started then could outlive the loop
        (asyncio's "Task was destroyed but it is pending" for ``RequestHandler.start`` at exit)."""
        self._upgrades.site.stopped = True
        await super().stop()
