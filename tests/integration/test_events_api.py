"""The sidecar route POST /api/v1/events against a real server: auth, validation, limits, toOthers."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from tests.support import API_KEY, Client, ServerProcess, token


async def post(url: str, body: Any = None, *, raw: bytes | None = None, key: str | None = API_KEY) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {key}"} if key is not None else {}
    async with aiohttp.ClientSession(headers=headers) as http:
        kwargs: dict[str, Any] = {"data": raw, "headers": {"Content-Type": "application/json"}} if raw is not None else {"json": body}
        response = await http.post(f"{url}/api/v1/events", **kwargs)
        return response.status, await response.json()


async def test_emit_to_channels_and_except_socket(server: ServerProcess, clients: Any) -> None:
    """channels[] reaches every listed room once; socket_id (Laravel's toOthers) is excluded."""
    a: Client = clients(server.url)
    b: Client = clients(server.url)
    for c in (a, b):
        await c.connect()
        await c.joined("room-a")
        await c.joined("room-b")
    status, body = await post(server.url, {"channels": ["room-a", "room-b"], "event": "Ev", "data": {"k": 1}, "socket_id": a.sid})
    assert status == 200 and body["ok"] is True and body["channels"] == 2
    got = await b.wait_for("Ev", 2)
    assert sorted(g[0] for g in got) == ["room-a", "room-b"]
    await a.sio.call("ping")
    assert a.named("Ev") == []


@pytest.mark.parametrize("key", [None, "wrong-key", ""])
async def test_rejects_missing_or_wrong_key(server: ServerProcess, key: str | None) -> None:
    """No key or a wrong key is 401 with a JSON reason, and nothing is emitted."""
    status, body = await post(server.url, {"channel": "x", "event": "E", "data": 1}, key=key)
    assert status == 401 and body["error"]["code"] == "unauthorized"


async def test_key_not_configured(server_factory: Any) -> None:
    """Without REALTIME_SIO_API_KEY the route refuses everything and says why."""
    srv = server_factory(REALTIME_SIO_API_KEY="")
    status, body = await post(srv.url, {"channel": "x", "event": "E", "data": 1}, key="")
    assert status == 401 and "not configured" in body["error"]["detail"]


BAD_BODIES: list[tuple[str, Any]] = [
    ("not json", b"{nope"),
    ("array", [1, 2]),
    ("no channel", {"event": "E", "data": 1}),
    ("both channel and channels", {"channel": "a", "channels": ["b"], "event": "E"}),
    ("empty channels", {"channels": [], "event": "E"}),
    ("101 channels", {"channels": [f"c{i}" for i in range(101)], "event": "E"}),
    ("bad channel name", {"channel": "bad name!", "event": "E"}),
    ("no event", {"channel": "a", "data": 1}),
    ("numeric event", {"channel": "a", "event": 3}),
    ("socket_id not string", {"channel": "a", "event": "E", "socket_id": 12}),
]


@pytest.mark.parametrize(("label", "body"), BAD_BODIES, ids=[b[0] for b in BAD_BODIES])
async def test_rejects_bad_bodies(server: ServerProcess, clients: Any, label: str, body: Any) -> None:
    """Each malformed body is 400 with a JSON reason and emits nothing."""
    watcher: Client = clients(server.url)
    await watcher.connect()
    await watcher.joined("a")
    raw = body if isinstance(body, bytes) else None
    status, reply = await post(server.url, None if raw else body, raw=raw)
    assert status == 400 and reply["error"]["code"] == "body_invalid" and reply["error"]["detail"]
    await watcher.sio.call("ping")
    assert [e for e, _ in watcher.events if e == "E"] == []


async def test_rejects_oversized_body(server_factory: Any) -> None:
    """A body over REALTIME_SIO_API_MAX_BODY_BYTES is 413."""
    srv = server_factory(REALTIME_SIO_API_MAX_BODY_BYTES="2048")
    status, body = await post(srv.url, {"channel": "a", "event": "E", "data": "x" * 4096})
    assert status == 413 and body["error"]["code"] == "payload_too_large"
    status, _ = await post(srv.url, {"channel": "a", "event": "E", "data": "x" * 100})
    assert status == 200


async def test_private_channel_emit_reaches_only_its_user(server: ServerProcess, clients: Any) -> None:
    """An emit to private-user.5 reaches user 5's auto-joined socket and not user 6's."""
    five: Client = clients(server.url)
    await five.connect(auth={"token": token(5)})
    six: Client = clients(server.url)
    await six.connect(auth={"token": token(6)})
    status, _ = await post(server.url, {"channel": "private-user.5", "event": "Note", "data": {"n": 1}})
    assert status == 200
    (note,) = await five.wait_for("Note")
    assert note[:2] == ("private-user.5", {"n": 1})
    await six.sio.call("ping")
    assert six.named("Note") == []
