"""The cluster's presence store (cluster/presence.py) against a real redis-server: the member lists it reads back and
the presence:joining/leaving announcements its scripts publish on the cluster bus."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Self

import redis.asyncio as aioredis

from realtime_sio.cluster.bus import decode, events_channel
from realtime_sio.cluster.presence import RedisPresence
from realtime_sio.cluster.script_calls import ScriptCalls
from realtime_sio.members import Member
from realtime_sio.publish.broadcaster import Message
from tests.support import RedisServer

CHANNEL = "presence-chat.1"
PREFIX = "rtsio-test"


async def test_a_join_answers_every_member_once_per_user(redis_server: RedisServer, script_calls: Callable[..., ScriptCalls], redis_client: aioredis.Redis) -> None:
    """Two users, one of them with two sockets: the join answers both users, with their info as stored."""
    store = RedisPresence(redis_client, PREFIX, "node-a", script_calls())
    first = await store.join(CHANNEL, "s1", Member(user_id=1, user_info={"name": "Ann", "tags": ["a", "é"]}))
    second = await store.join(CHANNEL, "s2", Member(user_id="u2", user_info=None))
    again = await store.join(CHANNEL, "s3", Member(user_id=1, user_info={"name": "Ann"}))
    assert first.first_for_user and first.members == [Member(1, {"name": "Ann", "tags": ["a", "é"]})]
    assert second.first_for_user and sorted(second.members, key=str) == sorted(
        [Member(1, {"name": "Ann", "tags": ["a", "é"]}), Member("u2", None)], key=str
    )
    assert not again.first_for_user and sorted(again.members, key=str) == sorted(
        [Member(1, {"name": "Ann"}), Member("u2", None)], key=str
    )


async def test_a_stored_entry_that_is_not_a_member_is_skipped_and_the_others_are_kept(redis_server: RedisServer, script_calls: Callable[..., ScriptCalls], redis_client: aioredis.Redis) -> None:
    """Entries that are not JSON, or JSON but no member, leave the rest of the list intact."""
    store = RedisPresence(redis_client, PREFIX, "node-a", script_calls())
    await store.join(CHANNEL, "s1", Member(user_id=1, user_info={"name": "Ann"}))
    await redis_client.hset(f"{PREFIX}:ps:{CHANNEL}:info", mapping={"x": "[1]"})
    assert await store.members(CHANNEL) == [Member(1, {"name": "Ann"})]
    await redis_client.hset(f"{PREFIX}:ps:{CHANNEL}:info", mapping={"y": "{not json"})
    assert await store.members(CHANNEL) == [Member(1, {"name": "Ann"})]
    joined = await store.join(CHANNEL, "s2", Member(user_id=2, user_info=None))
    assert sorted(joined.members, key=str) == sorted([Member(1, {"name": "Ann"}), Member(2, None)], key=str)


class BusListener:
    """Reads the cluster bus (the pub/sub channel every node subscribes to) as a node would."""

    def __init__(self, client: aioredis.Redis) -> None:
        self._pubsub = client.pubsub()

    async def __aenter__(self) -> Self:
        await self._pubsub.subscribe(events_channel(PREFIX))
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._pubsub.aclose()

    async def heard(self, quiet: float = 0.5) -> list[Message]:
        """Every bus message until none has come for ``quiet`` seconds (a deadline moved by each arrival)."""
        loop = asyncio.get_running_loop()
        out: list[Message] = []
        deadline = loop.time() + quiet
        while (left := deadline - loop.time()) > 0:
            raw = await self._pubsub.get_message(ignore_subscribe_messages=True, timeout=left)
            if raw is None:
                continue  # nothing yet, or the subscription's confirmation
            message = decode(raw["data"])
            assert message is not None, raw
            out.append(message)
            deadline = loop.time() + quiet
        return out


async def test_the_scripts_announce_a_users_first_join_and_last_leave_on_the_bus(redis_server: RedisServer, script_calls: Callable[..., ScriptCalls], redis_client: aioredis.Redis) -> None:
    """presence:joining for a user's first socket and presence:leaving for the last, each once, with the stored member,
    as the bus message a node delivers (no position, the socket itself left out)."""
    store = RedisPresence(redis_client, PREFIX, "node-a", script_calls())
    async with BusListener(redis_client) as bus:
        await store.join(CHANNEL, "s1", Member(user_id=1, user_info={"name": "Ann"}))
        await store.join(CHANNEL, "s2", Member(user_id=1, user_info={"name": "Ann", "tab": 2}))
        await store.leave(CHANNEL, "s1")
        await store.leave(CHANNEL, "s2")
        await store.leave(CHANNEL, "s2")  # a second leave of the same socket: nothing left, nothing said
        heard = await bus.heard()
    assert [(m.event, m.data, m.except_sid, m.position, m.channel) for m in heard] == [
        ("presence:joining", {"user_id": 1, "user_info": {"name": "Ann"}}, "s1", None, CHANNEL),
        ("presence:leaving", {"user_id": 1, "user_info": {"name": "Ann", "tab": 2}}, "s2", None, CHANNEL),
    ]


async def test_a_socket_that_joins_again_as_another_user_leaves_as_the_first(redis_server: RedisServer, script_calls: Callable[..., ScriptCalls], redis_client: aioredis.Redis) -> None:
    """The same socket re-joined as someone else: the first user is announced leaving and is no member any more."""
    store = RedisPresence(redis_client, PREFIX, "node-a", script_calls())
    async with BusListener(redis_client) as bus:
        await store.join(CHANNEL, "s1", Member(user_id=1, user_info=None))
        joined = await store.join(CHANNEL, "s1", Member(user_id=2, user_info=None))
        heard = await bus.heard()
    assert joined.members == [Member(2, None)] == await store.members(CHANNEL)
    assert [(m.event, m.data["user_id"]) for m in heard] == [
        ("presence:joining", 1), ("presence:leaving", 1), ("presence:joining", 2)
    ]


async def test_a_leave_that_failed_announces_when_it_is_retried(redis_server: RedisServer, script_calls: Callable[..., ScriptCalls], redis_client: aioredis.Redis) -> None:
    """Issue 14's lost presence:leaving: a leave whose script call fails (Redis holds it past the timeout) is deferred,
    nothing is announced and the member stays; the retry (what Nodes.run does) removes the member and announces it
    once."""
    calls = script_calls(0.3)
    listener = aioredis.Redis.from_url(redis_server.url)
    try:
        store = RedisPresence(redis_client, PREFIX, "node-a", calls)
        await store.join(CHANNEL, "s1", Member(user_id=1, user_info=None))
        async with BusListener(listener) as bus:
            await redis_client.execute_command("CLIENT", "PAUSE", "5000", "WRITE")
            try:
                result = await store.leave(CHANNEL, "s1")
            finally:
                await redis_client.execute_command("CLIENT", "UNPAUSE")
            assert store.pending == {(CHANNEL, "s1")} and not result.last_for_user
            assert await store.members(CHANNEL) == [Member(1, None)]
            await store.leave_for(store.node_id, CHANNEL, "s1")
            heard = await bus.heard()
        assert [(m.event, m.data) for m in heard] == [("presence:leaving", {"user_id": 1, "user_info": None})]
        assert await store.members(CHANNEL) == []
    finally:
        await calls.aclose()
        await listener.aclose()
