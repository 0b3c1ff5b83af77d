"""Batched script calls (cluster/script_calls.py, over cluster/redis_line.py) against a real redis-server: one
connection for every call, Redis runs the calls in the order they were made, each caller gets its own reply or error,
and a connection that fails fails its calls (never sends them twice)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable

import pytest
import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from realtime_sio.cluster.script_calls import ScriptCalls
from tests.support import RedisServer, eventually

APPEND = "redis.call('RPUSH', KEYS[1], ARGV[1]) return redis.call('LLEN', KEYS[1])"
REFUSE_ODD = "if tonumber(ARGV[1]) % 2 == 1 then return redis.error_reply('odd ' .. ARGV[1]) end return ARGV[1]"


@pytest.fixture
def calls(script_calls: Callable[..., ScriptCalls]) -> ScriptCalls:
    return script_calls()


async def connected_clients(redis_client: aioredis.Redis) -> int:
    return int((await redis_client.info("clients"))["connected_clients"])


async def test_every_call_shares_one_connection(redis_server: RedisServer, redis_client: aioredis.Redis) -> None:
    """Fifty calls made together, then fifty made one after another, all go over one connection (a pool would have
    opened one per call in flight)."""
    calls = ScriptCalls(redis_server.url, 5.0)
    try:
        append = calls.register(APPEND)
        before = await connected_clients(redis_client)
        replies = await asyncio.gather(*(calls.call(append, ["list"], [str(i)]) for i in range(50)))
        for i in range(50, 100):
            replies.append(await calls.call(append, ["list"], [str(i)]))
        assert replies == list(range(1, 101))
        assert await connected_clients(redis_client) == before + 1
    finally:
        await calls.aclose()


async def test_calls_run_in_the_order_they_were_made(calls: ScriptCalls, redis_client: aioredis.Redis) -> None:
    """Calls made one by one and calls made together in one write, interleaved: Redis runs them in the order they
    were made."""
    append = calls.register(APPEND)
    replies = []
    for i in range(0, 40, 4):
        replies.append(calls.call(append, ["order"], [str(i)]))
        replies += calls.call_many(append, [(["order"], [str(i + k)]) for k in (1, 2, 3)])
    await asyncio.gather(*replies)
    assert [int(v) for v in await redis_client.lrange("order", 0, -1)] == list(range(40))


async def test_each_caller_gets_its_own_reply_or_error(calls: ScriptCalls) -> None:
    """A script error answers only the call that caused it; the calls around it get their replies."""
    refuse = calls.register(REFUSE_ODD)
    replies = await asyncio.gather(*(calls.call(refuse, [], [str(i)]) for i in range(4)), return_exceptions=True)
    assert replies[0] == b"0" and replies[2] == b"2"
    assert isinstance(replies[1], ResponseError) and "odd 1" in str(replies[1])
    assert isinstance(replies[3], ResponseError) and "odd 3" in str(replies[3])


async def test_a_flushed_script_cache_runs_each_call_once(calls: ScriptCalls, redis_client: aioredis.Redis) -> None:
    """After SCRIPT FLUSH (a Redis restart) the calls Redis refused with NOSCRIPT are sent again once the script is
    loaded: each runs exactly once."""
    append = calls.register(APPEND)
    await calls.call(append, ["once"], ["warm"])
    await redis_client.script_flush()
    replies = await asyncio.gather(*(calls.call(append, ["once"], [str(i)]) for i in range(5)))
    assert replies == [2, 3, 4, 5, 6]
    assert await redis_client.llen("once") == 6


async def test_redis_away_fails_every_call_of_the_batch() -> None:
    """Nothing listening on Redis's port: every call of the batch raises the connection error (a publish answers 503,
    a presence leave is deferred), none is left waiting."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    calls = ScriptCalls(f"redis://127.0.0.1:{port}", 1.0)
    append = calls.register(APPEND)
    replies = await asyncio.gather(*(calls.call(append, ["x"], [str(i)]) for i in range(3)), return_exceptions=True)
    assert all(isinstance(reply, RedisConnectionError) for reply in replies), replies


