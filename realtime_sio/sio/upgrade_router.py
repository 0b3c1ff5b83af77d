"""The first protocol of every accepted TCP connection: Engine.IO WebSocket upgrades to the lean WebSocket, the rest to aiohttp.

It reads the request head and decides once. A well-formed ``GET <engine.io path>?…transport=websocket`` upgrade
(HTTP/1.1, ``Upgrade: websocket``, ``Connection: upgrade``, version 13, a valid key) becomes a
:class:`~realtime_sio.sio.websocket.WebSocketConnection`, and engineio's ``handle_request`` serves it exactly as it
serves aiohttp requests (origin check, handshake, Socket.IO connect, polling → WebSocket upgrade); only the transport
underneath is ours. Every other connection (polling, the APIs, probes, a malformed or unusual upgrade, anything
while the server drains) is handed to aiohttp with the bytes read so far, so aiohttp answers it as if it had
accepted it itself.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, cast
from urllib.parse import parse_qs

from aiohttp import web

from realtime_sio import logs
from realtime_sio.sio.websocket import WebSocketConnection, valid_key

MAX_HEAD_BYTES = 16_384  # longer heads go to aiohttp, which answers 400/431 by its own limits
WEBSOCKET_KEY = "realtime_sio.websocket"  # environ entry holding the WebSocketConnection

log = logs.get(__name__)


@dataclass(frozen=True, slots=True)
class LeanRequest:
    """What engineio's ``handle_request`` receives for a lean WebSocket: a WSGI-style environ."""

    environ: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Reply:
    """An HTTP answer engineio gave instead of upgrading (bad origin, bad session, …)."""

    status: str
    headers: list[tuple[str, str]]
    body: bytes


@dataclass(frozen=True, slots=True)
class Upgrades:
    """Shared by every connection's router: what counts as an Engine.IO WebSocket and who serves it."""

    path: str  # engine.io path, e.g. "/socket.io/"
    max_message_bytes: int
    handle: Callable[[LeanRequest], Awaitable[Any]]  # engineio's handle_request
    admit: Callable[[dict[str, Any]], Reply | None]  # admission control: None, or the answer refusing the handshake
    head_timeout: float = 30.0  # a connection that has not sent its whole request head by then is closed
    tasks: set[asyncio.Task[None]] = field(default_factory=set)  # one per served WebSocket (strong references)


def parse_head(head: bytes) -> tuple[str, str, str, dict[str, Any]] | None:
    """``(method, path, version, environ)`` of a request head (without the blank line), or None when malformed."""
    lines = head.split(b"\r\n")
    parts = lines[0].decode("latin-1").split(" ")
    if len(parts) != 3:
        return None
    method, target, version = parts
    path, _, query = target.partition("?")
    environ: dict[str, Any] = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "RAW_URI": target,
        "SERVER_PROTOCOL": version,
        "REMOTE_ADDR": "127.0.0.1",
        "SCRIPT_NAME": "",
    }
    for line in lines[1:]:
        name, sep, value = line.partition(b":")
        if not sep or not name or name != name.strip():
            return None
        key = "HTTP_" + name.decode("latin-1").upper().replace("-", "_")
        text = value.strip().decode("latin-1")
        environ[key] = f"{environ[key]},{text}" if key in environ else text
    environ["wsgi.url_scheme"] = environ.get("HTTP_X_FORWARDED_PROTO", "http")
    return method, path, version, environ


def is_engineio_websocket(method: str, path: str, version: str, environ: dict[str, Any], engineio_path: str) -> bool:
    """True for a complete, valid WebSocket upgrade to the Engine.IO endpoint; anything doubtful is aiohttp's."""
    if method != "GET" or version != "HTTP/1.1" or path != engineio_path:
        return False
    if environ.get("HTTP_UPGRADE", "").lower() != "websocket":
        return False
    if "upgrade" not in (token.strip() for token in environ.get("HTTP_CONNECTION", "").lower().split(",")):
        return False
    if environ.get("HTTP_SEC_WEBSOCKET_VERSION") != "13" or not valid_key(environ.get("HTTP_SEC_WEBSOCKET_KEY", "")):
        return False
    if "HTTP_CONTENT_LENGTH" in environ or "HTTP_TRANSFER_ENCODING" in environ:
        return False
    return parse_qs(environ["QUERY_STRING"]).get("transport") == ["websocket"]


