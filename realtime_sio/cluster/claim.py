"""Exactly-once ingestion of Laravel's Redis broadcasts in a cluster: one node claims each message.

Every node PSUBSCRIBEs Laravel's channels, so every node sees every ``PUBLISH``. Each node counts how often it has
seen an identical (channel, payload) recently; the k-th occurrence is claimed with ``SET p:claim:<sha256>:<k> NX``.
Nodes see a channel's messages in the same order, so they compute the same k and exactly one wins; the winner
publishes through the cluster bus, which records and delivers it to every node once. Two identical broadcasts in a
row stay two events (k = 1, 2). Limits (docs/scaling.md): a node that joins while identical payloads are in flight
may count differently for ``window`` seconds, and a node that dies between claiming and publishing loses that one.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable

import redis.asyncio as aioredis


class IngestClaim:
    """``claim(channel, payload) -> bool`` for :class:`~realtime_sio.publish.redis_listener.RedisListener`."""

    def __init__(
        self, client: aioredis.Redis, prefix: str, node_id: str, window: float = 30.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._redis = client
        self._prefix = prefix
        self._node_id = node_id
        self._window = window
        self._clock = clock
        # seen[digest] = (occurrences within the window, when the window ends)
        self._seen: dict[str, tuple[int, float]] = {}

    def occurrence(self, channel: bytes, payload: bytes) -> tuple[str, int]:
        """This message's digest and how many times (including now) it was seen within the window."""
        digest = hashlib.sha256(channel + b"\0" + payload).hexdigest()
        now = self._clock()
        count, ends = self._seen.get(digest, (0, 0.0))
        count = count + 1 if ends > now else 1
        self._seen[digest] = (count, now + self._window)
        if len(self._seen) > 50_000:
            self._seen = {d: v for d, v in self._seen.items() if v[1] > now}
        return digest, count

    async def __call__(self, channel: bytes, payload: bytes) -> bool:
        digest, count = self.occurrence(channel, payload)
        key = f"{self._prefix}:claim:{digest}:{count}"
        return bool(await self._redis.set(key, self._node_id, nx=True, px=int(self._window * 2000)))
