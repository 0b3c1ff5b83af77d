"""Node membership: heartbeats, the cluster-wide channel directory, and reaping nodes that died without saying so.

Each node writes ``p:nodes`` (ZSET node → last heartbeat ms) and ``p:node:<id>:subs`` (HASH channel → its local
subscription count) every ``lease/3`` seconds. A node whose heartbeat is older than ``lease`` is dead: the first live
node to take ``p:reap:<id>`` removes its presence entries (announcing ``presence:leaving`` for users who had no other
socket) and its keys. So a SIGKILLed node's members leave within ``lease + lease/3`` seconds.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import redis.asyncio as aioredis

from realtime_sio import logs
from realtime_sio.cluster.presence import RedisPresence
from realtime_sio.cluster.replies import text, texts
from realtime_sio.members import Member

log = logs.get(__name__)


class Nodes:
    """This node's heartbeat and the reaper of dead nodes; also answers cluster-wide channel queries."""

    def __init__(
        self,
        client: aioredis.Redis,
        prefix: str,
        node_id: str,
        lease_seconds: float,
        presence: RedisPresence,
        local_counts: Callable[[], Mapping[str, int]],
        on_leaving: Callable[[str, Member], Awaitable[None]],
    ) -> None:
        self._redis = client
        self._prefix = prefix
        self.node_id = node_id
        self._lease_ms = int(lease_seconds * 1000)
        self._presence = presence
        self._local_counts = local_counts
        self._on_leaving = on_leaving
        self._written: dict[str, int] = {}  # the subscription counts last written to Redis

    @property
    def _nodes_key(self) -> str:
        return f"{self._prefix}:nodes"

    def _subs_key(self, node_id: str) -> str:
        return f"{self._prefix}:node:{node_id}:subs"

    async def beat(self) -> None:
        """Renew this node's lease and write what changed in its subscription counts."""
        now = int(time.time() * 1000)
        counts = dict(self._local_counts())
        changed = {c: n for c, n in counts.items() if self._written.get(c) != n}
        gone = [c for c in self._written if c not in counts]
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.zadd(self._nodes_key, {self.node_id: now})
            if changed:
                pipe.hset(self._subs_key(self.node_id), mapping=dict[Any, Any](changed))
            if gone:
                pipe.hdel(self._subs_key(self.node_id), *gone)
            await pipe.execute()
        self._written = counts

    async def live(self) -> list[str]:
        """Ids of nodes whose lease has not expired."""
        cutoff = int(time.time() * 1000) - self._lease_ms
        return texts(await self._redis.zrangebyscore(self._nodes_key, cutoff, "+inf"))

    async def reap(self) -> int:
        """Remove every expired node's presence entries and keys; returns how many nodes were reaped."""
        cutoff = int(time.time() * 1000) - self._lease_ms
        dead = texts(await self._redis.zrangebyscore(self._nodes_key, "-inf", f"({cutoff}"))
        reaped = 0
        for node_id in dead:
            if node_id == self.node_id:
                continue
            if not await self._redis.set(f"{self._prefix}:reap:{node_id}", self.node_id, nx=True, px=self._lease_ms * 3):
                continue  # another node is on it
            for channel, sid in await self._presence.held_by(node_id):
                result = await self._presence.leave_for(node_id, channel, sid)
                if result.last_for_user and result.member is not None:
                    await self._on_leaving(channel, result.member)
            await self._redis.delete(self._presence.node_key(node_id), self._subs_key(node_id))
            await self._redis.zrem(self._nodes_key, node_id)
            log.warning("cluster_node_reaped", node=node_id)
            reaped += 1
        return reaped

    async def retry_leaves(self) -> None:
        """Finish presence leaves that failed while Redis was away."""
        for channel, sid in list(self._presence.pending):
            result = await self._presence.leave_for(self.node_id, channel, sid)
            self._presence.pending.discard((channel, sid))
            if result.last_for_user and result.member is not None:
                await self._on_leaving(channel, result.member)

    async def run(self) -> None:
        """Heartbeat and reap until cancelled; Redis failures are retried on the next beat."""
        interval = self._lease_ms / 3000
        while True:
            try:
                await self.beat()
                await self.retry_leaves()
                await self.reap()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - Redis away: the bus reports the outage; try again next beat
                log.debug("cluster_heartbeat_failed", error=type(exc).__name__)
            await asyncio.sleep(interval)

    async def leave(self) -> None:
        """Clean shutdown: drop this node's lease and counts (its sockets were already disconnected)."""
        await self._redis.zrem(self._nodes_key, self.node_id)
        await self._redis.delete(self._subs_key(self.node_id))

    # -- cluster-wide channel directory (the Pusher API's queries) -----------------------------------------------
    async def counts(self, exclude_self: bool = False) -> dict[str, int]:
        """Channel → subscription count summed over live nodes (optionally all but this one)."""
        nodes = [n for n in await self.live() if not (exclude_self and n == self.node_id)]
        async with self._redis.pipeline(transaction=False) as pipe:
            for node_id in nodes:
                pipe.hgetall(self._subs_key(node_id))
            per_node = await pipe.execute()
        total: dict[str, int] = {}
        for mapping in per_node:
            for channel, count in mapping.items():
                name = text(channel)
                total[name] = total.get(name, 0) + int(count)
        return {c: n for c, n in total.items() if n > 0}
