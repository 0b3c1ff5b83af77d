"""Data integrity under load (issue 14) with real redis-server and server processes: pool exhaustion, positions for
quiet channels, history epochs after Redis loses its data, and admission control at the descriptor budget."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest
import redis.asyncio
import socketio

from tests.integration.test_channels import post_event
from tests.integration.test_cluster import ready
from tests.support import Client, RedisServer, ServerProcess, token


def metric(text: str, name: str) -> float:
    """Sum of every sample of ``name`` (any labels) in a Prometheus exposition."""
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and (name.endswith(('"', "}")) or line[len(name)] in " {"):
            total += float(line.rsplit(" ", 1)[1])
    return total


async def scrape(node: ServerProcess) -> str:
    async with aiohttp.ClientSession() as http, http.get(f"{node.url}/metrics") as response:
        return await response.text()


async def test_recovery_storm_waits_for_the_pool_instead_of_resetting(
    redis_server: RedisServer, server_factory: Callable[..., ServerProcess], clients: Any
) -> None:
    """60 clients recovering at once through a pool of 2 Redis connections all get their replay; none is reset."""
    node = server_factory(REALTIME_SIO_REDIS_URL=redis_server.url, REALTIME_SIO_REDIS_POOL_SIZE="2")
    await ready(node)
    first: Client = clients(node.url)
    await first.connect()
    ack = await first.joined("storm")
    position = ack["position"]
    await first.close()
    for n in range(10):
        await post_event(node.url, {"channel": "storm", "event": "E", "data": n})
    storm: list[Client] = [clients(node.url) for _ in range(60)]
    await asyncio.gather(*(c.connect(auth={"positions": {"storm": position}}) for c in storm))
    await asyncio.gather(*(c.sio.emit("subscribe", {"channel": "storm"}) for c in storm))
    for c in storm:
        got = await c.wait_for("E", 10, timeout=30)
        assert [a[1] for a in got] == list(range(10))
        assert c.named("recovery:reset") == []
    assert "recovery_reset" not in node.logs()


async def test_quiet_user_channel_is_recovered_on_another_node(
    redis_server: RedisServer, server_factory: Callable[..., ServerProcess], clients: Any
) -> None:
    """The automatic user room carries a position before its first event, so events sent while away are replayed."""
    a, b = (server_factory(REALTIME_SIO_REDIS_URL=redis_server.url, REALTIME_SIO_NODE_LEASE_SECONDS="1.5") for _ in range(2))
    await ready(a)
    await ready(b)
    jwt = token(901)
    first: Client = clients(a.url)
    await first.connect(auth={"token": jwt})
    ((channel, data, meta),) = await first.wait_for("recovery:position")
    assert channel == "private-user.901" and data is None and "@" in meta["position"]
    await first.close()
    for n in range(5):
        await post_event(b.url, {"channel": "private-user.901", "event": "Note", "data": n})
    back: Client = clients(b.url)
    await back.connect(auth={"token": jwt, "positions": {channel: meta["position"]}})
    got = await back.wait_for("Note", 5)
    assert [args[1] for args in got] == list(range(5)) and all(args[2]["recovered"] for args in got)
    await post_event(a.url, {"channel": "private-user.901", "event": "Note", "data": 5})
    await back.wait_for("Note", 6)
    await back.sio.call("ping")
    assert [args[1] for args in back.named("Note")] == list(range(6))
    assert back.named("recovery:reset") == []


async def test_redis_losing_its_data_resets_old_positions_with_a_reason(
    redis_server: RedisServer, server_factory: Callable[..., ServerProcess], clients: Any
) -> None:
    """After Redis restarts empty, a position from before is answered recovery:reset(epoch_changed), not silence."""
    node = server_factory(REALTIME_SIO_REDIS_URL=redis_server.url)
    await ready(node)
    first: Client = clients(node.url)
    await first.connect()
    await first.joined("epoch-feed")
    await post_event(node.url, {"channel": "epoch-feed", "event": "E", "data": 0})
    ((_, _, meta),) = await first.wait_for("E")
    await first.close()
    redis_server.stop()
    redis_server.start()  # no persistence: every stream and the epoch are gone
    await ready(node, timeout=30)
    for _ in range(3):  # the first publish may meet a pooled connection to the old Redis: 503, and Laravel retries
        if (await post_event(node.url, {"channel": "epoch-feed", "event": "E", "data": 1})).status == 200:
            break
    else:
        raise AssertionError("publishing after the Redis restart kept failing")
    back: Client = clients(node.url)
    await back.connect(auth={"positions": {"epoch-feed": meta["position"]}})
    await back.joined("epoch-feed")
    ((channel, info),) = await back.wait_for("recovery:reset")
    assert channel == "epoch-feed" and info["code"] == "history_unavailable" and info["reason"] == "epoch_changed"
    ((_, _, fresh),) = await back.wait_for("recovery:position")
    assert fresh["position"].split("@")[1] != meta["position"].split("@")[1]
    assert back.named("E") == []
    assert '"reason": "epoch_changed"' in node.logs()


async def test_descriptor_budget_refuses_new_connections_with_a_retryable_503(
    server_factory: Callable[..., ServerProcess], clients: Any
) -> None:
    """Near RLIMIT_NOFILE new handshakes get 503 server_busy (counted, logged); connected sockets keep working."""
    node = server_factory(nofile=96, REALTIME_SIO_ADMISSION_FD_RESERVE="32")
    connected: list[Client] = []
    for _ in range(96):
        c: Client = clients(node.url)
        try:
            await c.connect()
        except socketio.exceptions.ConnectionError:
            break  # the budget is reached
        await c.joined("budget")
        connected.append(c)
    else:
        raise AssertionError("the descriptor budget never refused a connection")
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{node.url}/socket.io/?EIO=4&transport=polling") as probe:
            assert probe.status == 503 and probe.headers.get("Retry-After") is not None
            body = await probe.json()
        assert body["code"] == "server_busy" and body["retryable"] is True
        with pytest.raises(aiohttp.WSServerHandshakeError) as lean:
            await http.ws_connect(f"{node.url}/socket.io/?EIO=4&transport=websocket")
        assert lean.value.status == 503
    assert len(connected) > 10
    await post_event(node.url, {"channel": "budget", "event": "Still", "data": 1})
    for c in connected:
        await c.wait_for("Still")
    assert metric(await scrape(node), 'realtime_sio_admission_refused_total{reason="descriptors"}') >= 2
    assert "admission_refused" in node.logs()
    for c in connected[: len(connected) // 2]:
        await c.close()

    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10
    status = 0
    async with aiohttp.ClientSession() as http:
        while status != 200 and loop.time() < deadline:
            async with http.get(f"{node.url}/socket.io/?EIO=4&transport=polling") as probe:
                status = probe.status
                await probe.read()
            await asyncio.sleep(0.05)
    assert status == 200, "handshakes stayed refused after descriptors were freed"


async def test_recovery_reads_that_find_redis_busy_are_retried_not_dropped(
    redis_server: RedisServer, server_factory: Callable[..., ServerProcess], clients: Any
) -> None:
    """While Redis is paused and the pool gives no connection in time, recoveries are tried again and every client
    stays connected and gets its replay (the first failure used to close each client's transport)."""
    node = server_factory(
        REALTIME_SIO_REDIS_URL=redis_server.url, REALTIME_SIO_REDIS_POOL_SIZE="2", REALTIME_SIO_REDIS_POOL_TIMEOUT="0.2"
    )
    await ready(node)
    first: Client = clients(node.url)
    await first.connect()
    position = (await first.joined("paused"))["position"]
    await first.close()
    for n in range(5):
        await post_event(node.url, {"channel": "paused", "event": "E", "data": n})
    storm: list[Client] = [clients(node.url) for _ in range(20)]
    await asyncio.gather(*(c.connect() for c in storm))
    control = redis.asyncio.Redis.from_url(redis_server.url)
    await control.execute_command("CLIENT", "PAUSE", "1200", "ALL")  # every command waits: the pool runs dry
    # History reads asked for together share one pipeline (one connection): three waves make three pipelines, and the
    # third finds both pooled connections held by the paused first two. A scrape between waves is answered after the
    # node has read the previous wave's subscribes.
    for wave in (storm[:7], storm[7:14], storm[14:]):
        await asyncio.gather(*(c.sio.emit("subscribe", {"channel": "paused", "since": position}) for c in wave))
        await scrape(node)
    for c in storm:
        got = await c.wait_for("E", 5, timeout=30)
        assert [a[1] for a in got] == list(range(5))
        assert c.sio.connected and c.named("recovery:reset") == []
    await control.aclose()
    text = await scrape(node)
    assert metric(text, 'realtime_sio_recoveries_total{outcome="retried"') >= 1, "no read was retried: the pool never ran dry"
    assert metric(text, 'realtime_sio_recoveries_total{outcome="deferred"') == 0
