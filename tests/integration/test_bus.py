"""The cluster bus (cluster/bus.py) against a real redis-server: what a node delivers, which positions it reports and
what history it replays."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError

from realtime_sio import metrics as metrics_module
from realtime_sio.cluster.bus import RedisBus, decode
from realtime_sio.cluster.script_calls import ScriptCalls
from realtime_sio.probes import Health
from realtime_sio.publish.broadcaster import Message
from realtime_sio.publish.history import Cursor, parse_position
from tests.support import RedisServer, eventually

PREFIX = "rtsio-test"


def make_bus(
    url: str,
    calls: ScriptCalls,
    client: aioredis.Redis, deliver: Callable[[Message], int], channels: list[str], serves: Callable[[str], bool] | None = None
) -> RedisBus:
    return RedisBus(
        client,
        PREFIX,
        history_size=100,
        history_seconds=300,
        top_seconds=3600,
        deliver=lambda messages: sum(deliver(message) for message in messages),
        local_channels=lambda: channels,
        health=Health(),
        metrics=metrics_module.create(process=False),
        serves=serves or (lambda channel: True),
        url=url,
        calls=calls,
    )


async def next_bus_message(pubsub: Any) -> Message:
    """The next message on the cluster's events channel, decoded as the subscriber loop decodes it."""
    deadline = time.monotonic() + 5.0
    raw = None
    while raw is None and time.monotonic() < deadline:  # a skipped subscribe confirmation also answers None
        raw = await pubsub.get_message(ignore_subscribe_messages=True, timeout=deadline - time.monotonic())
    assert raw is not None, "the publish script did not PUBLISH"
    message = decode(raw["data"])
    assert message is not None
    return message


async def test_event_in_flight_during_a_position_read_is_still_delivered(redis_server: RedisServer, script_calls: Callable[..., ScriptCalls], redis_client: aioredis.Redis) -> None:
    """A position read that already counts an event whose pub/sub message this node has not handled yet (a subscribe
    racing a publish) must not make the node drop that event as already delivered."""
    delivered: list[Message] = []
    subscriber = make_bus(redis_server.url, script_calls(), redis_client, lambda m: delivered.append(m) or 1, ["private-user.9"])
    subscriber.subscribed.set()  # as run() does once subscribed
    publisher = make_bus(redis_server.url, script_calls(), redis_client, lambda m: 0, [])
    pubsub = redis_client.pubsub()
    await pubsub.subscribe(f"{PREFIX}:events")
    try:
        sent = await publisher.send(Message("private-user.9", "Tick", {"n": 1}), record=True)
        assert isinstance(sent, str)
        # The subscribe's position read reaches Redis after the publish, before the node handled its pub/sub message.
        assert await subscriber.position("private-user.9") == sent
        in_flight = await next_bus_message(pubsub)
        subscriber._handle(in_flight)  # what run() does with the pub/sub message once it gets to it
        assert [m.position for m in delivered] == [sent]
        subscriber._handle(in_flight)  # the same message again (catch-up overlapping pub/sub): dropped
        assert len(delivered) == 1
        assert await subscriber.position("private-user.9") == sent
    finally:
        await pubsub.aclose()



async def test_events_of_channels_this_node_does_not_serve_are_skipped_and_forgotten(redis_server: RedisServer, script_calls: Callable[..., ScriptCalls], redis_client: aioredis.Redis) -> None:
    """The subscriber delivers only the channels it serves, in order; a skipped channel's position, when someone joins
    it later, is below every event of it this node has not handled and above those of earlier milliseconds (never a
    stale cached one), and it is told without asking Redis."""
    served = {"b"}
    delivered: list[Message] = []
    subscriber = make_bus(redis_server.url, script_calls(), redis_client, lambda m: delivered.append(m) or 1, sorted(served), serves=served.__contains__)
    publisher = make_bus(redis_server.url, script_calls(), redis_client, lambda m: 0, [])
    task = asyncio.create_task(subscriber.run())
    try:
        await asyncio.wait_for(subscriber.subscribed.wait(), 5)
        sent = [await publisher.send(Message(channel, "E", n), record=True) for n, channel in enumerate("abab")]
        await eventually(lambda: len(delivered) == 2, what="the served channel's events")
        assert [(m.channel, m.data) for m in delivered] == [("b", 1), ("b", 3)]
        # a "b" event in a later millisecond than the last "a" one: what this node handled last (its watermark)
        last_a = position_of(sent[2])
        later: str | None = None
        for n in range(10_000):
            later = await publisher.send(Message("b", "E", 10 + n), record=True)
            if position_of(later)[0] > last_a[0]:
                break
        assert later is not None and position_of(later)[0] > last_a[0]
        await eventually(lambda: delivered[-1].position == later, what="the later event handled")
        calls = await evalsha_calls(redis_client)
        quiet = await subscriber.position("a")
        assert quiet is not None and last_a <= position_of(quiet) < position_of(later)
        assert await evalsha_calls(redis_client) == calls, "the position was read from Redis"
        served.add("a")  # a socket joins "a" here: its events are delivered from now on
        latest = await publisher.send(Message("a", "E", 4), record=True)
        await eventually(lambda: delivered[-1].position == latest, what="the newly served channel's event")
        assert position_of(latest) > position_of(quiet)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def position_of(text: str | None | bool) -> tuple[int, int]:
    assert isinstance(text, str)
    position = parse_position(text)
    assert position is not None
    return position


