"""The first protocol of every accepted TCP connection: Engine.IO WebSocket upgrades to the lean WebSocket, the rest to aiohttp.

It reads the request head under a deadline (``HEAD_TIMEOUT``) and a size limit (``MAX_HEAD_BYTES``: larger heads are
answered 431 as soon as that many bytes arrived, complete or not) and decides once. A WebSocket upgrade to the
Engine.IO path asking for another version than 13 is answered 426 with ``Sec-WebSocket-Version: 13`` (RFC 6455
§4.4). With the lean WebSocket on (the default), a well-formed ``GET <engine.io path>?…transport=websocket`` upgrade
(HTTP/1.1, ``Upgrade: websocket``, ``Connection: upgrade``, version 13, a valid key) becomes a
:class:`~realtime_sio.engine.connection.WebSocketConnection`, and engineio's ``handle_request`` serves it exactly as it
serves aiohttp requests (origin check, handshake, Socket.IO connect, polling → WebSocket upgrade); only the transport
underneath is ours; a new session that admission control refuses (draining, busy) gets its answer from here. Every
other connection (polling, the APIs, probes, a malformed or unusual upgrade, every upgrade when the lean WebSocket is
off) is handed to aiohttp with the bytes read so far, so aiohttp answers it as if it had accepted it itself; from then on aiohttp's keep-alive timeout bounds each
later request head and the body middleware (:mod:`realtime_sio.request_bodies`) each body. One exception: a valid
WebSocket upgrade under ``pusher_prefix`` (``/app/{key}``, when the Pusher protocol is served, issue 12) becomes a
WebSocketConnection handed to the Pusher server (``Upgrades.pusher``), whatever LEAN_WEBSOCKET says: aiohttp serves
no route there.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, cast
from urllib.parse import parse_qs

from realtime_sio import errors, logs, refusals
from realtime_sio.engine.connection import WebSocketConnection
from realtime_sio.engine.frames import ProtocolError, valid_key
from realtime_sio.errors import ErrorCode

WEBSOCKET_KEY = "realtime_sio.websocket"  # environ entry holding the WebSocketConnection
POLLING_KEY = "realtime_sio.polling"  # environ entry marking a long-polling request the router serves itself
POST_KEY = "realtime_sio.post"  # environ entry holding the PostHandler of a POST the router serves itself
_LINGER_SECONDS = 5.0  # after a refusal, how long the client has to close its side

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


@dataclass(slots=True)
class SiteState:
    """What every router of a site shares that changes: whether the site has stopped listening (shutdown)."""

    stopped: bool = False


Answer = Callable[[Reply], None]  # writes a served request's answer (once)
# A route the router serves itself: (environ, whole body, answer). It must answer once, now or later (within a deadline
# of its own), and must not raise.
PostHandler = Callable[[dict[str, Any], bytes, Answer], None]


@dataclass(frozen=True, slots=True)
class Upgrades:
    """Shared by every connection's router: its head deadline and limit, what counts as an Engine.IO WebSocket and
    who serves it."""

    path: str  # engine.io path, e.g. "/socket.io/"
    max_message_bytes: int
    handle: Callable[[LeanRequest], Awaitable[Any]]  # engineio's handle_request
    admit: Callable[[dict[str, Any]], Reply | None]  # admission control: None, or the answer refusing the handshake
    head_timeout: float = 30.0  # a connection that has not sent its whole request head by then is closed
    scheme: str = "http"  # "https" when the site terminates TLS itself (engineio's same-origin check reads it)
    max_head_bytes: int = 16_384  # a longer head is answered 431
    lean: bool = True  # False: every connection goes to aiohttp once its head is read (LEAN_WEBSOCKET=false)
    # refused(reason, detail): count and log refused input (app.py: bad_input metric, rate-limited log line)
    refused: Callable[[str, str], None] = lambda reason, detail: None
    # pusher(connection, environ): serves a valid WebSocket upgrade under pusher_prefix (the Pusher protocol, issue 12);
    # None: those paths are aiohttp's like any other
    pusher: Callable[[WebSocketConnection, dict[str, Any]], None] | None = None
    pusher_prefix: str = "/app/"
    pusher_max_message_bytes: int = 10_000
    tasks: set[asyncio.Task[None]] = field(default_factory=set)  # one per served WebSocket or polling request
    # POST routes served here without aiohttp, for plain kept-alive HTTP/1.1 requests (the sidecar's /api/v1/events:
    # answered in the loop iteration that learnt the publish's outcome); anything doubtful still goes to aiohttp
    posts: dict[str, PostHandler] = field(default_factory=dict)
    post_max_body: int = 1_048_576  # a larger POST to those routes goes to aiohttp (whose middleware answers 413)
    body_timeout: float = 30.0  # a lean polling POST's body must arrive in full within this (else 408)
    keepalive_timeout: float = 75.0  # after a lean polling answer, the next request head must start within this
    # set by the site when it stops (shutdown): a request head completed later is not served, its connection is closed
    # (aiohttp's handlers are being shut down, and a task started for it could outlive the event loop)
    site: SiteState = field(default_factory=SiteState)
    # given to every lean WebSocket: one shared callable, not a bound method (64 bytes) per connection
    protocol_error: Callable[[ProtocolError], None] = field(init=False)

    def __post_init__(self) -> None:
        refused = self.refused

        def protocol_error(error: ProtocolError) -> None:
            """A lean WebSocket's client broke RFC 6455 (the connection closes itself with the error's code)."""
            refused(refusals.WEBSOCKET_PROTOCOL_ERROR, f"{error.code}: {error.reason}")

        object.__setattr__(self, "protocol_error", protocol_error)


def parse_head(head: bytes, scheme: str = "http") -> tuple[str, str, str, dict[str, Any]] | None:
    """``(method, path, version, environ)`` of a request head (without the blank line), or None when malformed.

    ``scheme`` is the connection's own (``https`` over TLS); a proxy's ``X-Forwarded-Proto`` overrides it.
    """
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
    environ["wsgi.url_scheme"] = environ.get("HTTP_X_FORWARDED_PROTO", scheme)
    return method, path, version, environ


def head_too_large(received: int, end: int, limit: int) -> bool:
    """Whether a head must be refused with 431: ``received`` bytes so far, ``end`` the index of its blank line (-1
    while there is none). An incomplete head is too large once it passes ``limit``; a complete one when it, blank
    line included, is longer than ``limit``, even if it arrived in one read."""
    return (end < 0 and received > limit) or end + 4 > limit


def wrong_websocket_version(method: str, path: str, environ: dict[str, Any], engineio_path: str, pusher_prefix: str | None = None) -> bool:
    """True for a WebSocket upgrade to the Engine.IO path (or under ``pusher_prefix``) that asks for another version
    than 13 (answer: 426)."""
    ours = path == engineio_path or (pusher_prefix is not None and path.startswith(pusher_prefix))
    if method != "GET" or not ours or environ.get("HTTP_UPGRADE", "").lower() != "websocket":
        return False
    return environ.get("HTTP_SEC_WEBSOCKET_VERSION") != "13"


def error_reply(error: ErrorCode, detail: str, headers: list[tuple[str, str]] | None = None) -> Reply:
    """An HTTP answer carrying a catalogue error as the JSON body the HTTP APIs use."""
    body = json.dumps({"error": error.payload(detail)}).encode()
    status = f"{error.status} {HTTPStatus(error.status).phrase}"
    return Reply(status, [("Content-Type", "application/json"), *(headers or [])], body)


def is_engineio_websocket(method: str, path: str, version: str, environ: dict[str, Any], engineio_path: str) -> bool:
    """True for a complete, valid WebSocket upgrade to the Engine.IO endpoint; anything doubtful is aiohttp's."""
    if path != engineio_path or not is_websocket_upgrade(method, version, environ):
        return False
    return parse_qs(environ["QUERY_STRING"]).get("transport") == ["websocket"]


