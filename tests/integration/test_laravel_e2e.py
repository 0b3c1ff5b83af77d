"""Real Laravel Echo + socket.io-client 4 through every Laravel path at once: delegated auth, Redis, Pusher API."""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from redis.asyncio import Redis

from tests.fake_laravel import FakeLaravel
from tests.integration.test_redis_ingest import laravel_payload, until_ready
from tests.support import RedisServer, ServerProcess

JS = Path(__file__).resolve().parent.parent / "js"
APP = {"appId": "app-1", "key": "key-1", "secret": "secret-one-0123456789"}

pytestmark = pytest.mark.skipif(
    shutil.which("node") is None or not (JS / "node_modules" / "laravel-echo").is_dir(),
    reason="needs node and `npm ci --prefix tests/js`",
)


@pytest.fixture
def laravel() -> Iterator[FakeLaravel]:
    """A fake Laravel /broadcasting/auth for this test."""
    fake = FakeLaravel()
    fake.start()
    yield fake
    fake.stop()


async def test_echo_with_laravel_auth_redis_and_pusher(
    laravel: FakeLaravel, redis_server: RedisServer, server_factory: Callable[..., ServerProcess]
) -> None:
    """Echo joins private/presence via Laravel, gets Redis broadcasts (toOthers honoured) and Pusher SDK triggers."""
    server = server_factory(
        REALTIME_SIO_REDIS_URL=redis_server.url,
        REALTIME_SIO_LARAVEL_AUTH_URL=laravel.url,
        REALTIME_SIO_PUSHER_APPS=f"{APP['appId']}:{APP['key']}:{APP['secret']}",
    )
    await until_ready(server)
    spec = {"url": server.url, "pusher": {**APP, "host": "127.0.0.1", "port": server.port}}
    proc = await asyncio.create_subprocess_exec(
        "node", str(JS / "echo_laravel.mjs"), json.dumps(spec), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    try:
        assert proc.stdout is not None
        ready = json.loads(await asyncio.wait_for(proc.stdout.readline(), 30))
        assert ready.get("ready") is True, ready
        a_sid = ready["socketIds"]["a"]
        redis = Redis.from_url(redis_server.url)
        try:
            channel = "laravel_database_private-orders.ok"
            event = "App\\Events\\OrderShipped"
            await redis.publish(channel, laravel_payload(event, {"order": {"id": 1}}, a_sid))  # toOthers from A
            await redis.publish(channel, laravel_payload(event, {"order": {"id": 2}}, None))
        finally:
            await redis.aclose()
        result = json.loads(await asyncio.wait_for(proc.stdout.readline(), 30))
    finally:
        if proc.returncode is None:
            await asyncio.wait_for(proc.wait(), 30)
    assert result["ok"] is True, result
    seen = result["seen"]
    assert seen["a"] == [2, 3] and seen["b"] == [1, 2, 3]
    assert seen["hereA"] == [{"id": 7, "name": "User 7"}]
    assert seen["joiningA"] == {"id": 8, "name": "User 8"}
    assert seen["errors"] == []
    assert {r.channel for r in laravel.seen} == {"private-orders.ok", "presence-room.obj"}