async def test_a_quiet_cluster_still_tells_positions_without_redis(redis_server: RedisServer, script_calls: Callable[..., ScriptCalls], redis_client: aioredis.Redis) -> None:
    """With nothing published, the node's own tick gives it a watermark: a new channel's position comes without a
    Redis read, in the current epoch, and events published after it are above it. While the subscriber is down
    there is none (Redis is read again)."""
    subscriber = make_bus(redis_server.url, script_calls(), redis_client, lambda m: 0, [])
    task = asyncio.create_task(subscriber.run())
    try:
        await asyncio.wait_for(subscriber.subscribed.wait(), 5)
        await eventually(lambda: subscriber.quiet_position() is not None, what="the first tick handled")
        calls = await evalsha_calls(redis_client)
        quiet = await subscriber.position("never-used")
        assert await evalsha_calls(redis_client) == calls, "the position was read from Redis"
        assert quiet is not None and quiet.endswith("@" + (await redis_client.get(f"{PREFIX}:epoch")).decode())
        after = await subscriber.send(Message("never-used", "E", 1), record=True)
        assert position_of(after) > position_of(quiet)
        subscriber._mark(False)  # what a subscriber failure does
        assert subscriber.quiet_position() is None
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def evalsha_calls(client: aioredis.Redis) -> int:
    stats = await client.info("commandstats")
    return int(stats.get("cmdstat_evalsha", {}).get("calls", 0))


async def test_positions_asked_together_are_read_in_one_script_call(
    redis_server: RedisServer, script_calls: Callable[..., ScriptCalls], redis_client: aioredis.Redis
) -> None:
    """Joins that ask for positions in the same loop iteration (a reconnect storm) cost Redis one script call: each
    gets its channel's position (the top after an event, "now - 1 ms" before any), the same channel the same one."""
    subscriber = make_bus(redis_server.url, script_calls(), redis_client, lambda m: 1, [])
    publisher = make_bus(redis_server.url, script_calls(), redis_client, lambda m: 0, [])
    sent = await publisher.send(Message("with-event", "E", 1), record=True)
    assert isinstance(sent, str)
    await subscriber.position("warm-up")  # loads the script
    before = await evalsha_calls(redis_client)
    channels = ["with-event", *(f"quiet.{n}" for n in range(40)), "with-event"]
    positions = await asyncio.gather(*(subscriber.position(channel) for channel in channels))
    assert await evalsha_calls(redis_client) - before == 1
    assert positions[0] == positions[-1] == sent
    epoch = sent.split("@")[1]
    assert len(set(positions[1:-1])) == 1  # read in one script call: one "now - 1 ms" for all quiet channels
    quiet = positions[1]
    # (not compared with ``sent``: read within 1 ms of the publish, "now - 1 ms" names the same stream id)
    assert quiet is not None and quiet.endswith("@" + epoch)


async def test_a_failed_position_read_reaches_every_waiter(redis_server: RedisServer, script_calls: Callable[..., ScriptCalls], redis_client: aioredis.Redis) -> None:
    """When Redis is away, every join waiting on the shared read gets the error (Recovery then retries or defers)."""
    subscriber = make_bus(redis_server.url, script_calls(), redis_client, lambda m: 1, [])
    await subscriber.position("warm-up")
    redis_server.stop()
    results = await asyncio.gather(*(subscriber.position(f"c.{n}") for n in range(5)), return_exceptions=True)
    assert all(isinstance(r, RedisConnectionError) for r in results), results


async def command_calls(client: aioredis.Redis, command: str) -> int:
    stats = await client.info("commandstats")
    return int(stats.get(f"cmdstat_{command}", {}).get("calls", 0))


async def test_history_reads_asked_together_share_one_pipeline(redis_server: RedisServer, script_calls: Callable[..., ScriptCalls], redis_client: aioredis.Redis) -> None:
    """Recoveries that read history in the same loop iteration (a reconnect storm) read the epoch once between them,
    so they hold one pooled connection, and each still gets exactly its own channel's events after its cursor."""
    bus = make_bus(redis_server.url, script_calls(), redis_client, lambda m: 0, [])
    sent = {n: [await bus.send(Message(f"user.{n}", "E", (n, k)), record=True) for k in range(n % 3 + 1)] for n in range(30)}
    cursor = Cursor((int(time.time() * 1000) - 60_000, 0))
    before = await command_calls(redis_client, "get")
    replays = await asyncio.gather(*(bus.since(f"user.{n}", cursor) for n in range(30)))
    assert await command_calls(redis_client, "get") - before == 1 + 30  # the epoch once, then each channel's top
    for n, replay in enumerate(replays):
        assert isinstance(replay, list)
        assert [e.position for e in replay] == sent[n]
        assert [e.data for e in replay] == [[n, k] for k in range(n % 3 + 1)]


async def test_a_failed_history_read_reaches_every_waiter(redis_server: RedisServer, script_calls: Callable[..., ScriptCalls], redis_client: aioredis.Redis) -> None:
    """When Redis is away, every recovery waiting on the shared history read gets the error (Recovery then retries)."""
    bus = make_bus(redis_server.url, script_calls(), redis_client, lambda m: 0, [])
    await bus.since("warm-up", Cursor((0, 0)))
    redis_server.stop()
    results = await asyncio.gather(*(bus.since(f"c.{n}", Cursor((0, 0))) for n in range(5)), return_exceptions=True)
    assert all(isinstance(r, RedisConnectionError) for r in results), results
