"""Subscribing to public, private and presence channels against a real server, refusals and bad input included."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from tests.support import API_KEY, Client, ServerProcess, eventually, token


async def post_event(url: str, body: dict[str, Any]) -> aiohttp.ClientResponse:
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {API_KEY}"}) as http:
        response = await http.post(f"{url}/api/v1/events", json=body)
        await response.read()
        return response


async def test_public_channel_needs_no_token(server: ServerProcess, clients: Any) -> None:
    """An anonymous socket joins a public channel and receives (event, channel, data)."""
    c = clients(server.url)
    await c.connect()
    await c.joined("news")
    await post_event(server.url, {"channel": "news", "event": "App\\Events\\Posted", "data": {"id": 1}})
    (args,) = await c.wait_for("App\\Events\\Posted")
    assert args[0] == "news" and args[1] == {"id": 1}


@pytest.mark.parametrize(
    ("user", "roles", "channel", "allowed"),
    [
        (42, [], "private-user.42", True),
        (42, [], "private-user.43", False),
        (42, [], "private-App.Models.User.42", True),
        (42, [], "private-App.Models.User.4", False),
        (42, ["editor"], "private-role.editor", True),
        (42, ["editor"], "private-role.admin", False),
        (42, [], "presence-chat.1", True),
        (42, [], "private-unknown.1", False),
        (42, [], "presence-unruled", False),
        (None, [], "private-user.42", False),
        (None, [], "presence-chat.1", False),
    ],
)
async def test_channel_rules(server: ServerProcess, clients: Any, user: int | None, roles: list[str], channel: str, allowed: bool) -> None:
    """Default rules: user id must match, role must be held, presence-chat needs any user, anything else private is denied."""
    c = clients(server.url)
    await c.connect(auth={"token": token(user, roles)} if user is not None else None)
    ack = await c.sio.call("subscribe", {"channel": channel})
    assert ack["ok"] is allowed
    if not allowed:
        (err,) = await c.wait_for("subscription_error")
        assert err[0] == channel and err[1] == 403 and err[2]["code"] == "channel_forbidden"


async def test_refused_private_channel_delivers_nothing(server: ServerProcess, clients: Any) -> None:
    """A socket refused on private-user.43 receives none of its events."""
    spy = clients(server.url)
    await spy.connect(auth={"token": token(42)})
    owner = clients(server.url)
    await owner.connect(auth={"token": token(43)})
    await spy.sio.call("subscribe", {"channel": "private-user.43"})
    await post_event(server.url, {"channel": "private-user.43", "event": "Secret", "data": {}})
    await owner.wait_for("Secret")
    assert spy.named("Secret") == []


BAD_PAYLOADS: list[tuple[str, Any, str]] = [
    ("string payload", "news", "payload_invalid"),
    ("list payload", ["news"], "payload_invalid"),
    ("missing channel", {}, "channel_invalid"),
    ("numeric channel", {"channel": 5}, "channel_invalid"),
    ("empty channel", {"channel": ""}, "channel_invalid"),
    ("too long", {"channel": "a" * 201}, "channel_invalid"),
    ("forbidden characters", {"channel": "news<script>"}, "channel_invalid"),
    ("space", {"channel": "a b"}, "channel_invalid"),
    ("bad since", {"channel": "news", "since": "yesterday"}, "positions_invalid"),
]


@pytest.mark.parametrize(("label", "payload", "code"), BAD_PAYLOADS, ids=[b[0] for b in BAD_PAYLOADS])
async def test_bad_subscribe_payloads_get_400(server: ServerProcess, clients: Any, label: str, payload: Any, code: str) -> None:
    """Malformed subscribe payloads get subscription_error(channel, 400, {code}) and join nothing."""
    c = clients(server.url)
    await c.connect()
    ack = await c.sio.call("subscribe", payload)
    assert ack["ok"] is False and ack["status"] == 400 and ack["code"] == code
    (err,) = await c.wait_for("subscription_error")
    assert err[1] == 400 and err[2]["code"] == code


async def test_subscribe_without_payload_is_refused(server: ServerProcess, clients: Any) -> None:
    """A subscribe with no argument at all is payload_invalid, not a crash."""
    c = clients(server.url)
    await c.connect()
    ack = await c.sio.call("subscribe")
    assert ack["code"] == "payload_invalid"


async def test_subscribe_flood_is_rate_limited(server_factory: Any, clients: Any) -> None:
    """Subscribes beyond the burst get 429 rate_limited; the socket stays connected and usable."""
    srv = server_factory(REALTIME_SIO_SUBSCRIBE_BURST="5", REALTIME_SIO_SUBSCRIBE_RATE="0.1")
    c = clients(srv.url)
    await c.connect()
    acks = [await c.sio.call("subscribe", {"channel": f"room-{i}"}) for i in range(8)]
    assert [a["ok"] for a in acks] == [True] * 5 + [False] * 3
    assert {a["code"] for a in acks[5:]} == {"rate_limited"} and acks[5]["status"] == 429
    assert await c.sio.call("ping") == "pong"


async def test_subscription_limit(server_factory: Any, clients: Any) -> None:
    """A socket cannot join more than REALTIME_SIO_MAX_SUBSCRIPTIONS channels."""
    srv = server_factory(REALTIME_SIO_MAX_SUBSCRIPTIONS="3", REALTIME_SIO_AUTO_JOIN="false")
    c = clients(srv.url)
    await c.connect()
    acks = [await c.sio.call("subscribe", {"channel": f"room-{i}"}) for i in range(4)]
    assert [a["ok"] for a in acks] == [True, True, True, False]
    assert acks[3]["code"] == "too_many_subscriptions"


async def test_unsubscribe_stops_delivery(server: ServerProcess, clients: Any) -> None:
    """After unsubscribe the socket no longer receives the channel's events."""
    c = clients(server.url)
    await c.connect()
    await c.joined("sports")
    await c.sio.emit("unsubscribe", {"channel": "sports"})
    await c.sio.call("ping")
    await post_event(server.url, {"channel": "sports", "event": "Goal", "data": 1})
    await post_event(server.url, {"channel": "news", "event": "Marker", "data": 1})
    other = clients(server.url)
    await other.connect()
    await other.joined("sports")
    await post_event(server.url, {"channel": "sports", "event": "Goal", "data": 2})
    await other.wait_for("Goal")
    assert c.named("Goal") == []


