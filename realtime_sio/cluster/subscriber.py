"""One Redis pub/sub subscription, read in bulk: every message a socket read brought is parsed in one hiredis loop.

Every node receives every cluster event, so the per-message cost of reading pub/sub is paid once per node per event.
redis-py's ``PubSub.get_message`` spends about 20 µs on each (a timeout context, the retry wrapper, push handling, one
await per message); here a read of up to ``READ_SIZE`` bytes is parsed at about 1 µs per message.

It speaks only what a subscriber needs (AUTH, SUBSCRIBE, PING) over TCP, TLS (``rediss://``, with the URL's
``ssl_*`` options) or a Unix socket (``unix://``), with the URL's credentials, connected as the script calls' line is
(``cluster/redis_line.py``); other URL options (pool and socket timeouts) do not apply to it. Every wait has a
deadline: connecting and subscribing ``timeout``; a connection silent for ``IDLE_PING`` seconds is pinged and given up
when the answer does not come within ``timeout`` (a half-open TCP connection to a Redis that went away would otherwise
look like a quiet channel forever).
"""

from __future__ import annotations

import asyncio

import hiredis
from redis.exceptions import ConnectionError as RedisConnectionError

from realtime_sio.cluster.redis_line import READ_SIZE, ask, open_connection, pack

IDLE_PING = 30.0  # seconds of silence before the subscriber asks Redis whether it is still there


class Subscription:
    """A connection subscribed to one channel; :meth:`next_batch` returns the payloads of the next messages."""

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, parser: hiredis.Reader, timeout: float
    ) -> None:
        self._reader = reader
        self._writer = writer
        self._timeout = timeout
        self._parser = parser

    @classmethod
    async def open(cls, url: str, channel: str, timeout: float = 5.0) -> Subscription:
        """Connect, authenticate and subscribe within ``timeout`` seconds; raises redis-py's ConnectionError (or a
        TimeoutError) when that fails."""
        async with asyncio.timeout(timeout):
            reader, writer, parser = await open_connection(url, timeout, select=False)
            try:
                await ask(reader, writer, parser, "SUBSCRIBE", channel)
            except BaseException:
                writer.close()
                raise
        return cls(reader, writer, parser, timeout)

    async def _read(self) -> bytes:
        try:
            async with asyncio.timeout(IDLE_PING):
                data = await self._reader.read(READ_SIZE)
        except TimeoutError:
            self._writer.write(pack(("PING",)))
            try:
                async with asyncio.timeout(self._timeout):
                    data = await self._reader.read(READ_SIZE)
            except TimeoutError:
                raise RedisConnectionError(f"Redis did not answer a PING within {self._timeout}s") from None
        if not data:
            raise RedisConnectionError("Redis closed the subscriber connection")
        return data

    async def next_batch(self) -> list[bytes]:
        """The payloads of the messages the next read(s) brought, in order (at least one). Raises redis-py's
        ConnectionError when the connection ends, fails or stays silent past its deadline."""
        batch: list[bytes] = []
        while True:
            while (reply := self._parser.gets()) is not False:
                if isinstance(reply, list) and len(reply) == 3 and reply[0] == b"message":
                    batch.append(reply[2])
                elif isinstance(reply, hiredis.ReplyError):
                    raise RedisConnectionError(f"Redis error on the subscriber connection: {reply}")
                # anything else: the answer to our PING, or a (un)subscribe confirmation
            if batch:
                return batch
            self._parser.feed(await self._read())

    def close(self) -> None:
        """Close the connection (idempotent)."""
        self._writer.close()

    async def aclose(self) -> None:
        """Close the connection and wait (at most ``timeout``) until it is closed."""
        self.close()
        try:
            async with asyncio.timeout(self._timeout):
                await self._writer.wait_closed()
        except (OSError, TimeoutError):
            pass  # already broken, or the peer is gone: the transport is closed either way
