"""An unchanged Reverb frontend in headless Chromium: Laravel Echo (broadcaster "reverb") on pusher-js against
realtime_sio's /app/{key}, a public and a private channel, events published through the sidecar route."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tests.browser.harness import PageServer, publish, run_scenario
from tests.fake_laravel import FakeLaravel
from tests.pusher_client import APP_KEY, APP_SECRET, PUSHER_APPS
from tests.support import ServerProcess

DEADLINE_MS = 15_000  # generous: a shared 2-core machine runs Chromium, node and the server at once


async def test_reverb_echo_page_receives_public_and_private_events(
    server_factory: Callable[..., ServerProcess], page_server: PageServer
) -> None:
    """pusher-js connects to /app/{key}, subscribes `orders` and `private-orders.42` (signed by the page's
    /broadcasting/auth as Laravel's PusherBroadcaster signs, for user 42), and shows one sidecar event on each."""
    server = server_factory(REALTIME_SIO_PUSHER_APPS=PUSHER_APPS, REALTIME_SIO_CORS_ORIGINS=page_server.origin())
    laravel = FakeLaravel(signing=(APP_KEY, APP_SECRET))
    page_server.broadcasting_auth = laravel.handle  # served on the page's origin, as a Laravel app serves it

    async def publish_both(body: dict[str, Any]) -> dict[str, Any]:
        await publish(server.url, "orders", "OrderShipped", {"order_id": 1, "via": "sidecar"})
        await publish(server.url, "private-orders.42", "OrderShipped", {"order_id": 2, "via": "sidecar"})
        return {"ok": True}

    page_server.on("publish", publish_both)
    query = {"key": APP_KEY, "host": "127.0.0.1", "port": str(server.port), "user": "42", "public": "orders", "private": "orders.42"}
    result = await run_scenario(
        "reverb", {"control": page_server.origin(), "origin": page_server.origin(), "query": query, "channels": 2, "events": 2, "deadlineMs": DEADLINE_MS}
    )
    assert sorted(result["subscribed"]) == ["orders", "private-orders.42"]
    events = sorted((e["channel"], e["data"]["order_id"]) for e in result["events"])
    assert events == [("orders", 1), ("private-orders.42", 2)]
    assert result["errors"] == []
    assert result["states"][-1] == "connected" and result["socketId"]
    (auth,) = laravel.seen  # one signature, for the private channel, asked with pusher-js's socket id
    assert (auth.channel, auth.socket_id) == ("private-orders.42", result["socketId"])
    assert auth.headers.get("Authorization") == "Bearer user-42"
