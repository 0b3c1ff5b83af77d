"""The shared Redis client of a node, on a bounded pool that makes a burst wait its turn instead of failing.

redis-py's default pool raises ``MaxConnectionsError`` the moment its 100 connections are busy: during a reconnect
storm every recovering socket holds one for its history read, and the 101st was told "history unavailable" although
the history existed (issue 14). Here commands queue for a connection (``REDIS_POOL_SIZE`` of them) for up to
``REDIS_POOL_TIMEOUT`` seconds; only then :class:`PoolExhausted` is raised, counted and logged, so a caller can tell
"Redis is busy, retry" from "Redis said no". Heartbeats never use this pool (``cluster/heartbeat.py``).
"""

from __future__ import annotations

import time
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.connection import BlockingConnectionPool
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError

from realtime_sio import logs
from realtime_sio.metrics import Metrics

log = logs.get(__name__)

LOG_EVERY = 5.0  # seconds between two pool_exhausted log lines (the metric counts every one)


class PoolExhausted(RedisConnectionError):
    """No pooled connection became free within the pool timeout: Redis (or this node) is overloaded; retry later."""


class WaitingPool(BlockingConnectionPool):
    """A BlockingConnectionPool that measures waits and names exhaustion as :class:`PoolExhausted`."""

    metrics: Metrics | None = None
    _logged_at = 0.0

    async def get_connection(self, *args: Any, **kwargs: Any) -> Any:
        started = time.monotonic()
        try:
            connection = await super().get_connection(*args, **kwargs)  # type: ignore[no-untyped-call]
        except RedisConnectionError as exc:
            if not isinstance(exc.__cause__, TimeoutError):
                raise  # connecting failed: Redis is away, not busy
            self._exhausted()
            raise PoolExhausted(f"no Redis connection free within {self.timeout}s") from exc
        waited = time.monotonic() - started
        if waited > 0.001 and self.metrics is not None:
            self.metrics.redis_pool_wait.observe(waited)
        return connection

    def _exhausted(self) -> None:
        if self.metrics is not None:
            self.metrics.redis_pool_exhausted.inc()
        now = time.monotonic()
        if now - self._logged_at >= LOG_EVERY:
            self._logged_at = now
            log.warning("redis_pool_exhausted", size=self.max_connections, timeout=self.timeout)


# A command that meets a dead connection (Redis restarted, a failover) is sent again on a fresh one, as redis-py's own
# client does by default; a pool built by hand does not inherit that (connections default to no retry), and the first
# publish after a Redis restart failed (a Laravel broadcast lost: test_listener_survives_redis_restart).
RETRY = Retry(ExponentialBackoff(cap=0.5, base=0.05), 3)


def shared_client(url: str, size: int, timeout: float, metrics: Metrics) -> aioredis.Redis:
    """The node's client for publishes, history, presence and directory reads: ``size`` connections at most."""
    pool = WaitingPool.from_url(
        url, max_connections=size, timeout=timeout, health_check_interval=10, socket_keepalive=True, retry=RETRY
    )
    pool.metrics = metrics
    return aioredis.Redis.from_pool(pool)  # closing the client closes the pool too
