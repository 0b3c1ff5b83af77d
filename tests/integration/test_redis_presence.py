"""The cluster's presence store (cluster/presence.py) against a real redis-server: the member lists it reads back."""

from __future__ import annotations

import redis.asyncio as aioredis

from realtime_sio.cluster.presence import RedisPresence
from realtime_sio.members import Member

CHANNEL = "presence-chat.1"


async def test_a_join_answers_every_member_once_per_user(redis_client: aioredis.Redis) -> None:
    """Two users, one of them with two sockets: the join answers both users, with their info as stored."""
    store = RedisPresence(redis_client, "rtsio-test", "node-a")
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


async def test_a_stored_entry_that_is_not_a_member_is_skipped_and_the_others_are_kept(redis_client: aioredis.Redis) -> None:
    """Entries that are not JSON, or JSON but no member, leave the rest of the list intact."""
    store = RedisPresence(redis_client, "rtsio-test", "node-a")
    await store.join(CHANNEL, "s1", Member(user_id=1, user_info={"name": "Ann"}))
    await redis_client.hset(f"rtsio-test:ps:{CHANNEL}:info", mapping={"x": "[1]"})
    assert await store.members(CHANNEL) == [Member(1, {"name": "Ann"})]
    await redis_client.hset(f"rtsio-test:ps:{CHANNEL}:info", mapping={"y": "{not json"})
    assert await store.members(CHANNEL) == [Member(1, {"name": "Ann"})]
    joined = await store.join(CHANNEL, "s2", Member(user_id=2, user_info=None))
    assert sorted(joined.members, key=str) == sorted([Member(1, {"name": "Ann"}), Member(2, None)], key=str)
