"""One pipelined connection to Redis: commands are written the moment they are sent, replies resolve them in order.

redis-py's asyncio client takes a pooled connection for each command or pipeline, packs the command in Python, wraps
the read in a timeout context and a retry, and parses the reply through its callback tables: about 140 µs of CPU for
one EVALSHA in a pipeline of one, measured on this project's machine, where this connection spends about 45 µs (the
publish script is a sixth of a published event's CPU on the node that takes the request; issue 14). Redis answers a
connection's commands in the order they came, so any number of callers share the connection: one reader loop
parses every reply a read brought (hiredis) and hands each to the next waiting caller.

Also what the cluster bus's subscriber connects with (:func:`open_connection`): TCP, TLS (``rediss://``, with the
URL's ``ssl_*`` options) or a Unix socket (``unix://``), the URL's credentials and database. Other URL options (pool
and socket timeouts) do not apply here.

Every wait has a deadline, ``timeout``: connecting (with AUTH and SELECT), and each reply. A reply that is late closes
the connection (the replies still to come could no longer be matched to their commands) and fails every command in
flight with redis-py's ``TimeoutError``; a connection that ends (Redis restarted or away) fails them with redis-py's
``ConnectionError``. Those commands may or may not have run: nothing is sent twice here (a retried publish script
would publish twice). The next command opens a new connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections import deque
from collections.abc import Sequence
from typing import Any, cast

import hiredis
from redis.asyncio.connection import (
    SSLConnection,
    UnixDomainSocketConnection,
    parse_url,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

READ_SIZE = 256 * 1024
Command = Sequence[str | bytes | int | float]


def pack(command: Command) -> bytes:
    """One command in RESP (hiredis packs it in C; its type stub wrongly asks for a 1-tuple)."""
    packed: bytes = hiredis.pack_command(cast(Any, tuple(command)))
    return packed


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


async def ask(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, parser: hiredis.Reader, *command: str) -> Any:
    """Send one command and return its reply, on a connection nothing else reads yet (while setting it up)."""
    writer.write(pack(command))
    while (reply := parser.gets()) is False:
        data = await reader.read(READ_SIZE)
        if not data:
            raise RedisConnectionError("Redis closed the connection")
        parser.feed(data)
    if isinstance(reply, hiredis.ReplyError):
        raise RedisConnectionError(f"Redis refused the connection: {reply}")
    return reply


async def open_connection(
    url: str, timeout: float, *, select: bool = True
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, hiredis.Reader]:
    """Connect to ``url`` and authenticate (and SELECT its database unless ``select`` is false) within ``timeout``
    seconds; returns the streams and the reply parser they feed. Raises redis-py's ConnectionError or TimeoutError."""
    try:
        return await _open(url, timeout, select)
    except TimeoutError:
        raise RedisTimeoutError(f"could not connect to Redis within {timeout}s") from None


async def _open(url: str, timeout: float, select: bool) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, hiredis.Reader]:
    options: dict[str, Any] = dict(parse_url(url))
    kind = options.get("connection_class")
    async with asyncio.timeout(timeout):
        try:
            if kind is UnixDomainSocketConnection:
                reader, writer = await asyncio.open_unix_connection(options["path"])
            else:
                tls = tls_context(options) if kind is SSLConnection else None
                reader, writer = await asyncio.open_connection(
                    options.get("host", "localhost"), int(options.get("port", 6379)), ssl=tls
                )
        except OSError as exc:
            raise RedisConnectionError(f"cannot connect to Redis: {exc.strerror or exc}") from exc
        parser = hiredis.Reader()
        try:
            password = options.get("password")
            if password is not None:
                username = options.get("username")
                await ask(reader, writer, parser, *(("AUTH", username, password) if username else ("AUTH", password)))
            database = int(options.get("db") or 0)
            if select and database:
                await ask(reader, writer, parser, "SELECT", str(database))
        except BaseException:
            writer.close()
            raise
    return reader, writer, parser


def _retrieve(futures: list[asyncio.Future[Any]]) -> None:
    """Mark the failures of a caller's other commands as seen (the caller raises the first one)."""
    for future in futures:
        if future.done() and not future.cancelled():
            future.exception()


