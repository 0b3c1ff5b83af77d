"""The Pusher protocol 7 on /app/{key} against a real server: handshake, channels, auth, errors, both protocols at once."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from realtime_sio.auth import pusher_signature
from tests.integration.test_events_api import post
from tests.pusher_client import (
    APP_ID,
    APP_KEY,
    APP_SECRET,
    PUSHER_APPS,
    PusherClient,
    presence_data,
)
from tests.support import Client, ServerProcess, base_env, token

# Refusals are logged as client_input_refused (info); the failed handler path would be an ERROR line.
ENV = {"REALTIME_SIO_PUSHER_APPS": PUSHER_APPS}


@pytest.fixture(scope="module")
def server() -> Iterator[ServerProcess]:
    """One embedded-mode server with a Pusher app, shared by this module."""
    proc = ServerProcess(env=base_env(**ENV, REALTIME_SIO_PUSHER_CLIENT_EVENT_RATE="5"))
    proc.start()
    yield proc
    proc.kill()


async def pusher_api(url: str, channel: str, event: str, data: Any, socket_id: str | None = None) -> int:
    """POST /apps/{id}/events signed as pusher-php-server signs it."""
    body: dict[str, Any] = {"name": event, "channel": channel, "data": json.dumps(data)}
    if socket_id:
        body["socket_id"] = socket_id
    raw = json.dumps(body).encode()
    path = f"/apps/{APP_ID}/events"
    query = pusher_signature.signed_params(APP_KEY, APP_SECRET, "POST", path, raw, int(time.time()))
    async with aiohttp.ClientSession() as http:
        response = await http.post(f"{url}{path}", params=query, data=raw, headers={"Content-Type": "application/json"})
        return response.status


async def test_connection_established(server: ServerProcess, pushers: Any) -> None:
    """The server greets with a "N.N" socket id and its activity timeout, and answers pusher:ping with pusher:pong."""
    client: PusherClient = pushers(server.url)
    await client.connect()
    (greeting,) = client.named("pusher:connection_established")
    data = json.loads(greeting["data"])
    first, _, second = data["socket_id"].partition(".")
    assert first.isdigit() and second.isdigit() and data["activity_timeout"] == 30
    await client.ping()


async def test_unknown_app_key(server: ServerProcess, pushers: Any) -> None:
    """An unknown key gets pusher:error 4001 and the connection is closed with 4001 (pusher-js does not retry)."""
    client: PusherClient = pushers(server.url, key="no-such-key")
    await client.connect(wait=False)
    assert await client.wait_closed() == 4001
    assert client.messages == [{"event": "pusher:error", "data": {"code": 4001, "message": "Application does not exist"}}]


async def test_unsupported_protocol(server: ServerProcess, pushers: Any) -> None:
    """A protocol version other than 5-7 is closed with 4007."""
    client: PusherClient = pushers(server.url)
    await client.connect(wait=False, query="protocol=99")
    assert await client.wait_closed() == 4007


async def test_origins_follow_the_apps_own_list_else_cors_origins(server_factory: Any, pushers: Any, tmp_path: Path) -> None:
    """An app with allowed_origins ([[apps]] in the config file) admits those pages and refuses others with 4009, even
    one CORS_ORIGINS lists; an app without its own list follows CORS_ORIGINS; a client sending no Origin is admitted."""
    config = tmp_path / "apps.toml"
    config.write_text(
        f'[[apps]]\nid = "{APP_ID}"\nkey = "{APP_KEY}"\nsecret = "{APP_SECRET}"\nallowed_origins = ["https://shop.example.com"]\n'
        f'[[apps]]\nid = "app-2"\nkey = "key-2"\nsecret = "{APP_SECRET}"\n'
    )
    srv = server_factory(REALTIME_SIO_CONFIG_FILE=str(config), REALTIME_SIO_CORS_ORIGINS="https://app.example.com")
    for key, origin, admitted in (
        (APP_KEY, "https://shop.example.com", True),
        (APP_KEY, "https://app.example.com", False),
        ("key-2", "https://app.example.com", True),
        ("key-2", "https://shop.example.com", False),
        (APP_KEY, None, True),
    ):
        client: PusherClient = pushers(srv.url, key=key)
        await client.connect(wait=False, **({"origin": origin} if origin else {}))
        if admitted:
            await client.wait_for("pusher:connection_established")
        else:
            assert await client.wait_closed() == 4009, (key, origin)
            assert client.messages[0]["data"]["code"] == 4009


async def test_public_channel_from_every_source(server: ServerProcess, pushers: Any, clients: Any) -> None:
    """Sidecar and Pusher API events reach a Pusher and a Socket.IO subscriber once each, in order, data as Pusher sends it."""
    channel = "orders.1"
    pusher: PusherClient = pushers(server.url)
    await pusher.connect()
    await pusher.joined(channel)
    sio: Client = clients(server.url)
    await sio.connect()
    await sio.joined(channel)
    status, _ = await post(server.url, {"channel": channel, "event": "Shipped", "data": {"n": 1}})
    assert status == 200
    assert await pusher_api(server.url, channel, "Shipped", {"n": 2}) == 200
    events = await pusher.wait_for("Shipped", 2)
    assert [json.loads(e["data"]) for e in events] == [{"n": 1}, {"n": 2}]
    assert all(set(e) == {"event", "channel", "data"} and e["channel"] == channel for e in events)
    got = await sio.wait_for("Shipped", 2)
    assert [args[1] for args in got] == [{"n": 1}, {"n": 2}]
    await pusher.ping()
    await sio.sio.call("ping")
    assert len(pusher.named("Shipped")) == 2 and len(sio.named("Shipped")) == 2


async def test_to_others_with_a_pusher_socket_id(server: ServerProcess, pushers: Any, clients: Any) -> None:
    """socket_id on the Pusher API skips that Pusher connection only (Laravel's toOthers with X-Socket-ID)."""
    channel = "orders.2"
    a: PusherClient = pushers(server.url)
    b: PusherClient = pushers(server.url)
    for c in (a, b):
        await c.connect()
        await c.joined(channel)
    assert await pusher_api(server.url, channel, "E", {"n": 1}, socket_id=a.socket_id) == 200
    await b.wait_for("E")
    await a.ping()
    assert a.named("E") == []


async def test_subscribe_before_connection_established(server: ServerProcess, pushers: Any) -> None:
    """A subscribe sent in the same breath as the upgrade is handled after the greeting, in order."""
    client: PusherClient = pushers(server.url)
    await client.connect(wait=False)
    await client.send({"event": "pusher:subscribe", "data": {"channel": "early.1"}})
    await client.wait_for("pusher_internal:subscription_succeeded", channel="early.1")
    assert client.messages[0]["event"] == "pusher:connection_established"


async def test_private_channel_signatures(server: ServerProcess, pushers: Any) -> None:
    """A valid key:HMAC joins; a missing, forged, other-socket or other-channel signature never does (4009)."""
    client: PusherClient = pushers(server.url)
    await client.connect()
    other_socket = pusher_signature.channel_auth(APP_KEY, APP_SECRET, "1.2", "private-a")
    bad = [
        ("private-a", None),  # no auth at all
        ("private-a", "garbage"),
        ("private-a", client.auth("private-a", secret="wrong-secret")),
        ("private-a", other_socket),
        ("private-a", client.auth("private-b")),
        ("private-encrypted-a", client.auth("private-a")),
    ]
    for channel, auth in bad:
        data: dict[str, Any] = {"channel": channel}
        if auth is not None:
            data["auth"] = auth
        await client.send({"event": "pusher:subscribe", "data": data})
    await client.ping()
    errors = client.named("pusher:error")
    assert [e["data"]["code"] for e in errors] == [4009] * len(bad)
    assert [e["data"]["status"] for e in client.named("pusher:subscription_error")] == [401] * len(bad)
    assert client.named("pusher_internal:subscription_succeeded") == []
    await client.joined("private-a")
    await client.joined("private-encrypted-a")
    assert await pusher_api(server.url, "private-encrypted-a", "E", {"ciphertext": "xyz", "nonce": "n"}) == 200
    (event,) = await client.wait_for("E")
    assert json.loads(event["data"]) == {"ciphertext": "xyz", "nonce": "n"}  # relayed untouched


async def test_presence_channel_data_is_signed(server: ServerProcess, pushers: Any) -> None:
    """channel_data is part of the signature: a changed user_id fails; the signed one joins with here-members."""
    client: PusherClient = pushers(server.url)
    await client.connect()
    channel = "presence-room.1"
    signed = presence_data(5, "Eve")
    await client.subscribe(channel, presence_data(1, "Admin"), auth=client.auth(channel, signed))
    await client.wait_for("pusher:error")
    data = await client.joined(channel, signed)
    assert data == {"presence": {"ids": [5], "hash": {"5": {"id": 5, "name": "Eve"}}, "count": 1}}


async def test_bad_input_gets_pusher_errors(server: ServerProcess, pushers: Any) -> None:
    """Malformed JSON, unknown pusher: events, a malformed signin, invalid names, bad channel_data: pusher:error, the
    connection lives on."""
    client: PusherClient = pushers(server.url)
    await client.connect()
    await client.send("{not json")
    await client.send("[1, 2]")
    await client.send({"event": "pusher:watchlist", "data": {}})
    await client.send({"event": "pusher:signin", "data": {}})  # served since issue 12: a signin without auth is 4009
    await client.send({"event": "pusher:subscribe", "data": {"channel": "bad name!"}})
    await client.send({"event": "pusher:subscribe", "data": "nope"})
    channel = "presence-x"
    await client.subscribe(channel, "{}", auth=client.auth(channel, "{}"))  # signed, but no user_id
    await client.ping()
    codes = [e["data"]["code"] for e in client.named("pusher:error")]
    assert codes == [4200, 4200, 4200, 4009, 4009, 4200, 4009]
    await client.joined("still.alive")


async def test_oversized_frame_closes_1009(server: ServerProcess, pushers: Any) -> None:
    """A message over PUSHER_MAX_MESSAGE_BYTES (10,000) closes the connection with 1009, as Reverb does."""
    client: PusherClient = pushers(server.url)
    await client.connect()
    await client.send({"event": "client-big", "channel": "private-a", "data": "x" * 20_000})
    assert await client.wait_closed() == 1009


async def test_client_events(server: ServerProcess, pushers: Any) -> None:
    """Whispers: members of private/presence channels only, not echoed, rate-limited (4301), user_id on presence."""
    a: PusherClient = pushers(server.url)
    b: PusherClient = pushers(server.url)
    for c in (a, b):
        await c.connect()
    await a.send({"event": "client-typing", "channel": "private-chat", "data": {"x": 1}})  # not joined
    await a.send({"event": "client-typing", "channel": "public-chat", "data": {"x": 1}})  # public
    await a.ping()
    assert [e["data"]["code"] for e in a.named("pusher:error")] == [4009, 4009]
    for c in (a, b):
        await c.joined("private-chat")
    await a.send({"event": "client-typing", "channel": "private-chat", "data": {"x": 2}})
    (got,) = await b.wait_for("client-typing")
    assert got == {"event": "client-typing", "channel": "private-chat", "data": {"x": 2}}
    await a.ping()
    assert a.named("client-typing") == []
    channel = "presence-chat"
    await a.joined(channel, presence_data(1, "A"))
    await b.joined(channel, presence_data(2, "B"))
    await a.send({"event": "client-hi", "channel": channel, "data": "hello"})
    (hi,) = await b.wait_for("client-hi")
    assert hi["user_id"] == "1" and hi["data"] == "hello"
    for i in range(10):  # PUSHER_CLIENT_EVENT_RATE=5: a burst of 10 is partly refused
        await a.send({"event": "client-burst", "channel": "private-chat", "data": i})
    await a.ping()
    assert 4301 in [e["data"]["code"] for e in a.named("pusher:error")]
    await b.ping()
    assert 0 < len(b.named("client-burst")) < 10


async def test_cache_channel(server: ServerProcess, pushers: Any) -> None:
    """cache- channels: pusher:cache_miss before any event, the last event replayed after subscribe afterwards."""
    client: PusherClient = pushers(server.url)
    await client.connect()
    await client.joined("cache-prices")
    await client.wait_for("pusher:cache_miss", channel="cache-prices")
    assert await pusher_api(server.url, "cache-prices", "Price", {"v": 1}) == 200
    assert await pusher_api(server.url, "cache-prices", "Price", {"v": 2}) == 200
    await client.wait_for("Price", 2)
    late: PusherClient = pushers(server.url)
    await late.connect()
    await late.joined("cache-prices")
    (replayed,) = await late.wait_for("Price")
    assert json.loads(replayed["data"]) == {"v": 2}
    assert late.named("pusher:cache_miss") == []


async def test_cross_protocol_presence_and_whispers(server: ServerProcess, pushers: Any, clients: Any) -> None:
    """A Socket.IO tab and a Pusher tab of one user are one member; joins, leaves and whispers cross both ways."""
    channel = "presence-chat.9"
    watcher: PusherClient = pushers(server.url)  # user 2 on Pusher
    await watcher.connect()
    await watcher.joined(channel, presence_data(2, "Bob"))

    alice_sio: Client = clients(server.url)  # user 1 on Socket.IO (JWT identity)
    await alice_sio.connect(auth={"token": token(1, name="Alice")})
    await alice_sio.joined(channel)
    (added,) = await watcher.wait_for("pusher_internal:member_added")
    assert json.loads(added["data"]) == {"user_id": 1, "user_info": {"id": 1, "name": "Alice"}}  # JWT ids read as ints

    alice_pusher: PusherClient = pushers(server.url)  # user 1 again, on Pusher: the same member
    await alice_pusher.connect()
    here = await alice_pusher.joined(channel, json.dumps({"user_id": "1", "user_info": {"id": 1, "name": "Alice"}}))
    assert here["presence"]["count"] == 2 and sorted(map(str, here["presence"]["ids"])) == ["1", "2"]
    await watcher.ping()
    await alice_sio.sio.call("ping")
    assert len(watcher.named("pusher_internal:member_added")) == 1 and alice_sio.named("presence:joining") == []

    await alice_sio.sio.emit("client event", {"channel": channel, "event": "client-typing", "data": {"from": "sio"}})
    (whisper,) = await watcher.wait_for("client-typing")
    assert whisper["data"] == {"from": "sio"}
    await watcher.send({"event": "client-typing", "channel": channel, "data": {"from": "pusher"}})
    (back,) = await alice_sio.wait_for("client-typing")
    assert back == (channel, {"from": "pusher"})

    await alice_sio.close()  # Alice still has her Pusher tab: no leave
    await watcher.ping()
    assert watcher.named("pusher_internal:member_removed") == []
    await alice_pusher.close()
    (removed,) = await watcher.wait_for("pusher_internal:member_removed")
    assert json.loads(removed["data"]) == {"user_id": "1"}


async def test_pusher_api_counts_both_protocols(server: ServerProcess, pushers: Any, clients: Any) -> None:
    """subscription_count and /channels count Pusher and Socket.IO subscribers; user_count counts one user once."""
    channel = "presence-chat.count"
    p: PusherClient = pushers(server.url)
    await p.connect()
    await p.joined(channel, presence_data(3, "C"))
    s: Client = clients(server.url)
    await s.connect(auth={"token": token(4)})
    await s.joined(channel)
    path = f"/apps/{APP_ID}/channels/{channel}"
    query = pusher_signature.signed_params(APP_KEY, APP_SECRET, "GET", path, b"", int(time.time()), {"info": "user_count,subscription_count"})
    async with aiohttp.ClientSession() as http:
        response = await http.get(f"{server.url}{path}", params=query)
        assert response.status == 200
        assert await response.json() == {"occupied": True, "subscription_count": 2, "user_count": 2}


async def test_pong_timeout(server_factory: Callable[..., ServerProcess], pushers: Any) -> None:
    """A client silent past activity_timeout gets pusher:ping; still silent after pong_timeout, it is closed with 4201."""
    server = server_factory(**ENV, REALTIME_SIO_PUSHER_ACTIVITY_TIMEOUT="1", REALTIME_SIO_PUSHER_PONG_TIMEOUT="1")
    client: PusherClient = pushers(server.url)
    await client.connect()
    await client.wait_for("pusher:ping", timeout=10)
    assert await client.wait_closed(timeout=10) == 4201


async def test_drain_tells_pusher_clients_to_reconnect(server_factory: Callable[..., ServerProcess], pushers: Any) -> None:
    """SIGTERM: Pusher clients get 4200 (reconnect now) before the process exits."""
    server = server_factory(**ENV)
    client: PusherClient = pushers(server.url)
    await client.connect()
    await client.joined("drain.1")
    await asyncio.to_thread(server.terminate)
    assert await client.wait_closed() == 4200
    assert client.named("pusher:error")[-1]["data"]["code"] == 4200


async def test_metrics_count_pusher_connections(server_factory: Callable[..., ServerProcess], pushers: Any) -> None:
    """websocket_connections_total (the watchdog's traffic check) and realtime_sio_connections{protocol} count Pusher
    connections; subscriptions are counted per kind as for Socket.IO."""
    server = server_factory(**ENV)
    client: PusherClient = pushers(server.url)
    await client.connect()
    await client.joined("metrics.1")
    async with aiohttp.ClientSession() as http:
        text = await (await http.get(f"{server.url}/metrics")).text()
    assert "websocket_connections_total 1.0" in text
    assert 'realtime_sio_connections{protocol="pusher"} 1.0' in text
    assert 'realtime_sio_channel_subscriptions{protocol="pusher"} 1.0' in text
    assert 'realtime_sio_subscriptions{kind="public"} 1.0' in text


async def test_signin(server: ServerProcess, pushers: Any) -> None:
    """pusher:signin with user_data signed like Laravel's /broadcasting/user-auth answers signin_success and
    acknowledges #server-to-user-<id> for that user only; a bad signature or a non-string id gets pusher:error 4009
    and the connection stays open."""
    p: PusherClient = pushers(server.url)
    await p.connect()
    await p.signin('{"id":"12345"}', auth=f"{APP_KEY}:{'0' * 64}")
    await p.signin('{"id":12345}')
    (_, bad_id) = await p.wait_for("pusher:error", 2)
    assert bad_id["data"]["code"] == 4009
    assert p.named("pusher:signin_success") == []
    await p.subscribe("#server-to-user-12345")  # not signed in: not a channel name
    await p.wait_for("pusher:subscription_error", channel="#server-to-user-12345")
    user_data = '{"id":"12345","user_info":{"name":"Ada"}}'
    await p.signin(user_data)
    (ok,) = await p.wait_for("pusher:signin_success")
    assert json.loads(ok["data"]) == {"user_data": user_data}
    await p.joined("#server-to-user-12345")
    await p.ping()
    assert p.close_code is None
