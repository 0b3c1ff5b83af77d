"""Node membership: heartbeats, the cluster-wide channel directory, and reaping nodes that died without saying so.

Each node's heartbeat thread writes ``p:nodes`` (ZSET node → last heartbeat ms, ``cluster/heartbeat.py``) and its
loop writes ``p:node:<id>:subs`` (HASH channel → its local subscription count) every ``lease/3`` seconds. A node whose
heartbeat is older than ``lease`` on two passes in a row is dead: the first live node to take ``p:reap:<id>`` removes
its presence entries (announcing ``presence:leaving`` for users who had no other socket) and its keys. So a SIGKILLed
node's members leave within about ``lease + 2·lease/3`` seconds. A node in trouble itself (its own lease not written
lately, or its loop late for its own pass) reaps no one: what looks stale may be its own view.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from typing import Any

import redis.asyncio as aioredis

from realtime_sio import logs
from realtime_sio.cluster.heartbeat import Heartbeat
from realtime_sio.cluster.presence import RedisPresence
from realtime_sio.cluster.replies import text, texts
from realtime_sio.metrics import Metrics

log = logs.get(__name__)

# A dead node's presence entries left per round of the reap: sent together, they share one script pipeline. One by
# one, each waited for its reply on a loaded loop: in a 100,000-client storm (~1,400 entries) two survivors logged
# reaping the killed node 52 ms apart, so the first reap had outlived its claim (3 leases) and a second ran alongside
# (harmless, the leaves are idempotent, but the dead node's members stayed listed that long).
REAP_BATCH = 500


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
        heartbeat: Heartbeat,
        metrics: Metrics,
    ) -> None:
        self._redis = client
        self._prefix = prefix
        self.node_id = node_id
        self._lease_ms = int(lease_seconds * 1000)
        self._presence = presence
        self._local_counts = local_counts
        self._written: dict[str, int] = {}  # the subscription counts last written to Redis
        self._heartbeat = heartbeat
        self._metrics = metrics
        self._interval = lease_seconds / 3
        self._suspects: dict[str, float] = {}  # suspects[node] = monotonic time its lease was first seen expired
        self._failing = False

    @property
    def _nodes_key(self) -> str:
        return f"{self._prefix}:nodes"

    def _subs_key(self, node_id: str) -> str:
        return f"{self._prefix}:node:{node_id}:subs"

    async def beat(self) -> None:
        """Write what changed in this node's subscription counts (the lease itself is the heartbeat thread's)."""
        counts = dict(self._local_counts())
        changed = {c: n for c, n in counts.items() if self._written.get(c) != n}
        gone = [c for c in self._written if c not in counts]
        if not changed and not gone:
            return
        async with self._redis.pipeline(transaction=False) as pipe:
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
        """Remove every expired node's presence entries and keys; returns how many nodes were reaped.

        A node is reaped only when its lease was seen expired on an earlier pass too, at least one beat interval ago.
        """
        cutoff = int(time.time() * 1000) - self._lease_ms
        dead = [n for n in texts(await self._redis.zrangebyscore(self._nodes_key, "-inf", f"({cutoff}")) if n != self.node_id]
        now = time.monotonic()
        self._suspects = {n: self._suspects.get(n, now) for n in dead}
        reaped = 0
        for node_id in dead:
            if now - self._suspects[node_id] < self._interval:
                continue  # first sighting: confirm on a later pass
            if not await self._redis.set(f"{self._prefix}:reap:{node_id}", self.node_id, nx=True, px=self._lease_ms * 3):
                continue  # another node is on it
            held = await self._presence.held_by(node_id)
            for start in range(0, len(held), REAP_BATCH):  # at most REAP_BATCH script calls in flight
                await asyncio.gather(*(self._presence.leave_for(node_id, channel, sid)  # announces a user's last leave
                                       for channel, sid in held[start : start + REAP_BATCH]))
            await self._redis.delete(self._presence.node_key(node_id), self._subs_key(node_id))
            await self._redis.zrem(self._nodes_key, node_id)
            log.warning("cluster_node_reaped", node=node_id)
            self._metrics.nodes_reaped.inc()
            self._suspects.pop(node_id, None)
            reaped += 1
        return reaped

    def may_reap(self, pass_late_by: float) -> bool:
        """Whether this node is healthy enough to judge others: its own lease was written within two beat
        intervals, and its loop ran this pass less than one interval late."""
        own_lease_age = time.monotonic() - self._heartbeat.last_ok
        return may_reap(own_lease_age, pass_late_by, self._interval)

    async def retry_leaves(self) -> None:
        """Finish presence leaves that failed while Redis was away (each announces presence:leaving if it was the
        user's last socket)."""
        for channel, sid in list(self._presence.pending):
            await self._presence.leave_for(self.node_id, channel, sid)
            self._presence.pending.discard((channel, sid))

    async def run(self) -> None:
        """Start the heartbeat thread, then write counts and reap until cancelled; failures retry on the next pass."""
        self._heartbeat.start()
        ticker = asyncio.get_running_loop().create_task(self._tick(), name="heartbeat_loop_tick")
        try:
            await self._passes()
        finally:
            ticker.cancel()

    async def _tick(self) -> None:
        """Tell the heartbeat thread that the loop runs (apart from the passes, which may wait for Redis)."""
        while True:
            self._heartbeat.loop_alive()
            await asyncio.sleep(self._interval / 2)

    async def _passes(self) -> None:
        loop = asyncio.get_running_loop()
        due = loop.time()
        while True:
            late = loop.time() - due
            try:
                await self.beat()
                await self.retry_leaves()
                if self.may_reap(late):
                    await self.reap()
                elif self._suspects:
                    self._suspects.clear()  # judge afresh once healthy again
                    log.warning("cluster_reap_postponed", late_seconds=round(late, 2), reason="own_trouble")
                if self._failing:
                    log.info("cluster_nodes_pass_recovered")
                self._failing = False
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - Redis away or busy: try again next pass
                if not self._failing:
                    log.warning("cluster_nodes_pass_failed", error=type(exc).__name__)
                self._failing = True
            due = loop.time() + self._interval
            await asyncio.sleep(self._interval)

    async def leave(self) -> None:
        """Clean shutdown: stop the heartbeat, drop this node's lease and counts (its sockets were already closed)."""
        await asyncio.to_thread(self._heartbeat.stop)
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


def may_reap(own_lease_age: float, pass_late_by: float, interval: float) -> bool:
    """A node judges its peers only while its own lease is fresh and its own loop is on time."""
    return own_lease_age <= 2 * interval and pass_late_by <= interval
