"""The pipelined Redis connection (cluster/redis_line.py) against a real redis-server: replies settle their commands in
the callback that read them, and a deadline that falls in a stall of the loop itself fails nothing that was answered."""

from __future__ import annotations

import asyncio
import socket
import time
from typing import Any

import uvloop
from redis.exceptions import TimeoutError as RedisTimeoutError

from realtime_sio.cluster.redis_line import RedisLine, Reply
from tests.support import RedisServer


class Recorder:
    """A sink that notes the task that told it (None: a plain callback, such as the connection's read callback)."""

    def __init__(self) -> None:
        self.told: asyncio.Future[tuple[Any, asyncio.Task[Any] | None]] = asyncio.get_running_loop().create_future()

    def settle(self, reply: Any) -> None:
        self.told.set_result((reply, asyncio.current_task()))

    def fail(self, error: BaseException) -> None:
        self.told.set_exception(error)


async def test_a_reply_settles_its_command_in_the_read_callback(redis_server: RedisServer) -> None:
    """No task stands between the socket and the sink (each hand-off would cost a loop iteration on a busy node)."""
    line = RedisLine(redis_server.url, 5.0)
    try:
        await line.execute([("PING",)])  # connected
        sinks = [Recorder(), Recorder()]
        line.submit([("ECHO", "a"), ("ECHO", "b")], sinks)
        assert [await sink.told for sink in sinks] == [(b"a", None), (b"b", None)]
    finally:
        await line.aclose()


async def stalled_reply_and_held_command(url: str) -> None:
    """A command written by a callback that then holds the loop for 1 s, run from the loop's I/O phase (where a busy
    node's work runs: uvloop then runs due timers before it reads the sockets again)."""
    line = RedisLine(url, 0.3)
    loop = asyncio.get_running_loop()
    wake, waker = socket.socketpair()
    try:
        await line.execute([("PING",)])
        reply: asyncio.Future[Any] = loop.create_future()

        def stall() -> None:
            loop.remove_reader(wake.fileno())
            line.submit([("ECHO", "in time")], [Reply(reply)])
            time.sleep(1.0)  # the whole loop stalls (a long callback, a GC pause, a starved process)

        loop.add_reader(wake.fileno(), stall)
        waker.send(b"x")
        assert await reply == b"in time"
        held = asyncio.ensure_future(line.execute([("BLPOP", "never", "0")]))
        try:
            await held
        except RedisTimeoutError:
            pass
        else:
            raise AssertionError("a reply Redis holds must time out")
    finally:
        wake.close()
        waker.close()
        await line.aclose()


async def test_a_loop_stall_past_the_deadline_fails_no_answered_command(redis_server: RedisServer) -> None:
    """The loop stands still for longer than the reply deadline while Redis answers: the command gets its reply, and a
    command Redis really holds still times out."""
    await stalled_reply_and_held_command(redis_server.url)


def test_under_uvloop_a_deadline_that_fired_late_looks_again_after_the_sockets_were_read(redis_server: RedisServer) -> None:
    """The same on uvloop (the server's loop), which runs due timers before it reads the sockets: the deadline timer
    that fires after the stall would fail the command whose reply waits unread, unless it looks again."""
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(stalled_reply_and_held_command(redis_server.url))
