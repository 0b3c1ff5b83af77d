"""Laravel Echo in headless Chromium against a real server: private events, long-polling fallbacks, CORS, restarts."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

from tests.browser.harness import PageServer, RefusingProxy, publish, run_scenario
from tests.support import ServerProcess, eventually, token

DEADLINE_MS = 15_000  # generous: a shared 2-core machine runs Chromium, node and the server at once
CHANNEL = "private-user.42"


def echo_query(server_url: str, **extra: str) -> dict[str, str]:
    """The test page's query: user 42's token, Echo.private('user.42').listen('.OrderShipped')."""
    return {"server": server_url, "token": token(42, name="Ada"), "private": "user.42", "event": ".OrderShipped", **extra}


def publisher(server: ServerProcess, via: str = "sidecar") -> Callable[[dict[str, Any]], Any]:
    """A control action that posts OrderShipped #seq for user 42 to the sidecar route."""

    async def action(body: dict[str, Any]) -> dict[str, Any]:
        await publish(server.url, CHANNEL, "OrderShipped", {"order_id": body["seq"], "via": via})
        return {"ok": True}

    return action


def order_ids(result: dict[str, Any]) -> list[int]:
    return [e["data"]["order_id"] for e in result["events"] if e["channel"] == CHANNEL]


async def test_private_channel_receives_sidecar_event(server_factory: Callable[..., ServerProcess], page_server: PageServer) -> None:
    """Echo with a JWT joins private-user.42 and shows an event posted to POST /api/v1/events."""
    server = server_factory(REALTIME_SIO_CORS_ORIGINS=page_server.origin())
    page_server.on("publish", publisher(server))
    result = await run_scenario(
        "receive", {"control": page_server.origin(), "origin": page_server.origin(), "query": echo_query(server.url), "publishes": 1, "deadlineMs": DEADLINE_MS}
    )
    assert order_ids(result) == [1]
    assert result["events"][0]["data"] == {"order_id": 1, "via": "sidecar"}
    assert result["echoSocketId"] == result["socketId"]
    assert result["subscriptionErrors"] == []


async def test_private_channel_receives_redis_event(
    server_factory: Callable[..., ServerProcess], page_server: PageServer, redis_server: Any
) -> None:
    """An event Laravel publishes through Redis (laravel_database_private-user.42) reaches the Echo page."""
    import redis.asyncio as aioredis

    server = server_factory(REALTIME_SIO_CORS_ORIGINS=page_server.origin(), REALTIME_SIO_REDIS_URL=redis_server.url)

    async def redis_publish(body: dict[str, Any]) -> dict[str, Any]:
        """What Laravel's Redis broadcaster does: PUBLISH <prefix><channel> {"event", "data", "socket"}."""
        client = aioredis.from_url(redis_server.url)
        try:
            await _until_subscribed(client, f"laravel_database_{CHANNEL}")
            message = {"event": "OrderShipped", "data": {"order_id": body["seq"], "via": "redis"}, "socket": None}
            receivers = await client.publish(f"laravel_database_{CHANNEL}", json.dumps(message))
        finally:
            await client.aclose()
        return {"receivers": receivers}

    page_server.on("publish", redis_publish)
    result = await run_scenario(
        "receive", {"control": page_server.origin(), "origin": page_server.origin(), "query": echo_query(server.url), "publishes": 1, "deadlineMs": DEADLINE_MS}
    )
    assert result["events"][0]["data"] == {"order_id": 1, "via": "redis"}


async def _until_subscribed(client: Any, channel: str, timeout: float = 10.0) -> None:
    """Wait until the server's listener subscribes to ``channel`` (directly or by pattern) in Redis."""
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        direct = dict(await client.pubsub_numsub(channel)).get(channel.encode(), 0)
        if direct or await client.pubsub_numpat():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"nobody subscribed to {channel} in Redis within {timeout}s")


async def test_forced_long_polling_receives_events(server_factory: Callable[..., ServerProcess], page_server: PageServer) -> None:
    """With transports: ['polling'] Echo connects over long-polling only and still receives events."""
    server = server_factory(REALTIME_SIO_CORS_ORIGINS=page_server.origin())
    page_server.on("publish", publisher(server))
    result = await run_scenario(
        "receive",
        {
            "control": page_server.origin(),
            "origin": page_server.origin(),
            "query": echo_query(server.url, transports="polling"),
            "publishes": 2,
            "deadlineMs": DEADLINE_MS,
        },
    )
    assert order_ids(result) == [1, 2]
    assert result["transport"] == "polling"
    assert result["upgrades"] == []


