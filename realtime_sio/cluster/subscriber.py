"""One Redis pub/sub subscription, read in bulk: every message a read brought is parsed in one hiredis loop and handed
on in the read callback itself.

Every node receives every cluster event, so the per-message cost of reading pub/sub is paid once per node per event.
redis-py's ``PubSub.get_message`` spends about 20 µs on each (a timeout context, the retry wrapper, push handling, one
await per message); here a read is parsed at about 1 µs per message. And the payloads go to the bus
(:meth:`Subscription.start`) inside the connection's read callback: no reader task to wake, which cost a loop
iteration per read, and a loop iteration lasts hundreds of milliseconds on a saturated node (issue 14).

It speaks only what a subscriber needs (AUTH, SUBSCRIBE, PING), connected as the script calls' line is
(``cluster/redis_line.py``: TCP, TLS or a Unix socket, the URL's credentials). Every wait has a deadline: connecting
and subscribing ``timeout``; a connection silent for ``IDLE_PING`` seconds is pinged and given up when the answer
does not come within ``timeout`` (a half-open TCP connection to a Redis that went away would otherwise look like a
quiet channel forever).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import hiredis
from redis.exceptions import ConnectionError as RedisConnectionError

from realtime_sio.cluster.redis_line import Connection, Reply, connect

IDLE_PING = 30.0  # seconds of silence before the subscriber asks Redis whether it is still there


class _Ignore:
    """The sink of a PING: its answer only proves the connection alive (any read does)."""

    def settle(self, reply: object) -> None:
        pass

    def fail(self, error: BaseException) -> None:
        pass


class Subscription(Connection):
    """A connection subscribed to one channel. The payloads of its messages are held until :meth:`start`, then handed,
    as each read brings them, to the function it was given; :attr:`ended` fails with the reason the connection
    ended."""

    def __init__(self, timeout: float) -> None:
        super().__init__(timeout)
        loop = asyncio.get_running_loop()
        self._deliver: Callable[[list[bytes]], None] | None = None
        self._early: list[bytes] = []  # payloads that came before start()
        self._batch: list[bytes] = []  # the payloads of the read being parsed
        self._heard = True  # something was read since the last idle check
        self._idle = loop.call_later(IDLE_PING, self._idle_check)
        self.ended: asyncio.Future[None] = loop.create_future()

    @classmethod
    async def open(cls, url: str, channel: str, timeout: float = 5.0) -> Subscription:
        """Connect, authenticate and subscribe within ``timeout`` seconds; raises redis-py's ConnectionError (or a
        TimeoutError) when that fails."""
        async with asyncio.timeout(timeout):
            subscription = await connect(url, timeout, cls, select=False)
            try:
                confirmed: asyncio.Future[object] = asyncio.get_running_loop().create_future()
                subscription.send([("SUBSCRIBE", channel)], [Reply(confirmed)])
                if isinstance(reply := await confirmed, hiredis.ReplyError):
                    raise RedisConnectionError(f"Redis refused the subscription: {reply}")
            except BaseException:
                subscription.close(RedisConnectionError("the subscriber connection was closed"))
                raise
        return subscription

    @property
    def held(self) -> int:
        """How many payloads wait for :meth:`start` (they came while the bus was catching up)."""
        return len(self._early)

    def start(self, deliver: Callable[[list[bytes]], None]) -> None:
        """From now on, hand each read's payloads (in order, at least one) to ``deliver``, starting with those that
        came before. An exception from ``deliver`` ends the connection with it."""
        self._deliver = deliver
        held, self._early = self._early, []
        if held:
            self._hand_over(held)

    def reply_received(self, reply: Any) -> None:
        if isinstance(reply, list) and len(reply) == 3 and reply[0] == b"message":
            self._batch.append(reply[2])
        elif self.in_flight:  # the confirmation of SUBSCRIBE, an AUTH answer, the answer to our PING
            super().reply_received(reply)
        elif isinstance(reply, hiredis.ReplyError):
            raise RedisConnectionError(f"Redis error on the subscriber connection: {reply}")

    def data_received(self, data: bytes) -> None:
        self._heard = True
        super().data_received(data)  # the read's messages collect in _batch
        batch, self._batch = self._batch, []
        if not batch or self.closed:
            return
        if self._deliver is None:
            self._early += batch
        else:
            self._hand_over(batch)

    def _hand_over(self, batch: list[bytes]) -> None:
        assert self._deliver is not None
        try:
            self._deliver(batch)
        except Exception as exc:  # noqa: BLE001 - the bus resubscribes and catches up, as after a Redis failure
            self.close(exc)

    def _idle_check(self) -> None:
        """Every IDLE_PING: a connection nothing was read from since the last check is asked for a PONG (its deadline
        is the reply deadline of every command here)."""
        if self.closed:
            return
        if not self._heard and not self.in_flight:
            try:
                self.send([("PING",)], [_Ignore()])
            except RedisConnectionError as exc:
                self.close(exc)
                return
        self._heard = False
        self._idle = asyncio.get_running_loop().call_later(IDLE_PING, self._idle_check)

    def close(self, error: BaseException) -> None:
        """End the subscription: :attr:`ended` fails with ``error`` (idempotent)."""
        self._idle.cancel()
        if not self.ended.done():
            self.ended.set_exception(error)
            self.ended.exception()  # seen: a subscription that failed while opening has nobody awaiting it
        super().close(error)

    async def aclose(self) -> None:
        """Close the connection and wait (at most ``timeout``) until it is closed."""
        self.close(RedisConnectionError("the subscriber connection was closed"))
        try:
            async with asyncio.timeout(self._timeout):
                await self.lost
        except TimeoutError:
            pass  # the transport is closed either way
