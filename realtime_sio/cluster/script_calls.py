"""Lua script calls made in the same loop iteration go to Redis together: one pipeline, one pooled connection.

redis-py's asyncio client holds a pooled connection from the moment a command is sent until the loop has read its
reply, so the connections a node needs are (calls per second) x (round trip + loop lag). In a reconnect storm the
loop lags by a second or more while publishes, presence joins and presence leaves keep coming: one connection each
emptied the pool (``REDIS_POOL_SIZE``) and publishes queued behind one another (issue 14). Batched per loop
iteration they need one connection per iteration, however many calls it made, as history and position reads
already do (cluster/bus.py).

Calls run in Redis in the order they were made: a flush sends its calls in order, in pipelines of ``BATCH`` at most,
one after the other. Each caller gets its own script's reply or error; an error of the pipeline itself (Redis away,
no pooled connection within the pool timeout) goes to every call of the flush. A script missing from Redis's cache
(after a restart) is loaded and only the calls Redis refused with NOSCRIPT are sent again: they never ran.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from redis.commands.core import AsyncScript
from redis.exceptions import NoScriptError

BATCH = 256  # calls per pipeline at most


@dataclass(frozen=True, slots=True)
class _Call:
    script: AsyncScript
    keys: Sequence[str]
    args: Sequence[Any]
    reply: asyncio.Future[Any]


class ScriptCalls:
    """The node's script calls on its shared client, sent together per loop iteration."""

    def __init__(self, client: aioredis.Redis) -> None:
        self._redis = client
        self._pending: list[_Call] = []
        self._flushes: set[asyncio.Task[None]] = set()  # referenced until done (the loop keeps weak references)

    def register(self, source: str) -> AsyncScript:
        """A script to :meth:`call` (its SHA is computed here; Redis learns it on first use)."""
        return self._redis.register_script(source)

    def call(self, script: AsyncScript, keys: Sequence[str], args: Sequence[Any]) -> asyncio.Future[Any]:
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
                    for script in {id(part[i].script): part[i].script for i in missing}.values():
                        await self._redis.script_load(script.script)
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
        """EVALSHA straight into the pipeline: redis-py's script objects would make every pipeline ask
        ``SCRIPT EXISTS`` first, a second round trip per batch."""
        async with self._redis.pipeline(transaction=False) as pipe:
            for call in part:
                pipe.evalsha(call.script.sha, len(call.keys), *call.keys, *call.args)
            return list(await pipe.execute(raise_on_error=False))
