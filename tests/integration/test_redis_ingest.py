"""Laravel's Redis broadcaster → realtime_sio → Socket.IO clients, against a real redis-server and server process."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from redis.asyncio import Redis

from tests.support import Client, RedisServer, ServerProcess, eventually, token

EVENT = "App\\Events\\OrderShipped"


def php_json(value: Any) -> bytes:
    """json_encode() with PHP's default flags: no spaces, \\uXXXX escapes, escaped slashes."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=True).replace("/", "\\/").encode()


def laravel_payload(event: str, payload: dict[str, Any], socket: str | None) -> bytes:
    """Exactly what RedisBroadcaster::broadcast publishes: data still carries its own socket key."""
    data = {**payload, "socket": socket}
    return php_json({"event": event, "data": data, "socket": socket})


async def get_json(server: ServerProcess, path: str) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as http, http.get(server.url + path) as resp:
        return resp.status, await resp.json()


async def metrics_text(server: ServerProcess) -> str:
    async with aiohttp.ClientSession() as http, http.get(server.url + "/metrics") as resp:
        return await resp.text()


def sample(text: str, name: str, **labels: str) -> float:
    label_text = ",".join(f'{k}="{v}"' for k, v in labels.items())
    match = re.search(rf"^{re.escape(name)}\{{{re.escape(label_text)}\}} (\S+)$" if labels else rf"^{re.escape(name)} (\S+)$", text, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


async def eventually_async(probe: Callable[[], Awaitable[bool]], timeout: float, what: str) -> None:
    """Await ``probe()`` until it is true, or fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await probe():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


async def until_ready(server: ServerProcess, timeout: float = 15.0) -> None:
    """Wait until /ready says ready (the listener has confirmed its PSUBSCRIBE)."""

    async def probe() -> bool:
        status, _ = await get_json(server, "/ready")
        return status == 200

    await eventually_async(probe, timeout, "/ready 200")


@pytest.mark.parametrize("prefix", ["laravel_database_", "laravel-database-", "myapp:prod:", ""])
async def test_laravel_payloads_reach_clients(
    prefix: str, redis_server: RedisServer, server_factory: Callable[..., ServerProcess], clients: Callable[..., Client]
) -> None:
    """Private and presence broadcasts under each prefix arrive as (event, channel, data, {position})."""
    server = server_factory(REALTIME_SIO_REDIS_URL=redis_server.url, REALTIME_SIO_REDIS_PREFIX=prefix)
    await until_ready(server)
    alice = clients(server.url)
    await alice.connect(auth={"token": token(7, name="Alice")})
    await alice.joined("private-App.Models.User.7")
    await alice.joined("presence-chat.1")
    redis = Redis.from_url(redis_server.url)
    try:
        await redis.publish(prefix + "private-App.Models.User.7", laravel_payload(EVENT, {"order": {"id": 1, "url": "/o/1"}}, None))
        await redis.publish(prefix + "presence-chat.1", laravel_payload("message.posted", {"text": "hé"}, "someone-else"))
    finally:
        await redis.aclose()
    (private,) = await alice.wait_for(EVENT)
    assert private[:2] == ("private-App.Models.User.7", {"order": {"id": 1, "url": "/o/1"}, "socket": None})
    assert set(private[2]) == {"position"}
    (presence,) = await alice.wait_for("message.posted")
    assert presence[:2] == ("presence-chat.1", {"text": "hé", "socket": "someone-else"})
    # The cluster bus shares this Redis (its own pub/sub traffic carried both events): with an empty prefix the
    # listener's `*` pattern sees it too, and must skip it rather than count it as bad Laravel messages.
    text = await metrics_text(server)
    assert sum(sample(text, "realtime_sio_redis_messages_rejected_total", reason=r) for r in ("not_json", "channel_invalid")) == 0


async def test_to_others_excludes_exactly_that_socket(
    redis_server: RedisServer, server_factory: Callable[..., ServerProcess], clients: Callable[..., Client]
) -> None:
    """socket = one tab's id: that tab misses the event, the user's other tab and other users get it."""
    server = server_factory(REALTIME_SIO_REDIS_URL=redis_server.url, REALTIME_SIO_HISTORY_SIZE="0")
    await until_ready(server)
    tab1, tab2, bob = clients(server.url), clients(server.url), clients(server.url)
    for client, user in ((tab1, 7), (tab2, 7), (bob, 8)):
        await client.connect(auth={"token": token(user)})
        await client.joined("presence-chat.1")
    redis = Redis.from_url(redis_server.url)
    try:
        channel = "laravel_database_presence-chat.1"
        await redis.publish(channel, laravel_payload("typing", {"n": 1}, tab1.sid))
        await redis.publish(channel, laravel_payload("typing", {"n": 2}, None))
    finally:
        await redis.aclose()
    for client in (tab2, bob):
        received = await client.wait_for("typing", 2)
        assert received == [("presence-chat.1", {"n": 1, "socket": tab1.sid}), ("presence-chat.1", {"n": 2, "socket": None})]
    # Events on one connection arrive in order: once n=2 is in, n=1 would have been too.
    assert await tab1.wait_for("typing") == [("presence-chat.1", {"n": 2, "socket": None})]


async def test_glob_characters_in_prefix_match_literally(
    redis_server: RedisServer, server_factory: Callable[..., ServerProcess], clients: Callable[..., Client]
) -> None:
    """A prefix like my[app]_ is escaped: mya_… (which the raw glob would match) is not delivered."""
    server = server_factory(REALTIME_SIO_REDIS_URL=redis_server.url, REALTIME_SIO_REDIS_PREFIX="my[app]_")
    await until_ready(server)
    alice = clients(server.url)
    await alice.connect(auth={"token": token(7)})
    await alice.joined("private-App.Models.User.7")
    redis = Redis.from_url(redis_server.url)
    try:
        await redis.publish("mya_private-App.Models.User.7", laravel_payload("E", {"n": 1}, None))
        await redis.publish("my[app]_private-App.Models.User.7", laravel_payload("E", {"n": 2}, None))
    finally:
        await redis.aclose()
    received = await alice.wait_for("E")
    assert [args[1]["n"] for args in received] == [2]


async def test_bad_messages_are_counted_logged_and_skipped(
    redis_server: RedisServer, server_factory: Callable[..., ServerProcess], clients: Callable[..., Client]
) -> None:
    """Each malformed message bumps redis_messages_rejected{reason}, logs a short preview, and the listener carries on."""
    server = server_factory(REALTIME_SIO_REDIS_URL=redis_server.url, REALTIME_SIO_REDIS_MAX_MESSAGE_BYTES="2048")
    await until_ready(server)
    alice = clients(server.url)
    await alice.connect(auth={"token": token(7)})
    await alice.joined("private-App.Models.User.7")
    channel = "laravel_database_private-App.Models.User.7"
    bad = [
        (channel, b"not json at all " + b"x" * 60 + b" SECRET-MARKER"),
        (channel, b'["a list"]'),
        (channel, b'{"data":{}}'),
        (channel, b'{"event":"E"}'),
        (channel, b'{"event":"E","data":{},"socket":5}'),
        (channel, b'{"event":"E","data":"' + b"x" * 3000 + b'"}'),
        ("laravel_database_bad channel", b'{"event":"E","data":{}}'),
    ]
    redis = Redis.from_url(redis_server.url)
    try:
        for name, payload in bad:
            await redis.publish(name, payload)
        await redis.publish(channel, laravel_payload("E", {"ok": True}, None))
    finally:
        await redis.aclose()
    received = await alice.wait_for("E")
    assert [args[1] for args in received] == [{"ok": True, "socket": None}]
    text = await metrics_text(server)
    name = "realtime_sio_redis_messages_rejected_total"
    for reason in ("not_json", "not_object", "event_invalid", "data_missing", "socket_invalid", "too_large", "channel_invalid"):
        assert sample(text, name, reason=reason) == 1.0, reason
    assert sample(text, name, reason="publish_failed") == 0.0
    await eventually(lambda: server.logs().count('"redis_message_rejected"') == len(bad), what="one log line per bad message")
    assert "SECRET-MARKER" not in server.logs()


async def test_listener_survives_redis_restart(
    redis_server: RedisServer, server_factory: Callable[..., ServerProcess], clients: Callable[..., Client]
) -> None:
    """Redis stopped mid-stream: /ready says redis_down, redis_up is 0; after restart it resubscribes and delivers."""
    server = server_factory(REALTIME_SIO_REDIS_URL=redis_server.url, REALTIME_SIO_REDIS_RECONNECT_MAX="0.5")
    await until_ready(server)
    alice = clients(server.url)
    await alice.connect(auth={"token": token(7)})
    await alice.joined("private-App.Models.User.7")
    channel = "laravel_database_private-App.Models.User.7"

    async def publish(n: int) -> None:
        redis = Redis.from_url(redis_server.url)
        try:
            await redis.publish(channel, laravel_payload("E", {"n": n}, None))
        finally:
            await redis.aclose()

    await publish(1)
    await alice.wait_for("E", 1)

    redis_server.stop()

    async def down() -> bool:
        status, body = await get_json(server, "/ready")
        return status == 503 and body["status"] == "redis_down" and body["redis"] == "down"

    await eventually_async(down, 15, "/ready redis_down")
    assert sample(await metrics_text(server), "realtime_sio_redis_up") == 0.0

    redis_server.start()
    await until_ready(server)
    assert sample(await metrics_text(server), "realtime_sio_redis_up") == 1.0
    await publish(2)
    received = await alice.wait_for("E", 2)
    assert [args[1]["n"] for args in received] == [1, 2]
    assert alice.sio.connected
    logs = server.logs()
    assert '"redis_listener_disconnected"' in logs and '"recovered": true' in logs


@pytest.mark.parametrize("redis_running", [True, False])
async def test_sigterm_stops_listener_cleanly(
    redis_running: bool, redis_server: RedisServer, server_factory: Callable[..., ServerProcess]
) -> None:
    """SIGTERM cancels the listener (subscribed, or sleeping in backoff) and closes Redis without a failed step."""
    server = server_factory(REALTIME_SIO_REDIS_URL=redis_server.url)
    await until_ready(server)
    if not redis_running:
        redis_server.stop()
        await eventually(lambda: '"redis_listener_disconnected"' in server.logs(), what="the outage to be noticed")
    assert server.terminate() == 0
    logs = server.logs()
    assert '"shutdown_finished"' in logs
    assert '"step": "background"' not in logs  # the listener was cancelled promptly, in backoff or not
    if redis_running:
        assert "shutdown_step_failed" not in logs
    # With Redis down the cluster's node-leave step may fail (it needs Redis); closing the listener never does.