async def test_a_server_that_never_answers_fails_the_calls_within_the_deadline() -> None:
    """A peer that accepts the connection and stays silent (a hung Redis, a black hole behind a proxy): connecting
    with AUTH, and a call without it, both fail with redis-py's TimeoutError within the deadline, never hang."""
    silent: list[asyncio.StreamWriter] = []

    async def accept(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        silent.append(writer)  # held open, never answered

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        for url in (f"redis://:secret@127.0.0.1:{port}", f"redis://127.0.0.1:{port}"):
            calls = ScriptCalls(url, 0.3)
            try:
                with pytest.raises(RedisTimeoutError):
                    await calls.call(calls.register(APPEND), ["x"], ["1"])
            finally:
                await calls.aclose()
    finally:
        for writer in silent:
            writer.close()
        server.close()
        await server.wait_closed()


async def test_a_late_reply_fails_the_calls_in_flight_and_the_next_call_gets_through(
    redis_server: RedisServer, redis_client: aioredis.Redis
) -> None:
    """Redis holds the calls past the timeout (CLIENT PAUSE): they fail with redis-py's TimeoutError, the connection is closed
    so Redis drops them unrun (no late run after the caller was told it failed), and the next call reconnects."""
    calls = ScriptCalls(redis_server.url, 0.3)
    try:
        append = calls.register(APPEND)
        assert await calls.call(append, ["late"], ["first"]) == 1
        await redis_client.execute_command("CLIENT", "PAUSE", "5000", "WRITE")
        try:
            replies = await asyncio.gather(*(calls.call(append, ["late"], [str(i)]) for i in range(3)), return_exceptions=True)
        finally:
            await redis_client.execute_command("CLIENT", "UNPAUSE")
        assert all(isinstance(reply, RedisTimeoutError) for reply in replies), replies
        assert await calls.call(append, ["late"], ["after"]) == 2
        assert await redis_client.lrange("late", 0, -1) == [b"first", b"after"]
    finally:
        await calls.aclose()


async def test_after_a_redis_restart_the_next_call_reconnects_and_runs_once(redis_server: RedisServer) -> None:
    """Redis restarts between two calls: the line notices the connection's end (a node's loop runs all the time), and
    the next call opens a new connection and runs once (the script loaded again)."""
    calls = ScriptCalls(redis_server.url, 5.0)
    try:
        append = calls.register(APPEND)
        assert await calls.call(append, ["restart"], ["before"]) == 1
        redis_server.stop()
        await eventually(lambda: not calls.connected, what="the line to notice Redis went away")
        redis_server.start()
        client = aioredis.Redis.from_url(redis_server.url)
        try:
            assert await calls.call(append, ["restart"], ["after"]) == 1  # a fresh Redis: the list starts again
            assert await client.lrange("restart", 0, -1) == [b"after"]
        finally:
            await client.aclose()
    finally:
        await calls.aclose()


async def test_a_cancelled_caller_leaves_the_others_their_replies(calls: ScriptCalls, redis_client: aioredis.Redis) -> None:
    """A caller cancelled while its batch is in flight does not disturb the batch: the others get their replies and
    the cancelled call still ran (as a single command sent before the cancellation would have)."""
    append = calls.register(APPEND)
    first = asyncio.ensure_future(calls.call(append, ["cancel"], ["a"]))
    second = calls.call(append, ["cancel"], ["b"])
    await asyncio.sleep(0)  # the flush has started
    first.cancel()
    assert await second == 2
    assert await redis_client.lrange("cancel", 0, -1) == [b"a", b"b"]


async def test_a_batch_callback_gets_every_outcome_once_even_after_a_flushed_script_cache(
    calls: ScriptCalls, redis_client: aioredis.Redis
) -> None:
    """call_many_then (the publish path's callback chain): after SCRIPT FLUSH the refused calls are loaded and sent
    again, and the callback is told once, with each call's reply or its script error, in call order."""
    refuse = calls.register(REFUSE_ODD)
    await calls.call(refuse, [], ["0"])  # loaded
    await redis_client.script_flush()
    told: asyncio.Queue[list[object]] = asyncio.Queue()
    calls.call_many_then(refuse, [([], [str(i)]) for i in range(4)], told.put_nowait)
    outcomes = await asyncio.wait_for(told.get(), 5)
    assert outcomes[0] == b"0" and outcomes[2] == b"2"
    assert isinstance(outcomes[1], ResponseError) and "odd 1" in str(outcomes[1])
    assert isinstance(outcomes[3], ResponseError) and "odd 3" in str(outcomes[3])
    await calls.call(refuse, [], ["4"])  # a later call goes through: nothing told the callback a second time
    assert told.empty()
