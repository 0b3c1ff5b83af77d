"""Laravel's Redis broadcaster → :class:`Broadcaster`: PSUBSCRIBE ``<prefix>*``, validate, publish; survive Redis restarts.

One task runs :meth:`RedisListener.run` for the life of the server. A malformed message is counted
(``redis_messages_rejected{reason}``), logged once as ``redis_message_rejected`` and skipped; a lost connection
marks its Redis link down (``/ready`` → ``redis_down``, ``redis_up`` 0) and is retried with capped exponential backoff,
resubscribing on success. Only cancellation ends the loop.

Cluster seam (issue 4). Redis pub/sub hands every PUBLISH to *every* subscribed node, and in a cluster the
broadcaster's transport already carries each published event to all nodes; so exactly one node may publish a given
Laravel message. ``once_key(redis_channel, payload)`` names the message; the cluster transport publishes it only if
that key was not claimed yet, in the same atomic step (``cluster/claim.py``, ``cluster/bus.py``). The default
(:func:`no_once_key`) answers None: a single node publishes everything.

``ignore`` lists Redis channel prefixes that are not Laravel's and are skipped silently: with an empty Laravel prefix
the pattern is ``*``, which also matches the cluster bus's own channels (pass its prefix here when wiring it).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from realtime_sio import logs
from realtime_sio.metrics import Metrics
from realtime_sio.probes import Health
from realtime_sio.publish.broadcaster import Broadcaster, Message
from realtime_sio.publish.redis_message import (
    REASONS,
    Rejected,
    RejectReason,
    parse,
    pattern_for,
    preview,
)

log = logs.get(__name__)

OnceKey = Callable[[bytes, bytes], str | None]
LINK = "laravel_listener"  # this subscriber's name in Health.links
MAX_BATCH = 256  # Laravel messages published in one Redis round trip
IDLE_PING_SECONDS = 10.0  # ping a silent subscription this often; no answer within another period = dead link


def no_once_key(channel: bytes, payload: bytes) -> str | None:
    """Single node: this node publishes every message."""
    return None


@dataclass
class Backoff:
    """Capped exponential backoff with ±20 % jitter (nodes restarted together do not reconnect in lockstep)."""

    initial: float = 0.1
    cap: float = 5.0
    _next: float = 0.0

    def reset(self) -> None:
        self._next = self.initial

    def next(self) -> float:
        """The pause before the next attempt; doubles up to ``cap``."""
        current = self._next or self.initial
        self._next = min(self.cap, current * 2)
        return min(self.cap, current * random.uniform(0.8, 1.2))


def client(url: str) -> Redis:
    """A Redis client for the subscription; the listener, not redis-py, owns retries and backoff."""
    return Redis.from_url(url, retry=Retry(NoBackoff(), 0), socket_connect_timeout=2.0, socket_keepalive=True)


class RedisListener:
    """Subscribes to Laravel's broadcast channels and publishes each valid message through the broadcaster."""

    def __init__(
        self,
        redis: Redis,
        *,
        prefix: str,
        broadcaster: Broadcaster,
        metrics: Metrics,
        health: Health,
        max_bytes: int,
        max_channel_length: int,
        backoff: Backoff | None = None,
        once_key: OnceKey = no_once_key,
        ignore: tuple[str, ...] = (),
    ) -> None:
        self._redis = redis
        self._prefix = prefix
        self._pattern = pattern_for(prefix)
        self._broadcaster = broadcaster
        self._metrics = metrics
        self._health = health
        self._max_bytes = max_bytes
        self._max_channel_length = max_channel_length
        self._backoff = backoff or Backoff()
        self._once_key = once_key
        self._ignore = tuple(p.encode() for p in ignore if p)
        self._outage_logged = False
        for reason in REASONS:
            metrics.redis_messages_rejected.labels(reason=reason)

    async def run(self) -> None:
        """Listen until cancelled, reconnecting after every failure; never returns otherwise."""
        self._backoff.reset()
        while True:
            try:
                await self._listen()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - any failure of the link means: reconnect
                pause = self._backoff.next()
                self._down(exc, pause)
                await asyncio.sleep(pause)

    async def close(self) -> None:
        """Close the Redis client (after the task is cancelled)."""
        await self._redis.aclose()

    async def _listen(self) -> None:
        pubsub = self._redis.pubsub()
        try:
            await pubsub.psubscribe(self._pattern)
            last_seen = time.monotonic()
            while True:
                message = await pubsub.get_message(timeout=IDLE_PING_SECONDS)
                now = time.monotonic()
                if message is None:
                    if now - last_seen > 2 * IDLE_PING_SECONDS:
                        raise ConnectionError("no answer to ping on the pub/sub connection")
                    await pubsub.ping()
                    continue
                last_seen = now
                batch: list[tuple[bytes, bytes]] = []
                while message is not None:
                    kind = message.get("type")
                    if kind == "pmessage":
                        batch.append((message["channel"], message["data"]))
                    elif kind == "psubscribe":
                        self._up()
                    # Take whatever else has already arrived, so a burst costs one Redis round trip, not one each.
                    message = await pubsub.get_message(timeout=0) if len(batch) < MAX_BATCH else None
                if batch:
                    await self.handle_batch(batch)
        finally:
            with contextlib.suppress(Exception):
                await pubsub.aclose()  # type: ignore[no-untyped-call,unused-ignore]  # typed from redis 8.2 on

    async def handle_batch(self, batch: list[tuple[bytes, bytes]]) -> None:
        """Validate and publish messages in arrival order (each once per cluster); never raises except on
        cancellation. The valid ones go to the broadcaster together: one Redis round trip in a cluster."""
        valid: list[tuple[tuple[Message, str | None], bytes, bytes]] = []
        now = time.time()
        for channel, payload in batch:
            if self._ignore and channel.startswith(self._ignore):
                continue
            try:
                msg = parse(channel, payload, self._prefix, self._max_bytes, self._max_channel_length)
            except Rejected as exc:
                self._reject(exc.reason, channel, payload, exc.detail)
                continue
            message = Message(msg.channel, msg.event, msg.data, msg.except_sid, None, now)
            valid.append(((message, self._once_key(channel, payload)), channel, payload))
        if not valid:
            return
        try:
            await self._broadcaster.publish_batch([out for out, _, _ in valid], source="redis")
        except Exception as exc:  # noqa: BLE001 - delivery could not be guaranteed; Laravel does not retry pub/sub
            for _, channel, payload in valid:
                self._reject("publish_failed", channel, payload, type(exc).__name__)

    def _reject(self, reason: RejectReason, channel: bytes, payload: bytes, detail: str) -> None:
        self._metrics.redis_messages_rejected.labels(reason=reason).inc()
        log.warning(
            "redis_message_rejected",
            reason=reason,
            detail=detail,
            redis_channel=channel[:120].decode("utf-8", "replace"),
            size=len(payload),
            preview=preview(payload),
        )

    def _up(self) -> None:
        self._backoff.reset()
        self._health.link(LINK, up=True)
        self._metrics.redis_up.set(1 if self._health.redis == "up" else 0)
        log.info("redis_listener_subscribed", pattern=self._pattern, recovered=self._outage_logged)
        self._outage_logged = False

    def _down(self, exc: BaseException, pause: float) -> None:
        self._health.link(LINK, up=False)
        self._metrics.redis_up.set(0)
        fields: dict[str, Any] = {"error": type(exc).__name__, "retry_in": round(pause, 3)}
        if not self._outage_logged:  # one warning per outage; each further attempt at debug level
            self._outage_logged = True
            log.warning("redis_listener_disconnected", message=str(exc)[:200], **fields)
        else:
            log.debug("redis_listener_retry_failed", **fields)
