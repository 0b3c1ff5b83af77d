"""AsyncServer factory: transports, CORS, ping, message limits, the connect deadline, WebSocket compression and the lean
fan-out manager."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from realtime_sio.engine import upstream
from realtime_sio.engine.upstream import HookedServer
from realtime_sio.settings import Settings
from realtime_sio.sio.fanout import LeanManager
from realtime_sio.sio.payloads import CONNECT_ENVIRON_KEYS


class Server(HookedServer):
    """AsyncServer that closes an Engine.IO session that connects no namespace within ``connect_timeout``
    (``on_connect_timeout`` is told), as socket.io's own server does with ``connectTimeout``, and drops undecodable
    packets with one ``on_malformed`` call (engine/upstream.py HookedServer) instead of a logged traceback.
    """

    # An Engine.IO session that has not connected a namespace (the token check) this long after it opened is closed:
    # otherwise a client answering pings could hold a connection unauthenticated forever (issue 11 item 8).
    connect_timeout: float = 45.0
    on_connect_timeout: Callable[[str], None] = staticmethod(lambda eio_sid: None)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._unconnected: dict[str, asyncio.TimerHandle] = {}  # [eio_sid] = its connect deadline, until it connects

    def session_opened(self, eio_sid: str) -> None:
        self._unconnected[eio_sid] = asyncio.get_running_loop().call_later(self.connect_timeout, self._connect_overdue, eio_sid)

    def namespace_connected(self, eio_sid: str) -> None:
        timer = self._unconnected.pop(eio_sid, None)
        if timer is not None:
            timer.cancel()  # connected: no deadline (and no timer) for its lifetime

    def session_closed(self, eio_sid: str) -> None:
        timer = self._unconnected.pop(eio_sid, None)
        if timer is not None:
            timer.cancel()

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
        transports=list(settings.engine.transports),
        ping_interval=settings.engine.ping_interval,
        ping_timeout=settings.engine.ping_timeout,
        max_http_buffer_size=settings.engine.max_message_bytes,
        http_compression=True,
        # Logger objects, not False: given a bool, python-socketio/engineio attach their own plain-text StreamHandler
        # to these loggers, which bypasses structlog (a second, non-JSON copy of each line; issue 11, item 11).
        # Their records propagate to the root handler that logs.configure installs. ERROR is what False selected.
        logger=_library_logger("socketio.server"),
        engineio_logger=_library_logger("engineio.server"),
        always_connect=False,
        # No sweeping service task (at 10k sockets it woke every 2 ms with a wait_for task): LeanSocket enforces the
        # PONG deadline on its deadline wheel (engine/deadlines.py) and removes itself from eio.sockets when it closes.
        monitor_clients=False,
        # Handlers run in the socket's read loop: a socket's events are handled in the order it sent them (subscribe
        # before whisper, unsubscribe after subscribe) and no task is created per inbound event.
        async_handlers=False,
    )
    sio.connect_timeout = settings.limits.connect_timeout
    sio.environ_keys = CONNECT_ENVIRON_KEYS
    upstream.install(
        sio.eio,
        compress=settings.engine.ws_compression,
        max_message_bytes=settings.engine.max_message_bytes,
        on_malformed=lambda eio_sid, error: sio.on_malformed(eio_sid, error),  # undecodable Engine.IO packets too
    )
    return sio
