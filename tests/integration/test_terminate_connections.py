"""POST /apps/{id}/users/{user}/terminate_connections on two real nodes sharing a real redis-server: one signed
request closes the user's Socket.IO and Pusher connections on every node, and nobody else's."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from tests.integration.test_cluster import ready
from tests.integration.test_events_api import post
from tests.integration.test_pusher_api import APP, signed
from tests.pusher_client import PUSHER_APPS, PusherClient, presence_data
from tests.support import Client, RedisServer, ServerProcess, eventually, token

ROOM = "presence-room.1"


@pytest.fixture
def two_nodes(redis_server: RedisServer, server_factory: Callable[..., ServerProcess]) -> list[ServerProcess]:
    return [server_factory(REALTIME_SIO_REDIS_URL=redis_server.url, REALTIME_SIO_PUSHER_APPS=PUSHER_APPS) for _ in range(2)]


def terminate_path(user_id: str, app_id: str = APP["appId"]) -> str:
    return f"/apps/{app_id}/users/{user_id}/terminate_connections"


async def socketio_user(clients: Any, url: str, user: int) -> tuple[Client, list[Any]]:
    """A Socket.IO client of ``user`` that WOULD reconnect after a dropped transport; returns it and its disconnect
    reasons."""
    client: Client = clients(url, reconnection=True, reconnection_delay=0.1)
    reasons: list[Any] = []
    client.sio.on("disconnect", lambda reason=None: reasons.append(reason))
    await client.connect(auth={"token": token(user, name=f"user {user}")})
    await client.joined("orders")
    return client, reasons


async def test_terminate_closes_both_protocols_on_every_node(two_nodes: list[ServerProcess], pushers: Any, clients: Any) -> None:
    """A signed request to node A closes user 5's Socket.IO socket on node A (server disconnect: no reconnect) and
    their Pusher connections on node B (a presence member and a signed-in one: pusher:error 4009, close 4009); user
    6's connections on both nodes stay open, see user 5 leave the presence channel and still receive events."""
    a, b = two_nodes
    for node in two_nodes:
        await ready(node)
    sio5, reasons5 = await socketio_user(clients, a.url, 5)
    sio6, reasons6 = await socketio_user(clients, a.url, 6)
    member5: PusherClient = pushers(b.url)
    signed5: PusherClient = pushers(b.url)
    member6: PusherClient = pushers(b.url)
    for p in (member5, signed5, member6):
        await p.connect()
    await member6.joined(ROOM, presence_data(6, "Six"))
    await member5.joined(ROOM, presence_data(5, "Five"))
    await member6.wait_for("pusher_internal:member_added", channel=ROOM)
    await signed5.signin('{"id":"5"}')
    await signed5.wait_for("pusher:signin_success")
    await signed5.joined("orders")
    await member6.joined("orders")

    status, body = await signed(a, "POST", terminate_path("5"), b"{}")
    assert (status, body) == (200, {})

    for p in (member5, signed5):
        assert await p.wait_closed() == 4009
        (error,) = p.named("pusher:error")
        assert error["data"] == {"code": 4009, "message": "User connection terminated"}
    # python-socketio's name for socket.io-client's "io server disconnect": neither client reconnects after it
    await eventually(lambda: reasons5 == ["server disconnect"], what=f"user 5's socket to be disconnected (got {reasons5})")
    (removed,) = await member6.wait_for("pusher_internal:member_removed", channel=ROOM)
    assert json.loads(removed["data"]) == {"user_id": 5}

    status, _ = await post(b.url, {"channel": "orders", "event": "Shipped", "data": {"id": 1}})
    assert status == 200
    await sio6.wait_for("Shipped")
    await member6.wait_for("Shipped")
    assert reasons6 == [] and member6.close_code is None
    assert not sio5.sio.connected and sio5.named("Shipped") == []  # the event came after; user 5 did not come back
    assert reasons5 == ["server disconnect"]


async def test_terminate_refusals(two_nodes: list[ServerProcess], pushers: Any) -> None:
    """An unknown app id is 404 and a bad signature 401, as on the other /apps routes; neither closes anything."""
    a, b = two_nodes
    for node in two_nodes:
        await ready(node)
    member: PusherClient = pushers(b.url)
    await member.connect()
    await member.joined(ROOM, presence_data(5, "Five"))

    unknown = {**APP, "appId": "app-404"}
    status, body = await signed(a, "POST", terminate_path("5", unknown["appId"]), b"{}", app=unknown)
    assert status == 404 and body["error"]["code"] == "unknown_app"

    def forge(query: dict[str, str]) -> None:
        query["auth_signature"] = "0" * 64

    status, body = await signed(a, "POST", terminate_path("5"), b"{}", tamper=forge)
    assert status == 401 and body["error"]["code"] == "signature_invalid"
    wrong_secret = {**APP, "secret": "not-the-secret-000000"}
    status, _ = await signed(a, "POST", terminate_path("5"), b"{}", app=wrong_secret)
    assert status == 401

    await member.ping()  # a round trip after the refused requests
    assert member.close_code is None and member.named("pusher:error") == []


async def test_terminate_answers_503_when_redis_is_away(
    redis_server: RedisServer, server_factory: Callable[..., ServerProcess], clients: Any
) -> None:
    """With Redis down the termination cannot reach the other nodes: 503 unavailable (retryable), and it is not
    carried out on this node alone either (an ephemeral signal's local fallback does not apply)."""
    node = server_factory(REALTIME_SIO_REDIS_URL=redis_server.url, REALTIME_SIO_PUSHER_APPS=PUSHER_APPS)
    await ready(node)
    sio5, reasons5 = await socketio_user(clients, node.url, 5)
    redis_server.stop()
    status, body = await signed(node, "POST", terminate_path("5"), b"{}")
    assert (status, body["error"]["code"], body["error"]["retryable"]) == (503, "unavailable", True)
    assert await sio5.sio.call("ping", timeout=5) == "pong"  # a round trip: the socket is still served
    assert reasons5 == [] and sio5.sio.connected
