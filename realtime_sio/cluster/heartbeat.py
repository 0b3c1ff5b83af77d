"""This node's lease, renewed from a thread of its own on a Redis connection of its own.

During a reconnect storm a node's event loop can be busy for seconds and its shared pool can be exhausted; a
heartbeat that waits for either makes a live node look dead, and its peers reap it: its users vanish from presence
(issue 14). The thread here writes the lease every ``interval`` whatever the loop is doing, as long as the loop has
shown a sign of life (:meth:`Heartbeat.loop_alive`) within ``max_loop_silence``: a loop stuck longer than that is
treated as dead, and the lease is left to expire.
"""

from __future__ import annotations

import threading
import time

import redis
from redis.exceptions import RedisError

from realtime_sio import logs
from realtime_sio.metrics import Metrics

log = logs.get(__name__)


class Heartbeat:
    """Writes ``nodes_key[node_id] = now ms`` every ``interval`` seconds from a daemon thread."""

    def __init__(
        self, url: str, nodes_key: str, node_id: str, interval: float, max_loop_silence: float, metrics: Metrics
    ) -> None:
        self._client = redis.Redis.from_url(
            url, socket_timeout=interval, socket_connect_timeout=interval, single_connection_client=True
        )
        self._key = nodes_key
        self._node_id = node_id
        self._interval = interval
        self._max_silence = max_loop_silence
        self._metrics = metrics
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._loop_seen = time.monotonic()
        self.last_ok = 0.0  # monotonic time of the last lease written (0: never)
        self._failing = False

    def loop_alive(self) -> None:
        """Called from the event loop now and then: the node is still doing its work."""
        self._loop_seen = time.monotonic()

    def start(self) -> None:
        self._loop_seen = time.monotonic()
        self._thread = threading.Thread(target=self._run, name="realtime-sio-heartbeat", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        """Stop renewing (before the node removes its own lease on shutdown)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self._client.close()

    def beat(self) -> str:
        """Renew the lease once; returns the outcome (ok, failed, withheld)."""
        silence = time.monotonic() - self._loop_seen
        if silence > self._max_silence:
            log.warning("heartbeat_withheld", loop_silent_seconds=round(silence, 1))
            return "withheld"
        try:
            self._client.zadd(self._key, {self._node_id: int(time.time() * 1000)})
        except RedisError as exc:
            if not self._failing:
                log.warning("heartbeat_failed", error=type(exc).__name__)
            self._failing = True
            return "failed"
        if self._failing:
            log.info("heartbeat_recovered")
        self._failing = False
        self.last_ok = time.monotonic()
        return "ok"

    def _run(self) -> None:
        while True:
            self._metrics.heartbeats.labels(outcome=self.beat()).inc()
            if self._stop.wait(self._interval):
                return