def is_pusher_websocket(method: str, path: str, version: str, environ: dict[str, Any], prefix: str) -> bool:
    """True for a complete, valid WebSocket upgrade under the Pusher prefix (``/app/{key}``)."""
    return path.startswith(prefix) and len(path) > len(prefix) and is_websocket_upgrade(method, version, environ)


def is_websocket_upgrade(method: str, version: str, environ: dict[str, Any]) -> bool:
    """A well-formed RFC 6455 opening handshake: GET, HTTP/1.1, upgrade headers, version 13, a valid key, no body."""
    if method != "GET" or version != "HTTP/1.1":
        return False
    if environ.get("HTTP_UPGRADE", "").lower() != "websocket":
        return False
    if "upgrade" not in (token.strip() for token in environ.get("HTTP_CONNECTION", "").lower().split(",")):
        return False
    if environ.get("HTTP_SEC_WEBSOCKET_VERSION") != "13" or not valid_key(environ.get("HTTP_SEC_WEBSOCKET_KEY", "")):
        return False
    return "HTTP_CONTENT_LENGTH" not in environ and "HTTP_TRANSFER_ENCODING" not in environ


def polling_body_length(method: str, path: str, version: str, environ: dict[str, Any], engineio_path: str, max_body: int) -> int | None:
    """The body length of a plain Engine.IO long-polling request the router serves itself (0 for a GET), or None:
    anything doubtful (HTTP/1.0, an upgrade, chunked or oversized bodies, ``Expect``, JSONP) is aiohttp's."""
    if path != engineio_path or version != "HTTP/1.1" or method not in ("GET", "POST"):
        return None
    if "HTTP_UPGRADE" in environ or "HTTP_TRANSFER_ENCODING" in environ or "HTTP_EXPECT" in environ:
        return None
    params = environ["QUERY_STRING"].split("&")
    if "transport=polling" not in params or any(p.startswith("j=") for p in params):
        return None
    declared = environ.get("HTTP_CONTENT_LENGTH")
    if method == "GET":
        return 0 if declared in (None, "0") else None
    if declared is None or not (declared.isascii() and declared.isdigit()) or len(declared) > 12:
        return None
    length = int(declared)
    return length if 0 < length <= max_body else None


