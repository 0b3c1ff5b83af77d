"""One Redis pub/sub subscription, read in bulk: every message a socket read brought is parsed in one hiredis loop.

Every node receives every cluster event, so the per-message cost of reading pub/sub is paid once per node per event.
redis-py's ``PubSub.get_message`` spends about 20 µs on each (a timeout context, the retry wrapper, push handling, one
await per message); here a read of up to ``READ_SIZE`` bytes is parsed at about 1 µs per message.

It speaks only what a subscriber needs (AUTH, SUBSCRIBE, PING) over TCP, TLS (``rediss://``, with the URL's
``ssl_*`` options) or a Unix socket (``unix://``), with the URL's credentials; other URL options (pool and socket
timeouts) do not apply to it. Every wait has a deadline: connecting and subscribing ``timeout``; a connection silent
for ``IDLE_PING`` seconds is pinged and given up when the answer does not come within ``timeout`` (a half-open TCP
connection to a Redis that went away would otherwise look like a quiet channel forever).
"""

from __future__ import annotations

import asyncio
import ssl
from typing import Any

import hiredis
from redis.asyncio.connection import (
    SSLConnection,
    UnixDomainSocketConnection,
    parse_url,
)
from redis.exceptions import ConnectionError as RedisConnectionError

READ_SIZE = 256 * 1024
IDLE_PING = 30.0  # seconds of silence before the subscriber asks Redis whether it is still there


def _command(*parts: str) -> bytes:
    """One RESP command (an array of bulk strings)."""
    out = [b"*%d\r\n" % len(parts)]
    for part in parts:
        raw = part.encode()
        out.append(b"$%d\r\n%s\r\n" % (len(raw), raw))
    return b"".join(out)


def tls_context(options: dict[str, Any]) -> ssl.SSLContext:
    """The client TLS context a ``rediss://`` URL asks for (its ``ssl_*`` query options, as redis-py reads them)."""
    context = ssl.create_default_context(cafile=options.get("ssl_ca_certs"), capath=options.get("ssl_ca_path"))
    reqs = options.get("ssl_cert_reqs", "required")
    mode = {"none": ssl.CERT_NONE, "optional": ssl.CERT_OPTIONAL, "required": ssl.CERT_REQUIRED}.get(str(reqs), reqs)
    if mode == ssl.CERT_NONE:
        context.check_hostname = False
    elif "ssl_check_hostname" in options:
        context.check_hostname = str(options["ssl_check_hostname"]).lower() in ("1", "true", "yes", "on")
    context.verify_mode = mode
    if options.get("ssl_certfile"):
        context.load_cert_chain(options["ssl_certfile"], options.get("ssl_keyfile"), options.get("ssl_password"))
    return context


class Subscription:
    """A connection subscribed to one channel; :meth:`next_batch` returns the payloads of the next messages."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, timeout: float) -> None:
        self._reader = reader
        self._writer = writer
        self._timeout = timeout
        self._parser = hiredis.Reader()

    @classmethod
    async def open(cls, url: str, channel: str, timeout: float = 5.0) -> Subscription:
        """Connect, authenticate and subscribe within ``timeout`` seconds; raises redis-py's ConnectionError (or a
        TimeoutError) when that fails."""
        options: dict[str, Any] = dict(parse_url(url))
        kind = options.get("connection_class")
        async with asyncio.timeout(timeout):
            if kind is UnixDomainSocketConnection:
                reader, writer = await asyncio.open_unix_connection(options["path"])
            else:
                tls = tls_context(options) if kind is SSLConnection else None
                reader, writer = await asyncio.open_connection(
                    options.get("host", "localhost"), int(options.get("port", 6379)), ssl=tls
                )
            subscription = cls(reader, writer, timeout)
            try:
                password = options.get("password")
                if password is not None:
                    username = options.get("username")
                    auth = ("AUTH", username, password) if username else ("AUTH", password)
                    await subscription._ask(_command(*auth))
                await subscription._ask(_command("SUBSCRIBE", channel))
            except BaseException:
                subscription.close()
                raise
        return subscription

    async def _ask(self, command: bytes) -> Any:
        """Send one command and return its reply (before any message can arrive: used while setting up)."""
        self._writer.write(command)
        while (reply := self._parser.gets()) is False:
            self._parser.feed(await self._read())
        if isinstance(reply, hiredis.ReplyError):
            raise RedisConnectionError(f"Redis refused the subscriber: {reply}")
        return reply

    async def _read(self) -> bytes:
        try:
            async with asyncio.timeout(IDLE_PING):
                data = await self._reader.read(READ_SIZE)
        except TimeoutError:
            self._writer.write(_command("PING"))
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
