"""The AsyncServer factory (sio/server.py): what it configures in python-socketio and python-engineio."""

from __future__ import annotations

import logging

from realtime_sio.settings import Settings
from realtime_sio.sio import server as sio_server
from realtime_sio.sio.fanout import LeanManager


def test_library_loggers_have_no_plain_text_handler_of_their_own() -> None:
    """socketio/engineio log through the root handler (JSON with LOG_FORMAT=json), never a StreamHandler of theirs."""
    sio = sio_server.create(Settings(), LeanManager(1 << 20))
    for name in ("socketio.server", "engineio.server"):
        logger = logging.getLogger(name)
        assert logger.handlers == [] and logger.propagate, name
        assert logger.level == logging.ERROR
    assert sio.logger is logging.getLogger("socketio.server") and sio.eio.logger is logging.getLogger("engineio.server")


def test_any_origin_is_served_without_credentials() -> None:
    """CORS '*' turns Access-Control-Allow-Credentials off; an origin list keeps it on."""
    assert sio_server.create(Settings(cors_origins=("*",)), LeanManager(1 << 20)).eio.cors_credentials is False
    assert sio_server.create(Settings(cors_origins=("https://a.example",)), LeanManager(1 << 20)).eio.cors_credentials is True


async def test_manager_knows_sid_rooms() -> None:
    """Contract with python-socketio >= 5.18.1: is_sid_room names a connected socket's own room, which no one else enters."""
    manager = LeanManager(1 << 20)
    sio_server.create(Settings(), manager)
    victim, other = await manager.connect("eio-victim", "/"), await manager.connect("eio-other", "/")
    assert manager.is_sid_room("/", victim) and not manager.is_sid_room("/", "news")
    try:
        manager.basic_enter_room(other, "/", victim)
    except ValueError:
        pass
    else:
        raise AssertionError("python-socketio let a socket enter another socket's sid room")


async def test_a_session_keeps_only_the_environ_entries_the_connect_handler_reads() -> None:
    """python-socketio keeps each session's environ for its lifetime: headers the namespace never reads (user agent,
    WebSocket key, an aiohttp request) are dropped at Engine.IO connect; token, cookie, origin and host stay."""
    sio = sio_server.create(Settings(), LeanManager(1 << 20))
    environ = {
        "QUERY_STRING": "EIO=4&transport=websocket&token=t",
        "HTTP_AUTHORIZATION": "Bearer t",
        "HTTP_COOKIE": "laravel_session=x",
        "HTTP_ORIGIN": "https://app.example",
        "HTTP_HOST": "rt.example",
        "HTTP_USER_AGENT": "Mozilla/5.0 " * 20,
        "HTTP_SEC_WEBSOCKET_KEY": "dGhlIHNhbXBsZSBub25jZQ==",
        "aiohttp.request": object(),
    }
    try:
        await sio._handle_eio_connect("eio-1", environ)
        kept = sio.environ["eio-1"]
    finally:
        sio._unconnected.pop("eio-1").cancel()
    assert set(kept) == {"QUERY_STRING", "HTTP_AUTHORIZATION", "HTTP_COOKIE", "HTTP_ORIGIN", "HTTP_HOST"}
    assert kept["HTTP_COOKIE"] == "laravel_session=x"
