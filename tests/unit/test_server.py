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
