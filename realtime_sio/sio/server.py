"""AsyncServer factory: transports, CORS, ping, message limits, the connect deadline, WebSocket compression and the lean
fan-out manager."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import socketio
from aiohttp.web import WebSocketResponse
from engineio.async_drivers import aiohttp as eio_aiohttp

from realtime_sio import request_bodies
from realtime_sio.engine.connection import WebSocketConnection
from realtime_sio.engine.engineio_socket import SocketTable
from realtime_sio.engine.upgrade_router import WEBSOCKET_KEY, LeanRequest, Reply
from realtime_sio.settings import Settings
from realtime_sio.sio.fanout import LeanManager


def _websocket_class(compress: bool, max_msg_size: int) -> type:
    """engineio's aiohttp WebSocket wrapper with permessage-deflate under our control.

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
            if owner is not None and request.transport is not None:
                owner.abort_transport = request.transport.abort
                if not compress:  # uncompressed frames are the same bytes for every recipient (sio/fanout.py)
                    owner.ws_transport = request.transport
            self.environ = environ
            await self.handler(self)
            return self._sock

        async def _serve_lean(self, environ: dict[str, Any], connection: WebSocketConnection) -> bool:
            """Accept the upgrade the router read (engine/upgrade_router.py); True once the socket serves the connection."""
            transport = connection.transport
            if transport.is_closing():
                return False
            connection.accept(environ["HTTP_SEC_WEBSOCKET_KEY"])
            owner = getattr(self.handler, "__self__", None)
            if owner is not None:
                owner.abort_transport = connection.abort
                owner.ws_transport = transport
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
    if WEBSOCKET_KEY in environ:
        return Reply(status, headers, body if isinstance(body, bytes) else str(body).encode())
    return eio_aiohttp.make_response(status, headers, body, environ)


class Server(socketio.AsyncServer):  # type: ignore[misc]
    """AsyncServer that drops a Socket.IO packet it cannot decode with one callback instead of a logged traceback.

    python-socketio decodes inside engineio's handler wrapper, which logs every undecodable packet as an ERROR with a
    full traceback: a client sending garbage could fill the log. Here the packet is decoded first; a failure goes to
    ``on_malformed(eio_sid, error_name)`` (the app counts it and logs one line) and the packet is dropped.

    It also closes an Engine.IO session that connects no namespace within ``connect_timeout`` (``on_connect_timeout``
    is told), as socket.io's own server does with ``connectTimeout``.
    """

    on_malformed: Callable[[str, str], None] = staticmethod(lambda eio_sid, error: None)
    # An Engine.IO session that has not connected a namespace (the token check) this long after it opened is closed:
    # otherwise a client answering pings could hold a connection unauthenticated forever (issue 11 item 8).
    connect_timeout: float = 45.0
    on_connect_timeout: Callable[[str], None] = staticmethod(lambda eio_sid: None)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._unconnected: dict[str, asyncio.TimerHandle] = {}  # [eio_sid] = its connect deadline, until it connects

    async def _handle_eio_connect(self, eio_sid: str, environ: dict[str, Any]) -> Any:
        result = await super()._handle_eio_connect(eio_sid, environ)
        self._unconnected[eio_sid] = asyncio.get_running_loop().call_later(self.connect_timeout, self._connect_overdue, eio_sid)
        return result

    async def _handle_connect(self, eio_sid: str, namespace: str | None, data: Any) -> None:
        await super()._handle_connect(eio_sid, namespace, data)
        if eio_sid in self._unconnected and self.manager.sid_from_eio_sid(eio_sid, namespace or "/") is not None:
            self._unconnected.pop(eio_sid).cancel()  # connected: no deadline (and no timer) for its lifetime

    async def _handle_eio_disconnect(self, eio_sid: str, reason: Any) -> None:
        timer = self._unconnected.pop(eio_sid, None)
        if timer is not None:
            timer.cancel()
        await super()._handle_eio_disconnect(eio_sid, reason)

    def _connect_overdue(self, eio_sid: str) -> None:
        """CONNECT_TIMEOUT after the Engine.IO session opened without a namespace connected: close the session."""
        self._unconnected.pop(eio_sid, None)
        sock = self.eio.sockets.get(eio_sid)
        if sock is None or sock.closed or sock.closing:
            return
        self.on_connect_timeout(eio_sid)
        task = asyncio.get_running_loop().create_task(sock.close(wait=False, abort=False))
        _closing.add(task)
        task.add_done_callback(_closing.discard)

    async def _handle_eio_message(self, eio_sid: str, data: Any) -> None:
        if eio_sid not in self._binary_packet:  # a binary attachment is raw bytes, not a packet to decode
            try:
                self.packet_class(encoded_packet=data)
            except Exception as exc:  # noqa: BLE001 - any decode failure means the packet is unusable
                self.on_malformed(eio_sid, type(exc).__name__)
                return
        await super()._handle_eio_message(eio_sid, data)