async def test_unknown_events_and_bad_unsubscribes_are_dropped(server: ServerProcess, clients: Any) -> None:
    """Unknown events and malformed unsubscribes are dropped, counted and logged as one info line; no traceback."""
    c = clients(server.url)
    await c.connect()
    await c.sio.emit("hack the planet", {"x": 1})
    await c.sio.emit("unsubscribe", "nonsense")
    await c.sio.emit("unsubscribe", {"channel": "never-joined"})
    assert await c.sio.call("ping") == "pong"
    async with aiohttp.ClientSession() as http:
        text = await (await http.get(f"{server.url}/metrics")).text()
    assert 'realtime_sio_bad_input_total{reason="unknown_event"}' in text
    await eventually(lambda: '"event_name": "hack the planet"' in server.logs(), what="the dropped event logged")
    logs = server.logs()
    assert "Traceback" not in logs and '"level": "error"' not in logs and "handler_failed" not in logs


async def test_ping_without_ack_is_harmless(server: ServerProcess, clients: Any) -> None:
    """The Artillery flow's plain `ping` emit (no ack requested) does nothing bad."""
    c = clients(server.url)
    await c.connect()
    await c.sio.emit("ping")
    await c.sio.emit("ping", {"any": "payload"})
    assert await c.sio.call("ping") == "pong"


async def test_polling_transport(server: ServerProcess, clients: Any) -> None:
    """A long-polling-only client connects, subscribes and receives events."""
    c = clients(server.url)
    await c.connect(auth={"token": token(42)}, transports=["polling"])
    assert c.sio.transport() == "polling"
    await c.joined("news")
    await post_event(server.url, {"channel": "private-user.42", "event": "Poll", "data": {"n": 1}})
    await post_event(server.url, {"channel": "news", "event": "Poll", "data": {"n": 2}})
    got = await c.wait_for("Poll", 2)
    assert [a[1]["n"] for a in got] == [1, 2]


async def test_metrics_count_subscriptions_by_kind(server_factory: Any, clients: Any) -> None:
    """realtime_sio_subscriptions tracks joins and leaves per channel kind; websocket_connections_total the sockets."""
    srv = server_factory()
    c = clients(srv.url)
    await c.connect(auth={"token": token(9, ["ops"])})
    await c.joined("news")
    await c.joined("presence-chat.9")

    async def scrape() -> str:
        async with aiohttp.ClientSession() as http:
            return await (await http.get(f"{srv.url}/metrics")).text()

    text = await scrape()
    assert "websocket_connections_total 1.0" in text
    assert 'realtime_sio_subscriptions{kind="private"} 2.0' in text
    assert 'realtime_sio_subscriptions{kind="presence"} 1.0' in text
    assert 'realtime_sio_subscriptions{kind="public"} 1.0' in text
    await c.close()
    last = ""

    def drained() -> bool:
        return "websocket_connections_total 0.0" in last and 'realtime_sio_subscriptions{kind="private"} 0.0' in last

    for _ in range(200):
        last = await scrape()
        if drained():
            break
    await eventually(drained, timeout=1, what="gauges back to zero")


async def test_many_clients_one_bad(server: ServerProcess, clients: Any) -> None:
    """A client sending garbage does not disturb delivery to well-behaved clients."""
    good = [clients(server.url) for _ in range(3)]
    for g in good:
        await g.connect()
        await g.joined("lobby")
    bad: Client = clients(server.url)
    await bad.connect()
    for payload in (None, 1, "x", [1, 2], {"channel": None}, {"channel": "x" * 10_000}):
        await bad.sio.emit("subscribe", payload)
        await bad.sio.emit("client event", payload)
    await post_event(server.url, {"channel": "lobby", "event": "Hello", "data": "all"})
    for g in good:
        await g.wait_for("Hello")
