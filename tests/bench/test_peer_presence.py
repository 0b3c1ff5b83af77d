"""The Node peer's presence channels (bench/peers/node-socketio/server.js, laravel-echo-server's algorithm): two peer
nodes sharing one real redis-server through the Redis adapter, as in the storm; real processes, no mocks."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
import redis.asyncio as aioredis

from tests.bench.helpers import REPO, clean_env, require_node_modules
from tests.support import Client, RedisServer

sys.path.insert(0, str(REPO / "bench"))
from benchkit.servers import BENCH_JWT_SECRET, NODE_PEER, PEER_DIR
from benchkit.storm_cluster import Node, start_node

CHANNEL = "presence-chat.lobby"
KEY = f"peer:{CHANNEL}:members"  # where the peer keeps the channel's members (a JSON list)


@pytest.fixture
def peers(redis_server: RedisServer, tmp_path: Path) -> Iterator[list[Node]]:
    """Two peer nodes (PEER_REDIS_ADAPTER=1) on the test's redis-server; stopped at teardown."""
    require_node_modules(PEER_DIR)
    nodes: list[Node] = []
    try:
        for i in range(2):
            nodes.append(start_node(NODE_PEER, i, python=sys.executable, node_bin="node", redis_url=redis_server.url,
                                    base_env=clean_env(), logs=tmp_path))
        yield nodes
    finally:
        for node in nodes:
            node.proc.stop()


def token(sub: str, **claims: Any) -> str:
    return jwt.encode({"sub": sub, "exp": int(time.time()) + 600, **claims}, BENCH_JWT_SECRET, algorithm="HS256")


async def connected(client: Client, sub: str | None = None, **claims: Any) -> Client:
    await client.connect(auth={"token": token(sub, **claims)} if sub is not None else None)
    return client


async def stored(redis_server: RedisServer) -> list[dict[str, Any]]:
    r = aioredis.Redis.from_url(redis_server.url)
    try:
        raw = await r.get(KEY)
    finally:
        await r.aclose()
    return list(json.loads(raw)) if raw else []


def users(members: list[dict[str, Any]]) -> list[Any]:
    return sorted((m["user_id"] for m in members), key=str)


async def test_peer_presence_joins_and_leaves_across_two_nodes(peers: list[Node], redis_server: RedisServer,
                                                               clients: Any) -> None:
    """Joiner gets presence:subscribed with every member ({user_id, user_info} as realtime_sio sends for a JWT); the
    others get presence:joining once per user and presence:leaving when the user's last socket is gone; members are
    kept in Redis, shared by both nodes; anonymous sockets and other presence channels are refused."""
    a = await connected(clients(peers[0].url), "1", name="Ann")
    b = await connected(clients(peers[1].url), "u2")
    ann = {"user_id": 1, "user_info": {"id": 1, "name": "Ann"}}
    u2 = {"user_id": "u2", "user_info": {"id": "u2"}}

    await a.joined(CHANNEL)
    assert a.named("presence:subscribed") == [(CHANNEL, [ann])]
    await b.joined(CHANNEL)  # on the other node
    ((channel, members),) = b.named("presence:subscribed")
    assert channel == CHANNEL and sorted(members, key=lambda m: str(m["user_id"])) == [ann, u2]
    assert await a.wait_for("presence:joining") == [(CHANNEL, u2)]
    await _until_stored(redis_server, [1, "u2"])

    # (b may also get Ann's presence:joining: published by node 0 before a's ack, it can reach node 1 after b entered
    # the room; laravel-echo-server has the same race. Only what comes from here on is checked.)
    before = len(b.events)
    # A second socket of user 1 (on node 1): listed, but no presence:joining (the user is already there) ...
    a2 = await connected(clients(peers[1].url), "1", name="Ann")
    await a2.joined(CHANNEL)
    ((_, members2),) = a2.named("presence:subscribed")
    assert users(members2) == [1, "u2"]  # one entry per user
    await _until_stored(redis_server, [1, 1, "u2"])  # one entry per socket
    # ... and none of presence:leaving when it goes while user 1's first socket stays
    await a2.close()
    await _until_stored(redis_server, [1, "u2"])  # node 1 handled the leave (a leaving would be sent with the write)
    assert await b.sio.call("ping", timeout=10) == "pong"  # a fence: what node 1 sent b before the pong has arrived
    assert [e for e, _ in b.events[before:] if e.startswith("presence:")] == [], b.events

    # The last socket of user 1 unsubscribes: the others are told it left
    await a.sio.call("unsubscribe", {"channel": CHANNEL}, timeout=10)
    assert await b.wait_for("presence:leaving") == [(CHANNEL, ann)]
    await _until_stored(redis_server, ["u2"])
    # A disconnect leaves too (user 1 rejoins on node 0 to watch u2 go)
    await a.joined(CHANNEL)
    await b.close()
    assert (await a.wait_for("presence:leaving"))[-1] == (CHANNEL, u2)
    await _until_stored(redis_server, [1])

    # Refused: an anonymous socket, and a presence channel outside presence-chat.{room}
    anon = await connected(clients(peers[0].url))
    assert (await anon.sio.call("subscribe", {"channel": CHANNEL}, timeout=10)) == {"ok": False}
    assert (await a.sio.call("subscribe", {"channel": "presence-other.x"}, timeout=10)) == {"ok": False}
    await anon.wait_for("subscription_error")
    assert anon.named("subscription_error") == [(CHANNEL, 403)]
    assert anon.named("presence:subscribed") == []


async def _until_stored(redis_server: RedisServer, expected: list[Any], timeout: float = 10.0) -> None:
    """Wait until the stored members' user ids are ``expected`` (the peer's writes are not awaited)."""
    deadline = time.monotonic() + timeout
    while True:
        got = users(await stored(redis_server))
        if got == expected:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"stored members {got}, expected {expected}")
        await asyncio.sleep(0.1)