_closing: set[asyncio.Task[None]] = set()  # strong references to sessions being closed for their connect timeout


def _library_logger(name: str) -> logging.Logger:
    logger = logging.getLogger(name)
    logger.setLevel(logging.ERROR)
    return logger


def create(settings: Settings, manager: LeanManager) -> Server:
    """Build the AsyncServer; the caller attaches it to the aiohttp app and registers the namespace."""
    origins: Any
    if "*" in settings.cors_origins:
        origins = "*"
    elif settings.cors_origins:
        origins = list(settings.cors_origins)
    else:
        origins = None  # engineio: same origin only
    sio = Server(
        async_mode="aiohttp",
        client_manager=manager,
        cors_allowed_origins=origins,
        # '*' means any origin WITHOUT credentials (issue 11, item 5): engineio reflects the Origin, and reflecting
        # it with Access-Control-Allow-Credentials: true would let every site make credentialed requests.
        cors_credentials=origins != "*",
        transports=list(settings.transports),
        ping_interval=settings.ping_interval,
        ping_timeout=settings.ping_timeout,
        max_http_buffer_size=settings.max_message_bytes,
        http_compression=True,
        # Logger objects, not False: given a bool, python-socketio/engineio attach their own plain-text StreamHandler
        # to these loggers, which bypasses structlog (a second, non-JSON copy of each line; issue 11, item 11).
        # Their records propagate to the root handler that logs.configure installs. ERROR is what False selected.
        logger=_library_logger("socketio.server"),
        engineio_logger=_library_logger("engineio.server"),
        always_connect=False,
        # No sweeping service task (at 10k sockets it woke every 2 ms with a wait_for task): LeanSocket enforces the
        # PONG deadline with its ping timer and removes itself from eio.sockets when it closes.
        monitor_clients=False,
        # Handlers run in the socket's read loop: a socket's events are handled in the order it sent them (subscribe
        # before whisper, unsubscribe after subscribe) and no task is created per inbound event.
        async_handlers=False,
    )
    sio.connect_timeout = settings.limits.connect_timeout
    eio = sio.eio
    eio.sockets = SocketTable()
    eio.on_malformed = lambda eio_sid, error: sio.on_malformed(eio_sid, error)  # undecodable Engine.IO packets too
    eio._async = dict(
        eio._async,
        websocket=_websocket_class(settings.ws_compression, settings.max_message_bytes),
        translate_request=translate_request,
        make_response=make_response,
    )
    return sio


async def drop(sock: Any) -> None:
    """Close an Engine.IO socket at once, even when its writer is stuck on a client that stopped reading."""
    if not sock.closed and not sock.closing:
        await sock.close(wait=False, abort=True)
    abort = getattr(sock, "abort_transport", None)
    if abort is not None:
        abort()  # a blocked ws.send() raises and the writer exits
