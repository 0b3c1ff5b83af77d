"""Pusher connections on two real nodes sharing a real redis-server: delivery, presence, whispers and a killed node."""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.integration.test_cluster import ready
from tests.integration.test_events_api import post
from tests.pusher_client import APP_KEY, PUSHER_APPS, PusherClient, presence_data
from tests.support import Client, ReadyProxy, RedisServer, ServerProcess, token

JS = Path(__file__).resolve().parent.parent / "js"


@pytest.fixture
def two_nodes(redis_server: RedisServer, server_factory: Callable[..., ServerProcess]) -> list[ServerProcess]:
    return [
        server_factory(REALTIME_SIO_REDIS_URL=redis_server.url, REALTIME_SIO_NODE_LEASE_SECONDS="1.5", REALTIME_SIO_PUSHER_APPS=PUSHER_APPS)
        for _ in range(2)
    ]


async def test_events_presence_and_whispers_cross_nodes(two_nodes: list[ServerProcess], pushers: Any, clients: Any) -> None:
    """An event published once on node 1 reaches Pusher and Socket.IO subscribers on both nodes exactly once, in
    order; presence is one set across nodes and protocols; a whisper crosses nodes and protocols."""
    n1, n2 = two_nodes
    for node in two_nodes:
        await ready(node)
    p1: PusherClient = pushers(n1.url)
    p2: PusherClient = pushers(n2.url)
    for p in (p1, p2):
        await p.connect()
        await p.joined("feed")
    s2: Client = clients(n2.url)
    await s2.connect()
    await s2.joined("feed")
    for i in range(20):
        status, _ = await post(n1.url if i % 2 else n2.url, {"channel": "feed", "event": "Tick", "data": {"i": i}})
        assert status == 200
    for p in (p1, p2):
        events = await p.wait_for("Tick", 20)
        assert [json.loads(e["data"])["i"] for e in events] == list(range(20))
    got = await s2.wait_for("Tick", 20)
    assert [args[1]["i"] for args in got] == list(range(20))

    channel = "presence-chat.x"
    await p1.joined(channel, presence_data(1, "A"))
    sio: Client = clients(n2.url)
    await sio.connect(auth={"token": token(2, name="B")})
    await sio.joined(channel)
    (added,) = await p1.wait_for("pusher_internal:member_added", channel=channel)
    assert json.loads(added["data"])["user_id"] == 2
    here = await p2.joined(channel, presence_data(1, "A"))  # user 1's second tab, on the other node
    assert here["presence"]["count"] == 2
    await p1.send({"event": "client-typing", "channel": channel, "data": {"from": 1}})
    (whisper,) = await sio.wait_for("client-typing")
    assert whisper == (channel, {"from": 1})
    (pusher_whisper,) = await p2.wait_for("client-typing")  # user 1's other tab gets it too, with the sender's id
    assert pusher_whisper["user_id"] == "1"
    await sio.close()
    (removed,) = await p1.wait_for("pusher_internal:member_removed", channel=channel)
    assert json.loads(removed["data"]) == {"user_id": 2}


@pytest.mark.skipif(shutil.which("node") is None or not (JS / "node_modules" / "pusher-js").is_dir(), reason="needs node and npm ci")
async def test_pusher_js_reconnects_after_its_node_is_killed(two_nodes: list[ServerProcess]) -> None:
    """pusher-js behind a proxy: its node is SIGKILLed, it reconnects to the other node, resubscribes and receives."""
    n1, n2 = two_nodes
    for node in two_nodes:
        await ready(node)
    proxy = ReadyProxy([n1])  # n1 only at first: the client's node is known
    await proxy.start()
    proc = await asyncio.create_subprocess_exec(
        "node",
        str(JS / "pusher_reconnect.mjs"),
        json.dumps({"host": "127.0.0.1", "port": proxy.port, "key": APP_KEY}),
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        first = json.loads(await asyncio.wait_for(proc.stdout.readline(), 30))
        assert first.get("ready") is True, first
        proxy.backends.append(n2)
        n1.kill()
        proxy.backends.remove(n1)
        again = json.loads(await asyncio.wait_for(proc.stdout.readline(), 60))
        assert again.get("reconnected") is True, again
        status, _ = await post(n2.url, {"channel": "orders", "event": "Shipped", "data": {"id": 2}})
        assert status == 200
        result = json.loads(await asyncio.wait_for(proc.stdout.readline(), 30))
        assert result == {"ok": True, "seen": [2]}
    finally:
        if proc.returncode is None:
            proc.kill()
        await proc.wait()
        await proxy.close()