async def test_websocket_refused_by_proxy_falls_back_to_polling(
    server_factory: Callable[..., ServerProcess], page_server: PageServer
) -> None:
    """Behind a proxy that refuses WebSocket upgrades, Echo's default options stay on long-polling and get events."""
    server = server_factory(REALTIME_SIO_CORS_ORIGINS=page_server.origin())
    proxy = RefusingProxy(upstream=server.url)
    await proxy.start()
    try:
        page_server.on("publish", publisher(server))
        result = await run_scenario(
            "receive",
            {"control": page_server.origin(), "origin": page_server.origin(), "query": echo_query(proxy.url), "publishes": 2, "deadlineMs": DEADLINE_MS},
        )
        await eventually(lambda: proxy.refused_upgrades >= 1, what="the browser to try a WebSocket upgrade")
    finally:
        await proxy.stop()
    assert order_ids(result) == [1, 2]
    assert result["transport"] == "polling"
    assert result["upgrades"] == []
    assert proxy.forwarded > 0


async def test_websocket_first_client_falls_back_when_refused(
    server_factory: Callable[..., ServerProcess], page_server: PageServer
) -> None:
    """A page configured WebSocket-first (transports ['websocket','polling'], tryAllTransports) falls back to polling."""
    server = server_factory(REALTIME_SIO_CORS_ORIGINS=page_server.origin())
    proxy = RefusingProxy(upstream=server.url)
    await proxy.start()
    try:
        page_server.on("publish", publisher(server))
        result = await run_scenario(
            "receive",
            {
                "control": page_server.origin(),
                "origin": page_server.origin(),
                "query": echo_query(proxy.url, transports="websocket,polling", tryAll="1"),
                "publishes": 1,
                "deadlineMs": DEADLINE_MS,
            },
        )
    finally:
        await proxy.stop()
    assert order_ids(result) == [1]
    assert result["transport"] == "polling"
    assert proxy.refused_upgrades >= 1


async def test_cors_allows_configured_origin_and_refuses_others(
    server_factory: Callable[..., ServerProcess], page_server: PageServer
) -> None:
    """With REALTIME_SIO_CORS_ORIGINS set to the page's origin that page works; the same page from another origin is refused."""
    server = server_factory(REALTIME_SIO_CORS_ORIGINS=page_server.origin(0))
    page_server.on("publish", publisher(server))
    result = await run_scenario(
        "cors",
        {
            "control": page_server.origin(),
            "allowedOrigin": page_server.origin(0),
            "otherOrigin": page_server.origin(1),
            "query": echo_query(server.url),
            "deadlineMs": DEADLINE_MS,
        },
    )
    assert order_ids(result["allowed"]) == [1]
    other = result["other"]
    assert other["connects"] == 0 and not other["connected"]
    assert len(other["connectErrors"]) >= 2
    assert other["events"] == []
    assert "blocked" in result["otherProbe"], result["otherProbe"]


async def test_page_reconnects_and_resubscribes_after_server_restart(
    server_factory: Callable[..., ServerProcess], page_server: PageServer
) -> None:
    """After the server is killed and restarted on the same port, the page reconnects, re-subscribes and gets a new event."""
    # Auto-join off: the server would otherwise put user 42 back into private-user.42 by itself at connect.
    server = server_factory(REALTIME_SIO_CORS_ORIGINS=page_server.origin(), REALTIME_SIO_AUTO_JOIN="false")
    page_server.on("publish", publisher(server))

    async def restart(_: dict[str, Any]) -> dict[str, Any]:
        await asyncio.to_thread(server.kill)
        await asyncio.to_thread(server.start)
        return {"port": server.port}

    page_server.on("restart", restart)
    result = await run_scenario(
        "reconnect", {"control": page_server.origin(), "origin": page_server.origin(), "query": echo_query(server.url), "deadlineMs": 30_000}
    )
    assert order_ids(result) == [1, 2]
    assert result["reconnects"] >= 1
    assert len(set(result["socketIds"])) >= 2  # a new socket id after the restart: the rooms were rejoined, not kept
    assert result["subscriptionErrors"] == []
