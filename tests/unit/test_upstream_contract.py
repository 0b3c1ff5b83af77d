"""The python-engineio / python-socketio internals realtime_sio relies on still exist with the shape it expects.

Written against python-engineio 4.15 and python-socketio 5.18 (setup.cfg pins the ranges). Each case names the
upstream symbol and the realtime_sio module that depends on it, so an upgrade that moves one fails here, by name,
instead of at run time. Run ``bash scripts/test-upgrades.sh`` (the newest releases) before widening a pin;
``bash scripts/test-dependency-ends.sh lowest`` tests every floor.
"""

from __future__ import annotations

import inspect
from typing import Any

import engineio
import pytest
import socketio
from engineio import packet as eio_packet
from engineio.async_drivers import aiohttp as eio_aiohttp
from engineio.async_socket import AsyncSocket
from socketio import packet as sio_packet

# (owner, attribute, parameters the override or call relies on (None: only existence), used by)
METHODS: list[tuple[Any, str, tuple[str, ...] | None, str]] = [
    (AsyncSocket, "schedule_ping", (), "engine/upstream.py overrides it (timer-driven pings)"),
    (AsyncSocket, "send", ("pkt",), "engine/upstream.py overrides it (writes at once on a lean WebSocket)"),
    (AsyncSocket, "close", ("wait", "abort", "reason"), "engine/upstream.py overrides it; app.drain and namespace call it"),
    (AsyncSocket, "poll", (), "engine/upstream.py overrides it (no wait_for task per poll)"),
    (AsyncSocket, "_upgrade_websocket", ("environ",), "engine/upstream.py: upstream's upgrade path calls _websocket_handler"),
    (AsyncSocket, "_websocket_handler", ("ws",), "engine/upstream.py overrides it (callback mode)"),
    (AsyncSocket, "receive", ("pkt",), "engine/upstream.py calls it for each inbound packet and overrides it (a PONG measures the round trip)"),
    (AsyncSocket, "handle_get_request", ("environ",), "engine/upstream.py relies on it for polling GETs"),
    (engineio.AsyncServer, "handle_request", None, "engine/upgrade_router.py hands lean WebSocket requests to it (*args)"),
    (engineio.AsyncServer, "create_queue", None, "engine/upstream.install replaces it with engine.send_queue.ByteQueue"),
    (eio_aiohttp.WebSocket, "__call__", ("environ",), "engine/upstream.py's WebSocket class overrides it"),
    (socketio.AsyncServer, "_handle_eio_message", ("eio_sid", "data"), "engine/upstream.py HookedServer replaces upstream's dispatch"),
    (socketio.AsyncServer, "_handle_disconnect", ("eio_sid", "namespace", "reason"), "engine/upstream.py HookedServer dispatches to it"),
    (socketio.AsyncServer, "_handle_event", ("eio_sid", "namespace", "id", "data"), "engine/upstream.py HookedServer dispatches to it"),
    (socketio.AsyncServer, "_handle_ack", ("eio_sid", "namespace", "id", "data"), "engine/upstream.py HookedServer dispatches to it"),
    (socketio.AsyncManager, "sid_from_eio_sid", ("eio_sid", "namespace"), "engine/upstream.py HookedServer accepts binary packets of a connected namespace"),
    (sio_packet.Packet, "add_attachment", ("attachment",), "engine/upstream.py HookedServer completes binary packets"),
    (socketio.AsyncServer, "_handle_connect", ("eio_sid", "namespace", "data"), "engine/upstream.py HookedServer.namespace_connected"),
    (socketio.AsyncServer, "_handle_eio_connect", ("eio_sid", "environ"), "engine/upstream.py HookedServer.session_opened"),
    (socketio.AsyncServer, "_handle_eio_disconnect", ("eio_sid", "reason"), "engine/upstream.py HookedServer.session_closed"),
    (socketio.AsyncManager, "connect", ("sid", "namespace"), "fanout.LeanManager.connect overrides it"),
    (socketio.AsyncManager, "emit", ("event", "data", "namespace", "room", "skip_sid", "callback", "to"), "fanout.LeanManager.emit"),
    (socketio.AsyncManager, "basic_enter_room", ("sid", "namespace", "room", "eio_sid"), "fanout.LeanManager keeps a reverse index"),
    (socketio.AsyncManager, "basic_leave_room", ("sid", "namespace", "room"), "fanout.LeanManager keeps a reverse index"),
    (socketio.AsyncManager, "basic_disconnect", ("sid", "namespace"), "fanout.LeanManager replaces upstream's room scan"),
    (socketio.AsyncManager, "get_rooms", ("sid", "namespace"), "fanout.LeanManager answers from its index"),
    (socketio.AsyncManager, "get_participants", ("namespace", "room"), "fanout.LeanManager.fanout iterates it"),
    (socketio.AsyncManager, "eio_sid_from_sid", ("sid", "namespace"), "sio/namespace.py and dashboard/feed.py"),
    (socketio.AsyncManager, "is_sid_room", ("namespace", "room"), "sio/namespace.py refuses a live sid as a channel name"),
]