def post_body_length(method: str, path: str, version: str, environ: dict[str, Any], routes: dict[str, Any], max_body: int) -> int | None:
    """The body length of a plain POST to one of ``routes`` the router serves itself, or None: HTTP/1.0, upgrades,
    chunked or oversized bodies and ``Expect`` are aiohttp's."""
    if method != "POST" or version != "HTTP/1.1" or path not in routes:
        return None
    if "HTTP_UPGRADE" in environ or "HTTP_TRANSFER_ENCODING" in environ or "HTTP_EXPECT" in environ:
        return None
    declared = environ.get("HTTP_CONTENT_LENGTH")
    if declared is None or not (declared.isascii() and declared.isdigit()) or len(declared) > 12:
        return None
    length = int(declared)
    return length if length <= max_body else None


class _Body:
    """Engine.IO's ``wsgi.input`` for a lean polling POST: the body the router already read."""

    __slots__ = ("_data",)

    def __init__(self, data: bytes) -> None:
        self._data = data

    async def read(self, n: int = -1) -> bytes:
        return self._data if n < 0 else self._data[:n]


class UpgradeRouter(asyncio.Protocol):
    """Reads request heads under a deadline and a size limit. A WebSocket upgrade or any request it does not serve
    itself gives the connection away for good; plain long-polling requests are served here, one at a time, and the
    connection is kept alive for the next one (a keep-alive deadline between requests)."""

    __slots__ = ("_body_needed", "_fallback", "_head", "_polling", "_refused", "_serving", "_timer", "_transport", "_upgrades")

    def __init__(self, upgrades: Upgrades, fallback: Callable[[], asyncio.BaseProtocol]) -> None:
        self._upgrades = upgrades
        self._fallback = fallback  # aiohttp's protocol factory (web.Server)
        self._head = bytearray()
        self._transport: asyncio.Transport | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._refused = False  # answered with an error: what the client still sends is read and dropped
        self._polling: dict[str, Any] | None = None  # environ of the polling request whose body is being read
        self._body_needed = 0
        self._serving = False  # a polling request is with engineio: reading is paused, its answer is awaited

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport = cast(asyncio.Transport, transport)  # uvloop's transports are not asyncio.Transport subclasses
        self._transport = transport
        self._timer = asyncio.get_running_loop().call_later(self._upgrades.head_timeout, self._head_overdue)

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_timer()

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        if self._serving or self._polling is not None:
            self._head += data  # a polling body, or (pipelined) the next request while one is served
            if self._polling is not None and not self._serving:
                self._body_arrived()
            return
        head = self._head
        searched = max(0, len(head) - 3)  # the blank line may straddle two reads
        head += data
        end = head.find(b"\r\n\r\n", searched)
        upgrades = self._upgrades
        if head_too_large(len(head), end, upgrades.max_head_bytes):
            self._refuse(errors.HEAD_TOO_LARGE, f"limit is {upgrades.max_head_bytes} bytes")
            return
        if end < 0:
            return
        if upgrades.site.stopped:  # shutting down: nothing new is served
            self._stop_timer()
            assert self._transport is not None
            self._transport.close()
            return
        parsed = parse_head(bytes(head[:end]), upgrades.scheme)
        pusher_prefix = upgrades.pusher_prefix if upgrades.pusher is not None else None
        if parsed is not None and wrong_websocket_version(parsed[0], parsed[1], parsed[3], upgrades.path, pusher_prefix):
            self._refuse(errors.WEBSOCKET_VERSION, "expected Sec-WebSocket-Version: 13", [("Sec-WebSocket-Version", "13")])
            return
        if parsed is not None and upgrades.pusher is not None and is_pusher_websocket(*parsed, upgrades.pusher_prefix):
            self._to_pusher(parsed[3], bytes(head[end + 4 :]))
            return
        if parsed is not None and upgrades.lean:
            length = polling_body_length(*parsed, upgrades.path, upgrades.max_message_bytes)
            if length is None and upgrades.posts:
                length = post_body_length(*parsed, upgrades.posts, upgrades.post_max_body)
                if length is not None:
                    parsed[3][POST_KEY] = upgrades.posts[parsed[1]]
            if length is not None:
                del head[: end + 4]
                self._polling, self._body_needed = parsed[3], length
                self._stop_timer()
                if length:
                    self._timer = asyncio.get_running_loop().call_later(upgrades.body_timeout, self._body_overdue)
                self._body_arrived()
                return
        if parsed is None or not upgrades.lean or not is_engineio_websocket(*parsed, upgrades.path):
            self._hand_to_aiohttp()
            return
        self._stop_timer()
        transport = self._transport
        assert transport is not None
        refusal = upgrades.admit(parsed[3])
        if refusal is not None:
            write_reply(transport, refusal)
            return
        # (upgrades.protocol_error, not a method of this router: the connection must not keep the router and its head)
        connection = WebSocketConnection(transport, upgrades.max_message_bytes, bytes(head[end + 4 :]), upgrades.protocol_error)
        transport.set_protocol(connection)
        environ = parsed[3]
        environ[WEBSOCKET_KEY] = connection
        task = asyncio.get_running_loop().create_task(_serve(upgrades, LeanRequest(environ), connection))
        upgrades.tasks.add(task)
        task.add_done_callback(upgrades.tasks.discard)

    def _to_pusher(self, environ: dict[str, Any], early: bytes) -> None:
        """A Pusher upgrade: the raw WebSocket serves it; the Pusher server answers (admission, app key, origin)."""
        self._stop_timer()
        transport = self._transport
        upgrades = self._upgrades
        assert transport is not None and upgrades.pusher is not None
        connection = WebSocketConnection(transport, upgrades.pusher_max_message_bytes, early, upgrades.protocol_error)
        transport.set_protocol(connection)
        upgrades.pusher(connection, environ)

    # -- lean long-polling ------------------------------------------------------------------------------------------

    def _body_arrived(self) -> None:
        """Serve the pending polling request once its whole body is here."""
        environ = self._polling
        if environ is None or len(self._head) < self._body_needed:
            return
        body = bytes(self._head[: self._body_needed])
        del self._head[: self._body_needed]
        self._stop_timer()
        self._serving = True
        transport = self._transport
        assert transport is not None
        transport.pause_reading()  # one request at a time; a pipelined next one waits in the socket
        handler = environ.get(POST_KEY)
        if handler is not None:
            self._serve_post(handler, environ, body)
            return
        environ["wsgi.input"] = _Body(body)
        environ["CONTENT_LENGTH"] = str(len(body))  # WSGI names (engineio reads these, not the HTTP_ ones)
        environ["CONTENT_TYPE"] = environ.get("HTTP_CONTENT_TYPE", "")
        environ[POLLING_KEY] = True
        task = asyncio.get_running_loop().create_task(self._serve_polling(environ))
        self._upgrades.tasks.add(task)
        task.add_done_callback(self._upgrades.tasks.discard)

    async def _serve_polling(self, environ: dict[str, Any]) -> None:
        """engineio answers the request (a new session passes admission control first); the answer is written with
        the connection kept alive when it is a 200, then the next request head is read."""
        upgrades = self._upgrades
        reply: Any = None
        if "sid=" not in environ["QUERY_STRING"]:
            reply = upgrades.admit(environ)
        if reply is None:
            try:
                reply = await upgrades.handle(LeanRequest(environ))
            except Exception as exc:  # noqa: BLE001 - engineio failed on this request; the connection ends, the server goes on
                log.error("polling_request_failed", error=type(exc).__name__)
                reply = Reply("500 Internal Server Error", [], b"")
        keep = isinstance(reply, Reply) and reply.status.startswith("200")
        self._finish(reply if isinstance(reply, Reply) else Reply("500 Internal Server Error", [], b""), environ, keep)

    def _serve_post(self, handler: PostHandler, environ: dict[str, Any], body: bytes) -> None:
        """A POST route served here: its handler answers now or later; the connection stays open for the next
        request (whatever the status: the whole body was read)."""
        answered = False

        def answer(reply: Reply) -> None:
            nonlocal answered
            if not answered:
                answered = True
                self._finish(reply, environ, True)

        try:
            handler(environ, body, answer)
        except Exception as exc:  # noqa: BLE001 - the handler failed on this request; the connection ends, the server goes on
            log.error("post_request_failed", path=environ.get("PATH_INFO"), error=type(exc).__name__)
            if not answered:
                answered = True
                self._finish(Reply("500 Internal Server Error", [], b""), environ, False)

    def _finish(self, reply: Reply, environ: dict[str, Any], keep: bool) -> None:
        """Write a served request's answer; then read the next request head (kept alive, unless ``keep`` is false or
        the client asked to close)."""
        transport = self._transport
        assert transport is not None
        self._polling = None
        self._serving = False
        if transport.is_closing():
            return
        keep = keep and environ.get("HTTP_CONNECTION", "").lower() != "close"
        transport.write(render_reply(reply, keep_alive=keep))
        if not keep:
            transport.close()
            return
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(self._upgrades.keepalive_timeout, self._idle_overdue)
        if self._head:  # a pipelined next request: read on the next turn (an answer given inside its own request's
            loop.call_soon(self._resume)  # callback must not recurse into the next one, and the next, ...)
        else:
            transport.resume_reading()

    def _resume(self) -> None:
        """Serve what a client pipelined behind the request just answered, then read on."""
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        transport.resume_reading()
        leftover, self._head = bytes(self._head), bytearray()
        if leftover:
            self.data_received(leftover)

    def _body_overdue(self) -> None:
        """BODY_TIMEOUT passed before a polling POST's whole body arrived: 408 and close (as the body middleware)."""
        self._timer = None
        self._polling = None
        self._refuse(errors.REQUEST_TIMEOUT, f"body not complete after {self._upgrades.body_timeout:g} s")

    def _idle_overdue(self) -> None:
        """KEEPALIVE_TIMEOUT passed without a next request on a kept-alive polling connection: close quietly."""
        self._timer = None
        if self._head:
            self._upgrades.refused(refusals.REQUEST_HEAD_TIMEOUT, f"{len(self._head)} bytes in {self._upgrades.keepalive_timeout:g} s")
        if self._transport is not None:
            self._transport.close()

    def _head_overdue(self) -> None:
        """HEAD_TIMEOUT passed without a whole request head: close (counted only when some of a head arrived)."""
        self._timer = None
        if self._head:
            self._upgrades.refused(refusals.REQUEST_HEAD_TIMEOUT, f"{len(self._head)} bytes in {self._upgrades.head_timeout:g} s")
        if self._transport is not None:
            self._transport.close()

    def _refuse(self, error: ErrorCode, detail: str, headers: list[tuple[str, str]] | None = None) -> None:
        """Answer with a catalogue error and end the connection.

        The write side is shut after the answer and what the client still sends is read and dropped until it closes
        (at most ``_LINGER_SECONDS``): closing with unread input would send a TCP reset that can destroy the answer.
        """
        self._stop_timer()
        self._upgrades.refused(error.code, detail)
        self._refused = True
        self._head = bytearray()
        transport = self._transport
        assert transport is not None
        transport.write(render_reply(error_reply(error, detail, headers)))
        if transport.can_write_eof():
            transport.write_eof()
            self._timer = asyncio.get_running_loop().call_later(_LINGER_SECONDS, transport.abort)
        else:  # TLS transports cannot half-close: close() sends the answer, then close_notify
            transport.close()

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
    transport.write(render_reply(reply))
    transport.close()


def render_reply(reply: Reply, keep_alive: bool = False) -> bytes:
    """The bytes of an HTTP/1.1 response that ends the connection (or, ``keep_alive``, leaves it open)."""
    lines = [f"HTTP/1.1 {reply.status}", f"Content-Length: {len(reply.body)}"]
    if not keep_alive:
        lines.append("Connection: close")
    lines += [f"{name}: {value}" for name, value in reply.headers if name.lower() not in ("content-length", "connection")]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + reply.body
