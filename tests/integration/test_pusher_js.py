"""Real pusher-js 8 and Laravel Echo (broadcasters reverb, pusher and socket.io) against realtime_sio in Node."""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fake_laravel import FakeLaravel
from tests.pusher_client import APP_ID, APP_KEY, APP_SECRET, PUSHER_APPS
from tests.support import ServerProcess

JS = Path(__file__).resolve().parent.parent / "js"

pytestmark = pytest.mark.skipif(
    shutil.which("node") is None or not (JS / "node_modules" / "pusher-js").is_dir(),
    reason="needs node and `npm ci --prefix tests/js`",
)


@pytest.fixture
def laravel() -> Iterator[FakeLaravel]:
    """A fake Laravel /broadcasting/auth that signs like PusherBroadcaster."""
    fake = FakeLaravel(signing=(APP_KEY, APP_SECRET))
    fake.start()
    yield fake
    fake.stop()


async def run_node(script: str, spec: dict[str, Any], timeout: float = 60) -> dict[str, Any]:
    proc = await asyncio.create_subprocess_exec(
        "node", str(JS / script), json.dumps(spec), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    lines = out.decode().strip().splitlines()
    assert lines, f"no output; stderr: {err.decode()[-2000:]}"
    result = json.loads(lines[-1])
    assert isinstance(result, dict)
    return result


async def test_echo_reverb_pusher_and_socketio_together(laravel: FakeLaravel, server_factory: Callable[..., ServerProcess]) -> None:
    """One presence set, whispers across protocols, SDK events to all three once each, toOthers by Pusher socket id."""
    server = server_factory(REALTIME_SIO_PUSHER_APPS=PUSHER_APPS, REALTIME_SIO_LARAVEL_AUTH_URL=laravel.url)
    spec = {
        "url": server.url,
        "host": "127.0.0.1",
        "port": server.port,
        "authEndpoint": laravel.url,
        "app": {"appId": APP_ID, "key": APP_KEY, "secret": APP_SECRET},
    }
    result = await run_node("pusher_echo.mjs", spec)
    assert result["ok"] is True, result
    seen = result["seen"]
    assert seen["errors"] == []
    assert seen["here"]["a"] == [{"id": 7, "name": "User 7"}]
    assert sorted(m["id"] for m in seen["here"]["c"]) == [7, 8, 9]  # the socket.io tab sees the Pusher members
    assert seen["joining"]["a"] == [8, 9] and seen["leaving"]["a"] == [8]
    assert seen["whispers"] == {"a": ["c"], "c": ["a"]}
    assert seen["events"]["a"] == [["orders", 1], ["orders", 3]]  # the private event was sent toOthers from A
    for name in ("b", "c"):
        assert seen["events"][name] == [["orders", 1], ["private", 2], ["orders", 3]]
    assert {r.channel for r in laravel.seen} == {"private-orders.ok", "presence-room.1"}
