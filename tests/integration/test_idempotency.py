"""Idempotency keys on POST /api/v1/events (issue 11 #14): a retried publish is delivered at most once, on one node
and across a cluster sharing a real redis-server."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import aiohttp

from tests.integration.test_cluster import ready
from tests.support import API_KEY, Client, RedisServer, ServerProcess


async def publish(url: str, body: dict[str, Any], header_key: str | None = None) -> tuple[int, dict[str, Any]]:
    headers = {"Authorization": f"Bearer {API_KEY}"}
    if header_key is not None:
        headers["Idempotency-Key"] = header_key
    async with aiohttp.ClientSession(headers=headers) as http, http.post(f"{url}/api/v1/events", json=body) as response:
        return response.status, await response.json()


async def settle(client: Client) -> None:
    """A ping round trip: everything the server queued before it has arrived."""
    await client.sio.call("ping")


async def test_retry_with_the_same_id_is_delivered_once(server: ServerProcess, clients: Any) -> None:
    """The same body id twice: the second answer lists the channel as a duplicate and nothing is sent again."""
    c: Client = clients(server.url)
    await c.connect()
    await c.joined("idem-1")
    body = {"channel": "idem-1", "event": "Paid", "data": {"invoice": 7}, "id": "job-7f3a"}
    status, first = await publish(server.url, body)
    assert status == 200 and "duplicates" not in first
    status, second = await publish(server.url, body)
    assert status == 200 and second["duplicates"] == ["idem-1"] and second["positions"] == {}
    status, _ = await publish(server.url, {**body, "id": "job-other"})
    assert status == 200
    await c.wait_for("Paid", 2)
    await settle(c)
    assert len(c.named("Paid")) == 2


async def test_header_key_and_partial_retry_publish_only_the_missing_channels(server: ServerProcess, clients: Any) -> None:
    """An Idempotency-Key header works like id, per channel: a retry adding a channel delivers only that one."""
    c: Client = clients(server.url)
    await c.connect()
    for channel in ("idem-a", "idem-b"):
        await c.joined(channel)
    await publish(server.url, {"channel": "idem-a", "event": "E", "data": 1}, header_key="k-1")
    status, retry = await publish(server.url, {"channels": ["idem-a", "idem-b"], "event": "E", "data": 1}, header_key="k-1")
    assert status == 200 and retry["duplicates"] == ["idem-a"] and list(retry["positions"]) == ["idem-b"]
    await c.wait_for("E", 2)
    await settle(c)
    assert sorted(args[0] for args in c.named("E")) == ["idem-a", "idem-b"]


async def test_bad_or_conflicting_keys_are_refused(server: ServerProcess) -> None:
    """A malformed id, or an id that differs from the header, is a 400 body_invalid and nothing is published."""
    for body, header in (({"id": ""}, None), ({"id": 5}, None), ({"id": "a\nb"}, None), ({"id": "x"}, "y")):
        status, answer = await publish(server.url, {"channel": "idem-x", "event": "E", **body}, header_key=header)
        assert status == 400 and answer["error"]["code"] == "body_invalid"


async def test_same_key_on_two_nodes_is_delivered_once(
    redis_server: RedisServer, server_factory: Callable[..., ServerProcess], clients: Any
) -> None:
    """A retry that lands on another node of the cluster is recognised there too."""
    a, b = (server_factory(REALTIME_SIO_REDIS_URL=redis_server.url) for _ in range(2))
    await ready(a)
    await ready(b)
    listener: Client = clients(b.url)
    await listener.connect()
    await listener.joined("idem-cluster")
    body = {"channel": "idem-cluster", "event": "Shipped", "data": {"order": 1}, "id": "order-1-shipped"}
    assert (await publish(a.url, body))[0] == 200
    status, retry = await publish(b.url, body)
    assert status == 200 and retry["duplicates"] == ["idem-cluster"]
    await listener.wait_for("Shipped")
    await settle(listener)
    assert len(listener.named("Shipped")) == 1