MODULE_NAMES: list[tuple[Any, str, str]] = [
    (eio_aiohttp, "translate_request", "engine/upstream.py wraps it"),
    (eio_aiohttp, "make_response", "engine/upstream.py wraps it"),
    (eio_packet, "packet_names", "engine/upstream.py validates packet types"),
    (eio_packet, "NOOP", "engine/upstream.py ends a parked poll with it"),
    (sio_packet, "EVENT", "sio/fanout.py encodes broadcasts"),
    *[(sio_packet, name, "engine/upstream.py HookedServer dispatches on the packet type")
      for name in ("CONNECT", "DISCONNECT", "ACK", "CONNECT_ERROR", "BINARY_EVENT", "BINARY_ACK")],
]


@pytest.mark.parametrize(("owner", "name", "params", "used_by"), METHODS, ids=lambda v: v if isinstance(v, str) else None)
def test_upstream_method_exists_with_expected_parameters(owner: Any, name: str, params: tuple[str, ...] | None, used_by: str) -> None:
    """Each overridden or called upstream method exists and still takes the parameters we pass or accept."""
    member = getattr(owner, name, None)
    assert member is not None, f"{owner.__module__}.{owner.__qualname__}.{name} is gone ({used_by})"
    if params is None:
        return
    accepted = list(inspect.signature(member).parameters)
    missing = [p for p in params if p not in accepted]
    assert not missing, f"{owner.__qualname__}.{name} no longer takes {missing} ({used_by}); it takes {accepted}"


@pytest.mark.parametrize(("module", "name", "used_by"), MODULE_NAMES, ids=lambda v: v if isinstance(v, str) else None)
def test_upstream_module_names_exist(module: Any, name: str, used_by: str) -> None:
    """Each module-level upstream name we import still exists."""
    assert hasattr(module, name), f"{module.__name__}.{name} is gone ({used_by})"


def test_engineio_server_instance_attributes() -> None:
    """engine/upstream.py replaces eio._async entries and eio.sockets; the lean socket reads the ping settings."""
    server = engineio.AsyncServer(async_mode="aiohttp")
    assert isinstance(getattr(server, "_async", None), dict), "engineio.AsyncServer._async (driver table) is gone"
    for key in ("websocket", "translate_request", "make_response"):
        assert key in server._async, f"engineio.AsyncServer._async[{key!r}] is gone (engine/upstream.py replaces it)"
    for attr in ("sockets", "ping_interval", "ping_timeout", "max_http_buffer_size", "reason", "logger"):
        assert hasattr(server, attr), f"engineio.AsyncServer.{attr} is gone (engine/upstream.py reads it)"
    for reason in ("PING_TIMEOUT", "TRANSPORT_CLOSE"):
        assert hasattr(server.reason, reason), f"engineio.AsyncServer.reason.{reason} is gone"


def test_engineio_socket_can_change_class_and_has_its_state() -> None:
    """SocketTable swaps a new socket's __class__ to LeanSocket: AsyncSocket must be a plain class (no __slots__)
    holding the state the lean socket reads."""
    assert "__slots__" not in vars(AsyncSocket), "engineio AsyncSocket grew __slots__: the class swap breaks"
    server = engineio.AsyncServer(async_mode="aiohttp")
    sock = AsyncSocket(server, "sid-1")
    for attr in ("queue", "sid", "closed", "closing", "connected", "upgraded", "upgrading", "last_ping", "server"):
        assert hasattr(sock, attr), f"engineio AsyncSocket().{attr} is gone (engine/upstream.py, sio/fanout.py)"


def test_socketio_server_and_manager_state() -> None:
    """engine/upstream.py reads _binary_packet and packet_class; the manager's room tables are read by fan-out."""
    server = socketio.AsyncServer(async_mode="aiohttp")
    assert hasattr(server, "_binary_packet"), "socketio.AsyncServer._binary_packet is gone (engine/upstream.py)"
    assert hasattr(server, "packet_class"), "socketio.AsyncServer.packet_class is gone (sio/fanout.py)"
    assert hasattr(server.reason, "CLIENT_DISCONNECT"), "socketio.AsyncServer.reason.CLIENT_DISCONNECT is gone (engine/upstream.py)"
    decoded = server.packet_class(encoded_packet='51-["x",{"_placeholder":true,"num":0}]')
    assert decoded.attachment_count == 1, "socketio Packet.attachment_count is gone (engine/upstream.py)"
    manager = server.manager
    for attr in ("rooms", "callbacks", "pending_connect", "pending_disconnect"):
        assert hasattr(manager, attr), f"socketio manager .{attr} is gone (sio/fanout.py)"


