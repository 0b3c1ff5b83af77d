"""The dashboard's data source: samples the metrics registry and the live socket state into one shared snapshot.

A background task (``sample_forever``, a part of the app's lifecycle) records the counters once per second, so rates
and "recent" errors cover the last minute as soon as a dashboard opens; samples older than
:data:`~realtime_sio.dashboard.snapshot.ERROR_WINDOW` (plus slack) are dropped. Snapshots are built on demand and
cached for ``min_interval``: every open stream and ``snapshot.json`` request inside that interval gets the same
encoded bytes, so N viewers cost one build per second.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry

from realtime_sio import logs
from realtime_sio.dashboard import snapshot
from realtime_sio.probes import Health
from realtime_sio.publish.presence import PresenceStore

if TYPE_CHECKING:
    import socketio

    from realtime_sio.sio.namespace import Connection

log = logs.get(__name__)

PRESENCE_TIMEOUT = 0.5  # seconds; a slow cluster presence store must not stall every viewer


def transport_lookup(sio: socketio.AsyncServer, namespace: str = "/") -> Callable[[str], str]:
    """A function mapping a Socket.IO sid to the Engine.IO transport it uses now."""

    def transport_of(sid: str) -> str:
        eio_sid = sio.manager.eio_sid_from_sid(sid, namespace)
        sock = sio.eio.sockets.get(eio_sid) if eio_sid is not None else None
        if sock is None:
            return "unknown"
        return "websocket" if sock.upgraded else "polling"

    return transport_of


class Feed:
    """Builds (and caches for ``min_interval``) the encoded snapshot every dashboard viewer receives."""

    def __init__(
        self,
        registry: CollectorRegistry,
        connections: Mapping[str, Connection],
        presence: PresenceStore,
        health: Health,
        transport_of: Callable[[str], str],
        version: str,
        *,
        pusher_connections: Callable[[], int] = lambda: 0,
        min_interval: float = 0.5,
        interval: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self._registry = registry
        self._connections = connections
        self._presence = presence
        self._health = health
        self._transport_of = transport_of
        self._version = version
        self._pusher_connections = pusher_connections
        self._min_interval = min_interval
        self._interval = interval
        self._clock = clock
        self._wall = wall
        self._started = clock()
        self._samples: deque[snapshot.Sample] = deque()
        self._cached: tuple[float, bytes] | None = None
        self._lock = asyncio.Lock()

    async def encoded(self) -> bytes:
        """The newest snapshot as compact JSON bytes (rebuilt when older than ``min_interval``)."""
        cached = self._cached
        if cached is not None and self._clock() - cached[0] < self._min_interval:
            return cached[1]
        async with self._lock:  # concurrent viewers wait for one build instead of each building their own
            cached = self._cached
            if cached is not None and self._clock() - cached[0] < self._min_interval:
                return cached[1]
            body = json.dumps(await self.build(), separators=(",", ":")).encode()
            self._cached = (self._clock(), body)
            return body

    def sample(self) -> None:
        """Record the registry's counters now and forget samples older than the longest window."""
        now = self._clock()
        self._samples.append(snapshot.read_sample(self._registry.collect(), now))
        horizon = now - snapshot.ERROR_WINDOW - 5.0
        while len(self._samples) > 1 and self._samples[0].at < horizon:
            self._samples.popleft()

    async def sample_forever(self) -> None:
        """Sample once per ``interval`` for the server's whole life (a lifecycle part), so a dashboard opened during
        an incident already has the last minute's rates and errors."""
        while True:
            if not self._samples or self._clock() - self._samples[-1].at >= self._interval * 0.9:
                self.sample()  # the first one at start-up: a zero baseline, so early errors count as recent
            await asyncio.sleep(self._interval)

    async def build(self) -> snapshot.Snapshot:
        """Take a sample now and build a fresh snapshot (uncached)."""
        self.sample()
        now = self._clock()
        live = snapshot.Live(
            version=self._version,
            generated_at=self._wall(),
            uptime_seconds=now - self._started,
            draining=self._health.draining,
            redis_state=self._health.redis,
            connections=self._connections,
            transport_of=self._transport_of,
            presence=await self._presence_counts(),
            pusher_connections=self._pusher_connections(),
        )
        return snapshot.build(list(self._samples), live)

    async def _presence_counts(self) -> Mapping[str, int] | None:
        try:
            return await asyncio.wait_for(self._presence.channels(), PRESENCE_TIMEOUT)
        except Exception as exc:  # noqa: BLE001 - whatever the store raises (timeout, Redis error) only blanks one panel
            log.warning("dashboard_presence_unavailable", error=type(exc).__name__)
            return None
