"""AsyncServer factory: transports, CORS, ping, message limits, WebSocket compression and the lean fan-out manager."""

from __future__ import annotations

from typing import Any

import socketio
from aiohttp.web import WebSocketResponse
from engineio.async_drivers import aiohttp as eio_aiohttp

from realtime_sio.settings import Settings
from realtime_sio.sio.fanout import LeanManager
from realtime_sio.sio.lean_socket import SocketTable


def _websocket_class(compress: bool, max_msg_size: int) -> type:
    """engineio's aiohttp WebSocket wrapper with permessage-deflate under our control.

    engineio's driver always lets aiohttp negotiate deflate, which costs ~100 KB of zlib state per connection
    (python-socketio notes §3.4); we turn it off unless REALTIME_SIO_WS_COMPRESSION asks for it.
    """

    class WebSocket(eio_aiohttp.WebSocket):  # type: ignore[misc]
        async def __call__(self, environ: dict[str, Any]) -> WebSocketResponse:
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

    return WebSocket


def create(settings: Settings, manager: LeanManager) -> socketio.AsyncServer:
    """Build the AsyncServer; the caller attaches it to the aiohttp app and registers the namespace."""
    origins: Any
    if "*" in settings.cors_origins:
        origins = "*"
    elif settings.cors_origins:
        origins = list(settings.cors_origins)
    else:
        origins = None  # engineio: same origin only
    sio = socketio.AsyncServer(
        async_mode="aiohttp",
        client_manager=manager,
        cors_allowed_origins=origins,
        cors_credentials=True,
        transports=list(settings.transports),
        ping_interval=settings.ping_interval,
        ping_timeout=settings.ping_timeout,
        max_http_buffer_size=settings.max_message_bytes,
        http_compression=True,
        logger=False,
        engineio_logger=False,
        always_connect=False,
        # Handlers run in the socket's read loop: a socket's events are handled in the order it sent them (subscribe
        # before whisper, unsubscribe after subscribe) and no task is created per inbound event.
        async_handlers=False,
    )
    eio = sio.eio
    eio.sockets = SocketTable()
    eio._async = dict(eio._async, websocket=_websocket_class(settings.ws_compression, settings.max_message_bytes))
    return sio


async def drop(sock: Any) -> None:
    """Close an Engine.IO socket at once, even when its writer is stuck on a client that stopped reading."""
    if not sock.closed and not sock.closing:
        await sock.close(wait=False, abort=True)
    abort = getattr(sock, "abort_transport", None)
    if abort is not None:
        abort()  # a blocked ws.send() raises and the writer exits
