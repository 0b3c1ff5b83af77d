"""Zero-downtime drain with two real nodes behind a readiness-aware proxy: clients move over, no event is lost."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import aiohttp

from tests.integration.test_cluster import ready
from tests.support import (
    API_KEY,
    Client,
    ReadyProxy,
    RedisServer,
    ServerProcess,
    eventually,
)


async def test_sigterm_moves_clients_to_the_survivor_without_losing_events(
    redis_server: RedisServer, server_factory: Callable[..., ServerProcess], clients: Any
) -> None:
    """SIGTERM on node A: its clients reconnect through the proxy to B and, with positions, miss nothing."""
    env = {"REALTIME_SIO_REDIS_URL": redis_server.url, "REALTIME_SIO_DRAIN_SECONDS": "1.5", "REALTIME_SIO_NODE_LEASE_SECONDS": "2"}
    a_node = server_factory(**env)
    b_node = server_factory(**env)
    await ready(a_node)
    await ready(b_node)
    proxy = ReadyProxy([a_node, b_node])
    await proxy.start()
    subscribers: list[Client] = []
    try:
        for _ in range(8):
            positions: dict[str, str] = {}
            c: Client = clients(proxy.url, reconnection=True, reconnection_delay=0.2, reconnection_delay_max=0.5)

            def remember(event: str, *args: Any, _p: dict[str, str] = positions) -> None:
                if len(args) >= 3 and isinstance(args[2], dict) and "position" in args[2]:
                    _p[args[0]] = args[2]["position"]

            c.sio.on("*", lambda event, *args, _c=c, _r=remember: (_c._record(event, *args), _r(event, *args)))

            async def resubscribe(_c: Client = c) -> None:
                await _c.sio.emit("subscribe", {"channel": "drain-feed"})

            c.sio.on("connect", resubscribe)
            await c.connect(auth=lambda _p=positions: {"positions": dict(_p)})
            subscribers.append(c)
        await eventually(lambda: all(c.sio.connected for c in subscribers))
        async with aiohttp.ClientSession() as http:
            counts = []
            for node in (a_node, b_node):
                text = await (await http.get(f"{node.url}/metrics")).text()
                counts.append(next(float(line.split()[1]) for line in text.splitlines() if line.startswith("websocket_connections_total ")))
        assert counts[0] > 0 and counts[1] > 0, f"the proxy should spread clients: {counts}"

        accepted: list[int] = []
        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {API_KEY}"}) as http:

            async def publish(n: int) -> None:
                r = await http.post(f"{b_node.url}/api/v1/events", json={"channel": "drain-feed", "event": "D", "data": n})
                if r.status == 200:
                    accepted.append(n)

            # Wait until every client has joined (the first event reaches all of them), then drain A mid-stream.
            await publish(0)
            await eventually(lambda: all(c.named("D") for c in subscribers), what="all subscribed")
            assert a_node.proc is not None
            a_node.proc.send_signal(15)
            n = 1
            while a_node.proc.poll() is None and n < 2000:
                await publish(n)
                n += 1
                await asyncio.sleep(0.01)
            assert a_node.proc.wait(20) == 0
            for _ in range(20):
                await publish(n)
                n += 1
        for c in subscribers:
            await eventually(
                lambda c=c: len(c.named("D")) >= len(accepted), timeout=20,
                what=f"every accepted event ({len(accepted)}; got {[a[1] for a in c.named('D')]}, events {[e for e, _ in c.events if e != 'D']})",
            )
            assert [args[1] for args in c.named("D")] == accepted
        async with aiohttp.ClientSession() as http:
            text = await (await http.get(f"{b_node.url}/metrics")).text()
        assert "websocket_connections_total 8.0" in text
    finally:
        await proxy.close()
