"""Lua script calls made in the same loop iteration go to Redis together, on one pipelined connection of their own.

Publishes, presence joins and presence leaves are script calls. Through redis-py's pool each held a pooled
connection from the moment it was sent until the loop had read its reply, so a node needed (calls per second) x
(round trip + loop lag) connections: in a reconnect storm the loop lags by a second or more, the calls emptied the
pool (``REDIS_POOL_SIZE``) and publishes queued behind one another (issue 14). And a pipeline of one EVALSHA cost
about 140 µs of CPU in redis-py against 45 µs here (cluster/redis_line.py), on every published event's path.

Calls run in Redis in the order they were made: a flush writes its calls in order, in pipelines of ``BATCH`` at most,
one after the other, all on the one connection. Each caller gets its own script's reply or error; an error of the
connection (Redis away, a reply later than the timeout) goes to every call in flight: such a call may or may not have
run, and is not sent again. A script missing from Redis's cache (after a restart) is loaded and only the calls Redis
refused with NOSCRIPT are sent again: they never ran.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import hiredis
from redis.exceptions import NoScriptError, ResponseError

from realtime_sio.cluster.redis_line import RedisLine

BATCH = 256  # calls per pipeline at most


@dataclass(frozen=True, slots=True)
class Script:
    """A Lua script and its SHA1, as EVALSHA names it."""

    source: str
    sha: str


@dataclass(frozen=True, slots=True)
class _Call:
    script: Script
    keys: Sequence[str]
    args: Sequence[Any]
    reply: asyncio.Future[Any]


def _error(reply: hiredis.ReplyError) -> ResponseError:
    """A script's error reply as redis-py raises it (NOSCRIPT as its own kind: the call never ran)."""
    text = str(reply)
    return NoScriptError(text) if text.startswith("NOSCRIPT") else ResponseError(text)


class ScriptCalls:
    """The node's script calls, sent together per loop iteration over one pipelined connection."""

    def __init__(self, url: str, timeout: float) -> None:
        """``url``: the Redis to call; ``timeout``: seconds to connect and for each reply (REDIS_POOL_TIMEOUT)."""
        self._line = RedisLine(url, timeout)
        self._pending: list[_Call] = []
        self._flushes: set[asyncio.Task[None]] = set()  # referenced until done (the loop keeps weak references)

    @property
    def connected(self) -> bool:
        """Whether the calls' connection is open (the next call opens it otherwise)."""
        return self._line.connected

    @staticmethod
    def register(source: str) -> Script:
        """A script to :meth:`call` (its SHA is computed here; Redis learns it on first use)."""
        return Script(source, hashlib.sha1(source.encode()).hexdigest())

    def call(self, script: Script, keys: Sequence[str], args: Sequence[Any]) -> asyncio.Future[Any]:
        """``script``'s reply for ``keys``/``args``, sent with the other calls of this loop iteration."""
        loop = asyncio.get_running_loop()
        if not self._pending:
            loop.call_soon(self._flush)
        reply: asyncio.Future[Any] = loop.create_future()
        self._pending.append(_Call(script, keys, args, reply))
        return reply

    def _flush(self) -> None:
        batch, self._pending = self._pending, []
        task = asyncio.ensure_future(self._send(batch))
        self._flushes.add(task)
        task.add_done_callback(self._flushes.discard)

    async def _send(self, batch: list[_Call]) -> None:
        for start in range(0, len(batch), BATCH):
            part = batch[start : start + BATCH]
            try:
                replies = await self._pipeline(part)
                missing = [i for i, reply in enumerate(replies) if isinstance(reply, NoScriptError)]
                if missing:
                    for script in {part[i].script.sha: part[i].script for i in missing}.values():
                        loaded = (await self._line.execute([("SCRIPT", "LOAD", script.source)]))[0]
                        if isinstance(loaded, hiredis.ReplyError):
                            raise _error(loaded)
                    for i, reply in zip(missing, await self._pipeline([part[i] for i in missing]), strict=True):
                        replies[i] = reply
            except asyncio.CancelledError:
                for call in batch[start:]:
                    call.reply.cancel()
                raise
            except Exception as exc:  # noqa: BLE001 - handed to every call of this pipeline
                replies = [exc] * len(part)
            for call, reply in zip(part, replies, strict=True):
                if call.reply.done():
                    continue  # its caller was cancelled: the script ran (or failed) all the same
                if isinstance(reply, BaseException):
                    call.reply.set_exception(reply)
                else:
                    call.reply.set_result(reply)

    async def _pipeline(self, part: list[_Call]) -> list[Any]:
        """EVALSHA for each call, written together; a refused call's reply is its exception."""
        replies = await self._line.execute(
            [("EVALSHA", call.script.sha, len(call.keys), *call.keys, *call.args) for call in part]
        )
        return [_error(reply) if isinstance(reply, hiredis.ReplyError) else reply for reply in replies]

    async def aclose(self) -> None:
        """Close the connection (calls still in flight fail with ConnectionError)."""
        await self._line.aclose()
