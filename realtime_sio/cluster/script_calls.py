"""Lua script calls go to Redis on one pipelined connection of their own, written the moment they are made.

Publishes, presence joins and presence leaves are script calls. Through redis-py's pool each held a pooled
connection from the moment it was sent until the loop had read its reply, so a node needed (calls per second) x
(round trip + loop lag) connections: in a reconnect storm the loop lags by a second or more, the calls emptied the
pool (``REDIS_POOL_SIZE``) and publishes queued behind one another (issue 14). And a pipeline of one EVALSHA cost
about 140 µs of CPU in redis-py against 45 µs here (cluster/redis_line.py), on every published event's path.

A call is written when it is made (:meth:`ScriptCalls.call_many`: several in one write), and its reply settles the
caller's future in the callback that read it: no flush task or reader task between them, each of which cost a loop
iteration, and an iteration lasts hundreds of milliseconds on a saturated node (issue 14). Calls run in Redis in
the order they were made. Each caller gets its own script's reply or error; an error of the connection (Redis away,
a reply later than the timeout) goes to every call in flight: such a call may or may not have run, and is not sent
again. A script missing from Redis's cache (after a restart) is loaded and only the calls Redis refused with NOSCRIPT
are sent again, once: they never ran.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import hiredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, RedisError, ResponseError

from realtime_sio import logs
from realtime_sio.cluster.redis_line import Command, RedisLine

log = logs.get(__name__)

Arguments = tuple[Sequence[str], Sequence[Any]]  # a call's KEYS and ARGV


@dataclass(frozen=True, slots=True)
class Script:
    """A Lua script and its SHA1, as EVALSHA names it."""

    source: str
    sha: str


class _Batch:
    """Calls whose outcomes go to one callback, once all are known, in the callback that learnt the last one."""

    __slots__ = ("outcomes", "remaining", "then")

    def __init__(self, size: int, then: Callable[[list[Any]], None]) -> None:
        self.outcomes: list[Any] = [None] * size
        self.remaining = size
        self.then = then

    def done(self, index: int, outcome: Any) -> None:
        self.outcomes[index] = outcome
        self.remaining -= 1
        if self.remaining == 0:
            try:
                self.then(self.outcomes)
            except Exception:  # a caller's bug must not end the connection whose read told it
                log.exception("script_calls_callback_failed")


class _Call:
    """One script call in flight: the line's sink for its reply, which settles the caller's future (or its batch's
    callback)."""

    __slots__ = ("args", "batch", "index", "keys", "owner", "reply", "resent", "script")

    def __init__(
        self,
        owner: ScriptCalls,
        script: Script,
        keys: Sequence[str],
        args: Sequence[Any],
        reply: asyncio.Future[Any] | None,
        batch: _Batch | None = None,
        index: int = 0,
    ) -> None:
        self.owner = owner
        self.script = script
        self.keys = keys
        self.args = args
        self.reply = reply
        self.batch = batch
        self.index = index
        self.resent = False  # sent again after NOSCRIPT (a second NOSCRIPT is its error)

    def command(self) -> Command:
        return ("EVALSHA", self.script.sha, len(self.keys), *self.keys, *self.args)

    def settle(self, reply: Any) -> None:
        if isinstance(reply, hiredis.ReplyError):
            text = str(reply)
            if text.startswith("NOSCRIPT") and not self.resent:
                self.owner.reload(self)  # even for a cancelled caller: its call was made, and runs as if it had run now
                return
            reply = NoScriptError(text) if text.startswith("NOSCRIPT") else ResponseError(text)
        self._finish(reply)

    def fail(self, error: BaseException) -> None:
        self._finish(error)

    def _finish(self, outcome: Any) -> None:
        if self.batch is not None:
            self.batch.done(self.index, outcome)
            return
        reply = self.reply
        if reply is None or reply.done():
            return  # its caller was cancelled: the script ran (or failed) all the same
        if isinstance(outcome, BaseException):
            reply.set_exception(outcome)
        else:
            reply.set_result(outcome)


class ScriptCalls:
    """The node's script calls, written as they are made over one pipelined connection."""

    def __init__(self, url: str, timeout: float) -> None:
        """``url``: the Redis to call; ``timeout``: seconds to connect and for each reply (REDIS_POOL_TIMEOUT)."""
        self._line = RedisLine(url, timeout)
        self._missing: list[_Call] = []  # refused with NOSCRIPT, waiting for their script to be loaded
        self._reloading: asyncio.Task[None] | None = None

    @property
    def connected(self) -> bool:
        """Whether the calls' connection is open (the next call opens it otherwise)."""
        return self._line.connected

    @staticmethod
    def register(source: str) -> Script:
        """A script to :meth:`call` (its SHA is computed here; Redis learns it on first use)."""
        return Script(source, hashlib.sha1(source.encode()).hexdigest())

    def call(self, script: Script, keys: Sequence[str], args: Sequence[Any]) -> asyncio.Future[Any]:
        """``script``'s reply for ``keys``/``args`` (sent now)."""
        return self.call_many(script, [(keys, args)])[0]

    def call_many(self, script: Script, each: Sequence[Arguments]) -> list[asyncio.Future[Any]]:
        """``script``'s replies for each ``(keys, args)``, in order, the calls sent now in one write."""
        loop = asyncio.get_running_loop()
        futures: list[asyncio.Future[Any]] = [loop.create_future() for _ in each]
        calls = [_Call(self, script, keys, args, future) for (keys, args), future in zip(each, futures, strict=True)]
        self._line.submit([call.command() for call in calls], calls)
        return futures

    def call_many_then(self, script: Script, each: Sequence[Arguments], then: Callable[[list[Any]], None]) -> None:
        """Like :meth:`call_many`, but ``then`` gets every call's outcome (its reply, or the exception :meth:`call`
        would raise), in order, in the callback that learnt the last one: no future to wake, which would cost the
        caller a loop iteration. ``then`` must not raise (what it raises is logged)."""
        batch = _Batch(len(each), then)
        calls = [_Call(self, script, keys, args, None, batch, i) for i, (keys, args) in enumerate(each)]
        if not calls:
            then([])
            return
        self._line.submit([call.command() for call in calls], calls)

    def reload(self, call: _Call) -> None:
        """A call Redis refused with NOSCRIPT (it never ran): sent again once its script is loaded."""
        self._missing.append(call)
        if self._reloading is None:
            self._reloading = asyncio.ensure_future(self._load_and_resend())

    async def _load_and_resend(self) -> None:
        try:
            while self._missing:
                missing, self._missing = self._missing, []
                try:
                    for script in {call.script.sha: call.script for call in missing}.values():
                        loaded = (await self._line.execute([("SCRIPT", "LOAD", script.source)]))[0]
                        if isinstance(loaded, hiredis.ReplyError):
                            raise ResponseError(str(loaded))
                except asyncio.CancelledError:
                    for call in missing:
                        call.fail(RedisConnectionError("the script calls were closed"))
                    raise
                except RedisError as exc:  # handed to every call that waited for the script
                    for call in missing:
                        call.fail(exc)
                    continue
                for call in missing:
                    call.resent = True
                self._line.submit([call.command() for call in missing], missing)
        finally:
            self._reloading = None

    async def aclose(self) -> None:
        """Close the connection (calls still in flight fail with ConnectionError)."""
        if self._reloading is not None:
            self._reloading.cancel()
            await asyncio.gather(self._reloading, return_exceptions=True)
        await self._line.aclose()
