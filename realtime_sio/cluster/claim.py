"""Exactly-once ingestion of Laravel's Redis broadcasts in a cluster: one node claims each message.

Every node PSUBSCRIBEs Laravel's channels, so every node sees every ``PUBLISH``. Each node counts how often it has
seen an identical (channel, payload) recently and names the k-th occurrence ``p:claim:<sha256>:<k>``; the bus's
publish script sets that key NX and publishes only if it was free, atomically. Nodes see a channel's messages in the
same order and handle them one at a time, so they compute the same k, exactly one node publishes each message, and
publish order is Laravel's order (whoever publishes message n+1 has already tried message n). Two identical
broadcasts in a row stay two events (k = 1, 2). Limits (docs/scaling.md): a node that joins while identical payloads are in flight
may count differently for ``window`` seconds, and a node that dies between claiming and publishing loses that one.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable


class IngestClaim:
    """``once_key(channel, payload)`` for :class:`~realtime_sio.publish.redis_listener.RedisListener` in a cluster."""

    def __init__(self, prefix: str, window: float = 30.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._prefix = prefix
        self._window = window
        self._clock = clock
        # seen[digest] = (occurrences within the window, when the window ends)
        self._seen: dict[str, tuple[int, float]] = {}

    def __call__(self, channel: bytes, payload: bytes) -> str:
        """The claim key of this message: its digest and how many times (including now) it was seen recently."""
        digest = hashlib.sha256(channel + b"\0" + payload).hexdigest()
        now = self._clock()
        count, ends = self._seen.get(digest, (0, 0.0))
        count = count + 1 if ends > now else 1
        self._seen[digest] = (count, now + self._window)
        if len(self._seen) > 50_000:
            self._seen = {d: v for d, v in self._seen.items() if v[1] > now}
        return f"{self._prefix}:claim:{digest}:{count}"