async def test_pending_sids_keep_upstream_list_protocol_in_constant_time() -> None:
    """fanout.LeanManager swaps python-socketio's pending_connect/pending_disconnect lists for upstream.SidSets: its
    pre_connect, connect, pre_disconnect, is_connected and basic_disconnect still see a socket connect and leave, and
    the namespace's entry is a SidSet (a dict) however upstream created it."""
    from realtime_sio.engine.upstream import SidSet
    from realtime_sio.sio.fanout import LeanManager

    server = socketio.AsyncServer(async_mode="aiohttp", client_manager=LeanManager(1 << 20))
    manager = server.manager
    sids = [await manager.pre_connect(f"eio-{i}", "/") for i in range(3)]
    assert isinstance(manager.pending_connect["/"], SidSet)
    assert not manager.is_connected(sids[0], "/"), "a pre-connected socket is not connected yet"
    for sid in sids:
        assert await manager.connect(sid, "/") == sid
    assert "/" not in manager.pending_connect, "upstream drops a namespace's entry once it is empty"
    assert manager.is_connected(sids[1], "/")
    manager.pre_disconnect(sids[1], "/")
    assert isinstance(manager.pending_disconnect["/"], SidSet)
    assert not manager.is_connected(sids[1], "/"), "a socket being disconnected is no longer connected"
    assert manager.is_connected(sids[2], "/")
    manager.basic_disconnect(sids[1], "/")
    assert "/" not in manager.pending_disconnect
    assert manager.is_connected(sids[2], "/") and not manager.is_connected(sids[1], "/")


def test_aiohttp_names_used() -> None:
    """engine/upstream.hide_versions sets aiohttp.web_response.SERVER_SOFTWARE (read for every response's Server header);
    logs._ClientErrorFilter recognises aiohttp's parser errors by HttpProcessingError."""
    import aiohttp.web_response
    from aiohttp import http_exceptions

    assert isinstance(getattr(aiohttp.web_response, "SERVER_SOFTWARE", None), str), "aiohttp.web_response.SERVER_SOFTWARE is gone"
    assert issubclass(http_exceptions.BadHttpMessage, http_exceptions.HttpProcessingError)


async def test_upstream_manager_reads_rooms_that_are_not_bidicts() -> None:
    """python-socketio's own manager methods work on engine/upstream.Room rooms: get_participants reads bidict's
    ``_fwdm``, and only the namespace's None room (still a bidict) is read through its inverse."""
    import logging

    from bidict import bidict

    from realtime_sio.engine.upstream import Room
    from realtime_sio.sio.fanout import LeanManager

    quiet = logging.getLogger("tests.upstream_contract")
    manager = LeanManager(max_buffered_bytes=1 << 20)
    socketio.AsyncServer(client_manager=manager, logger=quiet, engineio_logger=quiet)
    for eio in ("ea", "eb"):
        sid = await manager.pre_connect(eio, "/")  # upstream: the None room, then the sid's own room
        await manager.connect(sid, "/")
        manager.basic_enter_room(sid, "/", "news")
    a, b = manager.sid_from_eio_sid("ea", "/"), manager.sid_from_eio_sid("eb", "/")
    rooms = manager.rooms["/"]
    assert isinstance(rooms[None], bidict) and all(type(r) is Room for k, r in rooms.items() if k is not None)
    assert dict(socketio.AsyncManager.get_participants(manager, "/", "news")) == {a: "ea", b: "eb"}
    assert dict(socketio.AsyncManager.get_participants(manager, "/", ["news", a])) == {a: "ea", b: "eb"}
    assert manager.eio_sid_from_sid(a, "/") == "ea" and manager.is_connected(a, "/")
    with pytest.raises(ValueError, match="sid room"):
        manager.basic_enter_room(a, "/", b)
    socketio.AsyncManager.basic_leave_room(manager, a, "/", "news")
    assert dict(rooms["news"]) == {b: "eb"}
    socketio.AsyncManager.basic_close_room(manager, "news", "/")
    assert "news" not in rooms
    await socketio.AsyncManager.disconnect(manager, a, "/")
    assert a not in rooms and a not in rooms[None]