class _Connection:
    """One open connection: the futures of the commands in flight, in the order they were written."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, parser: hiredis.Reader) -> None:
        self.writer = writer
        self.waiting: deque[asyncio.Future[Any]] = deque()
        self.closed = False
        self.reading = asyncio.ensure_future(self._read_replies(reader, parser))

    async def _read_replies(self, reader: asyncio.StreamReader, parser: hiredis.Reader) -> None:
        try:
            while True:
                while (reply := parser.gets()) is not False:
                    if not self.waiting:
                        raise RedisConnectionError("Redis sent a reply nobody asked for")
                    future = self.waiting.popleft()
                    if not future.done():  # a cancelled caller: its command ran all the same
                        future.set_result(reply)
                data = await reader.read(READ_SIZE)
                if not data:
                    raise RedisConnectionError("Redis closed the connection")
                parser.feed(data)
        except asyncio.CancelledError:
            self.close(RedisConnectionError("the connection to Redis was closed"))
            raise
        except (OSError, RedisConnectionError, hiredis.ProtocolError) as exc:
            self.close(exc if isinstance(exc, RedisConnectionError) else RedisConnectionError(str(exc)))

    def send(self, commands: Sequence[Command]) -> list[asyncio.Future[Any]]:
        loop = asyncio.get_running_loop()
        futures = [loop.create_future() for _ in commands]
        try:
            self.writer.write(b"".join(pack(command) for command in commands))
        except (RuntimeError, OSError) as exc:  # the transport closed under us: nothing was sent
            for future in futures:
                future.cancel()
            self.close(RedisConnectionError(f"the connection to Redis is closed: {exc}"))
            raise RedisConnectionError(f"the connection to Redis is closed: {exc}") from exc
        self.waiting.extend(futures)
        return futures

    def close(self, error: BaseException) -> None:
        """Fail every command in flight with ``error`` and close the connection (idempotent)."""
        self.closed = True
        while self.waiting:
            future = self.waiting.popleft()
            if not future.done():
                future.set_exception(error)
        self.writer.close()


def _usable(connection: _Connection | None) -> bool:
    return connection is not None and not connection.closed and not connection.writer.is_closing()


class RedisLine:
    """Commands to one Redis over one pipelined connection, opened when first needed and again after it ended."""

    def __init__(self, url: str, timeout: float) -> None:
        self._url = url
        self._timeout = timeout
        self._connection: _Connection | None = None
        self._opening = asyncio.Lock()

    @property
    def connected(self) -> bool:
        """Whether the connection is open (it is opened by the next command otherwise)."""
        return _usable(self._connection)

    async def execute(self, commands: Sequence[Command]) -> list[Any]:
        """Send ``commands`` together and return their replies in order; a command Redis refused has its
        ``hiredis.ReplyError`` as its reply (returned, not raised). Raises ConnectionError or TimeoutError for them
        all (redis-py's) when the connection fails or a reply is later than ``timeout``."""
        connection = await self._connected()
        futures = connection.send(commands)
        replies: list[Any] = []
        try:
            async with asyncio.timeout(self._timeout):
                for future in futures:
                    replies.append(await future)
        except TimeoutError:
            late = RedisTimeoutError(f"no reply from Redis within {self._timeout}s")
            connection.close(late)
            _retrieve(futures)
            raise late from None
        except BaseException:
            _retrieve(futures)
            raise
        return replies

    async def _connected(self) -> _Connection:
        connection = self._connection
        if connection is not None and _usable(connection):
            return connection
        async with self._opening:
            connection = self._connection
            if connection is None or not _usable(connection):
                reader, writer, parser = await open_connection(self._url, self._timeout)
                connection = self._connection = _Connection(reader, writer, parser)
            return connection

    async def aclose(self) -> None:
        """Close the connection; commands in flight fail with ConnectionError."""
        connection, self._connection = self._connection, None
        if connection is None:
            return
        connection.close(RedisConnectionError("the connection to Redis was closed"))
        connection.reading.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await connection.reading
        with contextlib.suppress(OSError, TimeoutError):
            async with asyncio.timeout(self._timeout):
                await connection.writer.wait_closed()