class UpgradeRouter(asyncio.Protocol):
    """Reads one request head, then gives the connection away for good."""

    __slots__ = ("_fallback", "_head", "_timer", "_transport", "_upgrades")

    def __init__(self, upgrades: Upgrades, fallback: Callable[[], asyncio.BaseProtocol]) -> None:
        self._upgrades = upgrades
        self._fallback = fallback  # aiohttp's protocol factory (web.Server)
        self._head = bytearray()
        self._transport: asyncio.Transport | None = None
        self._timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport = cast(asyncio.Transport, transport)  # uvloop's transports are not asyncio.Transport subclasses
        self._transport = transport
        self._timer = asyncio.get_running_loop().call_later(self._upgrades.head_timeout, transport.close)

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_timer()

    def data_received(self, data: bytes) -> None:
        self._head += data
        end = self._head.find(b"\r\n\r\n")
        if end < 0:
            if len(self._head) > MAX_HEAD_BYTES:
                self._hand_to_aiohttp()
            return
        upgrades = self._upgrades
        parsed = parse_head(bytes(self._head[:end]))
        if parsed is None or not is_engineio_websocket(*parsed, upgrades.path):
            self._hand_to_aiohttp()
            return
        self._stop_timer()
        transport = self._transport
        assert transport is not None
        refusal = upgrades.admit(parsed[3])
        if refusal is not None:
            write_reply(transport, refusal)
            return
        connection = WebSocketConnection(transport, upgrades.max_message_bytes, bytes(self._head[end + 4 :]))
        transport.set_protocol(connection)
        environ = parsed[3]
        environ[WEBSOCKET_KEY] = connection
        task = asyncio.get_running_loop().create_task(_serve(upgrades, LeanRequest(environ), connection))
        upgrades.tasks.add(task)
        task.add_done_callback(upgrades.tasks.discard)

    def _hand_to_aiohttp(self) -> None:
        self._stop_timer()
        transport = self._transport
        assert transport is not None
        protocol = self._fallback()
        assert isinstance(protocol, asyncio.Protocol)
        transport.set_protocol(protocol)
        protocol.connection_made(transport)
        protocol.data_received(bytes(self._head))

    def _stop_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


async def _serve(upgrades: Upgrades, request: LeanRequest, connection: WebSocketConnection) -> None:
    """Run engineio for the connection; an HTTP answer instead of an upgrade is written and the connection closed."""
    try:
        response = await upgrades.handle(request)
    except Exception as exc:  # noqa: BLE001 - engineio failed on this request; the connection ends, the server goes on
        log.error("websocket_request_failed", error=type(exc).__name__)
        response = Reply("500 Internal Server Error", [], b"")
    if response is connection:
        return  # upgraded: the Engine.IO socket serves the connection from now on
    if isinstance(response, Reply):
        write_reply(connection.transport, response)
    elif not connection.transport.is_closing():
        connection.transport.close()


def write_reply(transport: asyncio.Transport, reply: Reply) -> None:
    """Write an HTTP/1.1 response and close the connection (after the head has not been upgraded)."""
    if transport.is_closing():
        return
    lines = [f"HTTP/1.1 {reply.status}", f"Content-Length: {len(reply.body)}", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in reply.headers if name.lower() not in ("content-length", "connection")]
    transport.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + reply.body)
    transport.close()


class RoutedSite(web.TCPSite):
    """aiohttp's TCP site, except that each accepted connection starts at an :class:`UpgradeRouter`."""

    def __init__(self, runner: web.BaseRunner, host: str, port: int, upgrades: Upgrades, *, backlog: int = 4096) -> None:
        super().__init__(runner, host, port, backlog=backlog, reuse_address=True)
        self._upgrades = upgrades

    async def start(self) -> None:
        await web.BaseSite.start(self)  # registers the site with the runner
        fallback = self._runner.server
        assert fallback is not None
        upgrades = self._upgrades
        self._server = await asyncio.get_running_loop().create_server(
            lambda: UpgradeRouter(upgrades, fallback), self._host, self._port, backlog=self._backlog, reuse_address=True
        )
        if self._server.sockets:
            self._bound_port = self._server.sockets[0].getsockname()[1]
