"""A leaner Engine.IO socket: the same protocol as python-engineio's ``AsyncSocket`` with fewer tasks per connection.

python-engineio keeps about six asyncio tasks alive per idle WebSocket (python-socketio notes §3.4): a fresh task
per inbound frame (``ensure_future(websocket_wait())`` inside ``wait_for``), a ``wait_for`` task around the writer's
``queue.get()`` (Python 3.11), and a task sleeping ``ping_interval`` for every ping. Tasks and their coroutine
frames are the largest per-connection cost after aiohttp's own objects. Here pings are loop timers that also
enforce the PONG deadline, and:

- on a lean WebSocket (:mod:`realtime_sio.engine.connection`, the default) the socket is driven by callbacks: nothing
  waits per idle socket; sends are written at once; inbound packets are handled by a task that exists only while
  some are pending (it yields every few packets, and reading pauses when they pile up);
- on aiohttp's WebSocket (``REALTIME_SIO_LEAN_WEBSOCKET=false``) a read loop and a writer wait under
  ``asyncio.timeout`` (no extra task per wait).

Everything else, including the polling→WebSocket upgrade, is python-engineio's own code path. Undecodable packets
go to the server's ``on_malformed`` instead of an ERROR traceback. Measured effect: ``docs/performance.md``.

Sockets become :class:`LeanSocket` through :class:`SocketTable`, engineio's ``sockets`` dict, at the moment the
server registers them, so the server's connect logic itself stays untouched.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from typing import Any

from engineio import exceptions, packet
from engineio.async_socket import AsyncSocket

from realtime_sio.engine.connection import WebSocketConnection

_MAX_INBOUND = 64  # unhandled inbound packets per socket before reading from its connection pauses
_YIELD_EVERY = 32  # inbound packets handled in a row before the socket lets other callbacks run


class LeanSocket(AsyncSocket):  # type: ignore[misc]
    """Engine.IO socket with timer-driven pings and task-free waits."""

    _ping_timer: asyncio.TimerHandle | None = None  # next PING, or (PING sent) the PONG deadline
    last_ping: float | None
    connected: bool
    # lean: the raw WebSocket (engine/connection.py) once this socket serves it in callback mode. Then nothing waits per
    # socket: sends are written at once, inbound packets are handled by a task that exists only while some are
    # pending, and the ping timer also enforces the PONG deadline.
    lean: WebSocketConnection | None = None
    _inbound: deque[str | bytes] | None = None
    _inbound_task: asyncio.Task[None] | None = None
    # direct: the TCP transport while this socket is a plain WebSocket; fan-out may write a prebuilt frame straight
    # to it when nothing is queued or being written (so order is kept). writing: the writer task is mid-send.
    ws_transport: Any = None
    direct: Any = None
    writing: bool = False

    def schedule_ping(self) -> None:
        # Only schedule a new ping when the previous ping cycle completed (the PONG arrived), as upstream does.
        if self.last_ping:
            self.last_ping = None
            if self._ping_timer is not None:
                self._ping_timer.cancel()  # the PONG deadline
            self._ping_timer = asyncio.get_running_loop().call_later(self.server.ping_interval, self._ping_now)

    def _ping_now(self) -> None:
        self._ping_timer = None
        if not self.closing and not self.closed:
            self.last_ping = time.time()
            self.enqueue((packet.Packet(packet.PING),))
            self._ping_timer = asyncio.get_running_loop().call_later(self.server.ping_timeout, self._pong_overdue)

    def _pong_overdue(self) -> None:
        """No PONG within ping_timeout: the client is gone (engineio's service task did this by polling)."""
        self._ping_timer = None
        if not self.closing and not self.closed:
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

    async def send(self, pkt: Any) -> None:
        if self.lean is not None:
            if not self.closed:
                self.enqueue((pkt,))
            return
        await super().send(pkt)

    async def close(self, wait: bool = True, abort: bool = False, reason: Any = None) -> None:
        if self._ping_timer is not None:
            self._ping_timer.cancel()
            self._ping_timer = None
        already = self.closed
        await super().close(wait=wait, abort=abort, reason=reason)
        if not already:
            lean = self.lean
            if lean is not None:
                self.direct = None
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
            self.direct = None
            await ws.close()

        writer_task = asyncio.ensure_future(writer())
        self.direct = self.ws_transport
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
        self.direct = None
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
        self.enqueue(queued)
        self.direct = self.ws_transport
        connection.deliver_to(self._on_message, self._on_end)

    def _on_message(self, raw: str | bytes) -> None:
        if raw == "3":  # PONG, the only packet an idle client sends: no task needed
            if not self.closed:
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
        try:
            while inbound:
                handled += 1
                if handled % _YIELD_EVERY == 0:
                    await asyncio.sleep(0)  # one client's burst must not hold the loop from everyone else
                raw = inbound.popleft()
                if len(inbound) == _MAX_INBOUND // 2 and self.lean is not None:
                    self.lean.resume_reading()
                if not await self._receive_raw(raw):
                    inbound.clear()
        finally:
            self._inbound_task = None

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
        self.direct = None
        if not self.closed and not self.closing:
            _spawn(self.close(wait=False, abort=True, reason=self.server.reason.TRANSPORT_CLOSE))


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
