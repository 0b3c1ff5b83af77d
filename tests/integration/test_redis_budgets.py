"""The node's Redis budgets against a real redis-server: the waiting pool and the heartbeat's own thread and connection."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis
import redis.asyncio

from realtime_sio import metrics as metrics_module
from realtime_sio.cluster.heartbeat import Heartbeat
from realtime_sio.cluster.redis_pool import PoolExhausted, shared_client
from realtime_sio.metrics import Metrics
from tests.support import RedisServer, eventually


@pytest.fixture
def metrics() -> Metrics:
    return metrics_module.create(process=False)


def sample(metrics: Metrics, name: str, **labels: str) -> float:
    value = metrics.registry.get_sample_value(name, labels or None)
    return 0.0 if value is None else value


async def checkout(pool: Any) -> Any:
    """Take a connection out of the pool the way redis-py's own commands do: redis-py < 5.3 requires a command name,
    5.3+ deprecates passing one (setup.cfg allows both)."""
    # (the library's signature: WaitingPool's own override takes *args)
    command_name = inspect.signature(redis.asyncio.BlockingConnectionPool.get_connection).parameters.get("command_name")
    needs_name = command_name is not None and command_name.default is inspect.Parameter.empty
    return await (pool.get_connection("PING") if needs_name else pool.get_connection())


@pytest.fixture
async def held_pool(redis_server: RedisServer, metrics: Metrics) -> AsyncIterator[tuple[object, list[object]]]:
    """A one-connection pool whose only connection the test holds."""
    client = shared_client(redis_server.url, size=1, timeout=0.3, metrics=metrics)
    pool = client.connection_pool
    held = [await checkout(pool)]
    yield client, held
    for connection in held:
        await pool.release(connection)
    await client.aclose()


async def test_busy_pool_makes_commands_wait_not_fail(redis_server: RedisServer, metrics: Metrics) -> None:
    """A command that finds every pooled connection busy waits for one to be released, and succeeds."""
    client = shared_client(redis_server.url, size=1, timeout=5, metrics=metrics)
    pool = client.connection_pool
    connection = await checkout(pool)
    waiting = asyncio.create_task(client.set("k", "v"))
    await asyncio.sleep(0)  # let the command queue for the connection
    assert not waiting.done()
    await pool.release(connection)
    assert await waiting is True
    assert sample(metrics, "realtime_sio_redis_pool_exhausted_total") == 0
    await client.aclose()


async def test_exhausted_pool_raises_pool_exhausted_counted_once_logged(
    held_pool: tuple[object, list[object]], metrics: Metrics
) -> None:
    """When no connection frees up within the pool timeout the command raises PoolExhausted and the metric counts it."""
    client = held_pool[0]
    for _ in range(2):
        with pytest.raises(PoolExhausted):
            await client.get("k")  # type: ignore[attr-defined]
    assert sample(metrics, "realtime_sio_redis_pool_exhausted_total") == 2


async def test_heartbeat_renews_while_the_loop_is_blocked_and_the_pool_is_exhausted(
    redis_server: RedisServer, metrics: Metrics, held_pool: tuple[object, list[object]]
) -> None:
    """The lease keeps being written by the heartbeat thread while the event loop is stuck and the shared pool is dry."""
    beat = Heartbeat(redis_server.url, "t:nodes", "n1", interval=0.05, max_loop_silence=30, metrics=metrics)
    reader = redis.Redis.from_url(redis_server.url)
    beat.start()
    try:
        await eventually(lambda: reader.zscore("t:nodes", "n1") is not None, what="first heartbeat")
        before = sample(metrics, "realtime_sio_node_heartbeats_total", outcome="ok")
        time.sleep(1.0)  # noqa: ASYNC251 - the stimulus: this event loop runs nothing for a second (as in a mass disconnect)
        renewed = sample(metrics, "realtime_sio_node_heartbeats_total", outcome="ok") - before
        assert renewed >= 3, f"only {renewed} leases written while the loop was blocked"
    finally:
        await asyncio.to_thread(beat.stop)
        reader.close()


async def test_heartbeat_is_withheld_when_the_loop_stays_silent(redis_server: RedisServer, metrics: Metrics) -> None:
    """A loop silent for longer than max_loop_silence is treated as dead: the lease is no longer renewed."""
    beat = Heartbeat(redis_server.url, "t:nodes", "n2", interval=0.05, max_loop_silence=0.2, metrics=metrics)
    beat.start()
    try:
        time.sleep(1.0)  # noqa: ASYNC251 - the stimulus: no loop_alive() for a second
        assert sample(metrics, "realtime_sio_node_heartbeats_total", outcome="withheld") >= 1
        beat.loop_alive()
        ok = sample(metrics, "realtime_sio_node_heartbeats_total", outcome="ok")
        await eventually(lambda: sample(metrics, "realtime_sio_node_heartbeats_total", outcome="ok") > ok, what="renewal")
    finally:
        await asyncio.to_thread(beat.stop)


async def test_heartbeat_survives_a_redis_restart(redis_server: RedisServer, metrics: Metrics) -> None:
    """Failed renewals are counted and the thread goes on; the lease is written again once Redis is back."""
    beat = Heartbeat(redis_server.url, "t:nodes", "n3", interval=0.05, max_loop_silence=30, metrics=metrics)
    beat.start()
    try:
        redis_server.stop()
        await eventually(lambda: sample(metrics, "realtime_sio_node_heartbeats_total", outcome="failed") >= 1, what="failure")
        redis_server.start()
        reader = redis.Redis.from_url(redis_server.url)
        await eventually(lambda: reader.zscore("t:nodes", "n3") is not None, timeout=15, what="lease after restart")
        reader.close()
    finally:
        await asyncio.to_thread(beat.stop)
