"""One pipelined connection to Redis: commands are written the moment they are sent, replies resolve them in order.

redis-py's asyncio client takes a pooled connection for each command or pipeline, packs the command in Python, wraps
the read in a timeout context and a retry, and parses the reply through its callback tables: about 140 µs of CPU for
one EVALSHA in a pipeline of one, measured on this project's machine. Redis answers a connection's commands in the
order they came, so any number of callers share the connection: the connection is an asyncio protocol whose
``data_received`` parses every reply a read brought (hiredis) and settles the next waiting command with it, in that
same callback.

Loop iterations, not only CPU, are what a command costs on a busy node: each hand-off between callbacks and tasks
(a future resolved, a task woken) waits for the next iteration, and when the loop is saturated (a reconnect storm)
an iteration lasts hundreds of milliseconds. So nothing here hands off: :meth:`RedisLine.submit` writes at once,
a reply settles its command inside the read callback (a :class:`Sink` may act on it there), and one timer per
connection keeps the deadline of the oldest command in flight, instead of a timeout context per caller (issue 14:
a published event took 9 loop iterations from request to answer, 3 without Redis).

Connections (:func:`connect`, also the cluster bus's subscriber's) go over TCP, TLS (``rediss://``, with the URL's
``ssl_*`` options) or a Unix socket (``unix://``), with the URL's credentials and database. Other URL options (pool
and socket timeouts) do not apply here.

Every wait has a deadline, ``timeout``: connecting (with AUTH and SELECT), and each reply. A reply that is late closes
the connection (the replies still to come could no longer be matched to their commands) and fails every command in
flight with redis-py's ``TimeoutError``; a connection that ends (Redis restarted or away) fails them with redis-py's
``ConnectionError``. Those commands may or may not have run: nothing is sent twice here (a retried publish script
would publish twice). The next command opens a new connection. A deadline that falls in a stall of the loop itself
(its timer fires late) is checked once more after the loop has read its sockets: the reply may be waiting there.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any, Protocol, TypeVar, cast

import hiredis
from redis.asyncio.connection import (
    SSLConnection,
    UnixDomainSocketConnection,
    parse_url,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

LATE_GRACE = 0.5  # seconds: a deadline timer firing later than this fired after a stall of the loop
HOLD_SECONDS = 0.25  # then the overdue reply is looked for again this much later, after the sockets were read
Command = Sequence[str | bytes | int | float]
C = TypeVar("C", bound="Connection")


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


def _address(options: dict[str, Any]) -> tuple[str, int, ssl.SSLContext | None]:
    """Host, port and TLS context of a TCP (``redis://``) or TLS (``rediss://``) URL's options."""
    tls = tls_context(options) if options.get("connection_class") is SSLConnection else None
    return options.get("host", "localhost"), int(options.get("port", 6379)), tls


def _setup(options: dict[str, Any], select: bool) -> list[tuple[str, ...]]:
    """The commands a new connection sends first: AUTH with the URL's credentials, SELECT its database."""
    commands: list[tuple[str, ...]] = []
    password = options.get("password")
    if password is not None:
        username = options.get("username")
        commands.append(("AUTH", username, password) if username else ("AUTH", password))
    database = int(options.get("db") or 0)
    if select and database:
        commands.append(("SELECT", str(database)))
    return commands


class Sink(Protocol):
    """Told the outcome of one command, inside the callback that learnt it: its reply (a refusal is a
    ``hiredis.ReplyError`` reply) or the error of its connection."""

    def settle(self, reply: Any) -> None: ...

    def fail(self, error: BaseException) -> None: ...


class Reply:
    """A :class:`Sink` that resolves a future (done futures are left alone: a cancelled caller's command ran anyway)."""

    __slots__ = ("future",)

    def __init__(self, future: asyncio.Future[Any]) -> None:
        self.future = future

    def settle(self, reply: Any) -> None:
        if not self.future.done():
            self.future.set_result(reply)

    def fail(self, error: BaseException) -> None:
        if not self.future.done():
            self.future.set_exception(error)


class Connection(asyncio.Protocol):
    """One open connection: the sinks of the commands in flight, in the order they were written, each with the loop
    time it was written at."""

    def __init__(self, timeout: float) -> None:
        self._timeout = timeout
        self._parser = hiredis.Reader()
        self._waiting: deque[tuple[Sink, float]] = deque()
        self._transport: asyncio.Transport | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._due = 0.0  # the loop time the timer is set for
        self._held = False  # the oldest command's deadline fell in a stall and was given one more look
        self.closed = False
        self.lost: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    @property
    def usable(self) -> bool:
        return not self.closed and self._transport is not None and not self._transport.is_closing()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's transports are not asyncio.Transport subclasses

    def connection_lost(self, exc: Exception | None) -> None:
        self.close(RedisConnectionError(f"Redis closed the connection{f': {exc}' if exc else ''}"))
        if not self.lost.done():
            self.lost.set_result(None)

    @property
    def in_flight(self) -> int:
        """Commands written whose replies have not come yet."""
        return len(self._waiting)

    def data_received(self, data: bytes) -> None:
        parser = self._parser
        try:
            parser.feed(data)
            while (reply := parser.gets()) is not False:
                self.reply_received(reply)
        except hiredis.ProtocolError as exc:
            self.close(RedisConnectionError(f"unreadable reply from Redis: {exc}"))
        except RedisConnectionError as exc:
            self.close(exc)

    def reply_received(self, reply: Any) -> None:
        """One parsed reply: it settles the oldest command in flight (raises ConnectionError when there is none)."""
        if not self._waiting:
            raise RedisConnectionError("Redis sent a reply nobody asked for")
        self._waiting.popleft()[0].settle(reply)

    def send(self, commands: Sequence[Command], sinks: Sequence[Sink]) -> None:
        """Write ``commands``; their replies go to ``sinks`` (raises ConnectionError when nothing could be written)."""
        transport = self._transport
        if self.closed or transport is None or transport.is_closing():
            raise RedisConnectionError("the connection to Redis is closed")
        try:
            transport.write(b"".join(pack(command) for command in commands))
        except (RuntimeError, OSError) as exc:  # the transport closed under us: nothing was sent
            self.close(RedisConnectionError(f"the connection to Redis is closed: {exc}"))
            raise RedisConnectionError(f"the connection to Redis is closed: {exc}") from exc
        loop = asyncio.get_running_loop()
        now = loop.time()
        self._waiting.extend((sink, now) for sink in sinks)
        if self._timer is None:
            self._arm(loop, now + self._timeout)

    def _arm(self, loop: asyncio.AbstractEventLoop, due: float) -> None:
        self._due = due
        self._timer = loop.call_at(due, self._check)

    def _check(self) -> None:
        """The deadline timer: the oldest command's reply is overdue (close), or the timer moves to its deadline."""
        self._timer = None
        if self.closed or not self._waiting:
            return
        loop = asyncio.get_running_loop()
        now = loop.time()
        due = self._waiting[0][1] + self._timeout
        if due > now:
            self._held = False
            self._arm(loop, due)
        elif now - self._due > LATE_GRACE and not self._held:  # a stall: the reply may be unread in the socket
            self._held = True
            self._arm(loop, now + HOLD_SECONDS)
        else:
            self.close(RedisTimeoutError(f"no reply from Redis within {self._timeout}s"))

    def close(self, error: BaseException) -> None:
        """Fail every command in flight with ``error`` and close the connection (idempotent)."""
        self.closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        waiting = self._waiting
        while waiting:
            waiting.popleft()[0].fail(error)
        if self._transport is not None:
            self._transport.close()


async def connect(url: str, timeout: float, factory: Callable[[float], C], *, select: bool = True) -> C:
    """A connection to ``url`` made by ``factory(timeout)``, authenticated (and on its database unless ``select`` is
    false), within ``timeout`` seconds. Raises redis-py's ConnectionError or TimeoutError."""
    options: dict[str, Any] = dict(parse_url(url))
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(timeout):
            try:
                if options.get("connection_class") is UnixDomainSocketConnection:
                    _, connection = await loop.create_unix_connection(lambda: factory(timeout), options["path"])
                else:
                    host, port, tls = _address(options)
                    _, connection = await loop.create_connection(lambda: factory(timeout), host, port, ssl=tls)
            except OSError as exc:
                raise RedisConnectionError(f"cannot connect to Redis: {exc.strerror or exc}") from exc
            setup = _setup(options, select)
            if setup:
                futures = [loop.create_future() for _ in setup]
                try:
                    connection.send(setup, [Reply(future) for future in futures])
                    for future in futures:
                        if isinstance(reply := await future, hiredis.ReplyError):
                            raise RedisConnectionError(f"Redis refused the connection: {reply}")
                except BaseException:
                    connection.close(RedisConnectionError("the connection to Redis was closed"))
                    _retrieve(futures)
                    raise
    except TimeoutError:
        raise RedisTimeoutError(f"could not connect to Redis within {timeout}s") from None
    return connection


def _retrieve(futures: list[asyncio.Future[Any]]) -> None:
    """Mark the failures of a caller's other commands as seen (the caller raises the first one)."""
    for future in futures:
        if future.done() and not future.cancelled():
            future.exception()


class RedisLine:
    """Commands to one Redis over one pipelined connection, opened when first needed and again after it ended."""

    def __init__(self, url: str, timeout: float) -> None:
        self._url = url
        self._timeout = timeout
        self._connection: Connection | None = None
        self._opening: asyncio.Task[None] | None = None
        self._queued: list[tuple[Sequence[Command], Sequence[Sink]]] = []  # sent while the connection opens

    @property
    def connected(self) -> bool:
        """Whether the connection is open (it is opened by the next command otherwise)."""
        return self._connection is not None and self._connection.usable

    def submit(self, commands: Sequence[Command], sinks: Sequence[Sink]) -> None:
        """Write ``commands`` now (when the connection is open, else as soon as it is); each reply, or the error of
        the connection, goes to the sink of the same index."""
        connection = self._connection
        if connection is not None and connection.usable:
            try:
                connection.send(commands, sinks)
            except RedisConnectionError as exc:
                for sink in sinks:
                    sink.fail(exc)
            return
        self._queued.append((commands, sinks))
        if self._opening is None:
            self._opening = asyncio.ensure_future(self._open())

    async def _open(self) -> None:
        """Open the connection and write what was queued meanwhile (or fail it with the reason it could not open)."""
        try:
            connection = await connect(self._url, self._timeout, Connection)
        except asyncio.CancelledError:
            self._fail_queued(RedisConnectionError("the connection to Redis was closed"))
            raise
        except Exception as exc:  # noqa: BLE001 - every queued command gets the reason
            self._fail_queued(exc if isinstance(exc, RedisError) else RedisConnectionError(f"cannot connect to Redis: {exc}"))
            return
        finally:
            self._opening = None
        self._connection = connection
        queued, self._queued = self._queued, []
        for commands, sinks in queued:
            self.submit(commands, sinks)

    def _fail_queued(self, error: BaseException) -> None:
        queued, self._queued = self._queued, []
        for _, sinks in queued:
            for sink in sinks:
                sink.fail(error)

    async def execute(self, commands: Sequence[Command]) -> list[Any]:
        """Send ``commands`` together and return their replies in order; a command Redis refused has its
        ``hiredis.ReplyError`` as its reply (returned, not raised). Raises ConnectionError or TimeoutError for them
        all (redis-py's) when the connection fails or a reply is later than ``timeout``."""
        loop = asyncio.get_running_loop()
        futures = [loop.create_future() for _ in commands]
        self.submit(commands, [Reply(future) for future in futures])
        try:
            return [await future for future in futures]
        except BaseException:
            _retrieve(futures)
            raise

    async def aclose(self) -> None:
        """Close the connection; commands in flight or queued fail with ConnectionError."""
        if self._opening is not None:
            self._opening.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._opening
        self._fail_queued(RedisConnectionError("the connection to Redis was closed"))
        connection, self._connection = self._connection, None
        if connection is None:
            return
        connection.close(RedisConnectionError("the connection to Redis was closed"))
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self._timeout):
                await connection.lost
