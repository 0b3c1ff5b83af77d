"""The sidecar route POST /api/v1/events against a real server: auth, validation, limits, toOthers."""

from __future__ import annotations

import asyncio
import json
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


async def chunked_post(url: str, body: bytes) -> tuple[int, Any]:
    """The same POST with a chunked body: aiohttp serves it (the connection's router serves only plain ones)."""

    async def chunks() -> Any:
        yield body

    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {API_KEY}"}) as http:
        response = await http.post(f"{url}/api/v1/events", data=chunks(), headers={"Content-Type": "application/json"})
        return response.status, await response.json()


@pytest.mark.parametrize(
    "body",
    [
        b'{"channel":"both-paths","event":"E","data":1}',
        b"{nope",
        b'{"channel":"bad name!","event":"E"}',
        b'{"channel":"both-paths","event":"connect","data":1}',
    ],
)
async def test_the_router_and_aiohttp_answer_alike(server: ServerProcess, body: bytes) -> None:
    """A plain request (served by the connection's router) and the same request chunked (served by aiohttp) get the
    same status and the same JSON, positions apart."""
    plain = await post(server.url, raw=body)
    chunked = await chunked_post(server.url, body)
    assert plain[0] == chunked[0]
    if plain[0] == 200:
        assert plain[1]["ok"] is chunked[1]["ok"] is True and plain[1]["positions"].keys() == chunked[1]["positions"].keys()
    else:
        assert plain[1] == chunked[1]


async def test_a_kept_alive_connection_answers_pipelined_posts_in_order(server: ServerProcess, clients: Any) -> None:
    """Three POSTs written at once on one connection (HTTP/1.1 pipelining): three answers in order, the events in that
    order, and the connection stays open for a fourth."""
    listener: Client = clients(server.url)
    await listener.connect()
    await listener.joined("pipelined")

    def request(n: int) -> bytes:
        body = b'{"channel":"pipelined","event":"P","data":%d}' % n
        head = f"POST /api/v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {API_KEY}\r\nContent-Length: {len(body)}\r\n\r\n"
        return head.encode() + body

    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    try:
        writer.write(request(1) + request(2) + request(3))
        for _ in range(3):
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
            assert head.startswith(b"HTTP/1.1 200 ") and b"connection: close" not in head.lower()
            length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
            assert json.loads(await reader.readexactly(length))["ok"] is True
        writer.write(request(4))
        assert (await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)).startswith(b"HTTP/1.1 200 ")
        got = await listener.wait_for("P", 4)
        assert [args[1] for args in got] == [1, 2, 3, 4]
    finally:
        writer.close()


async def test_thousands_of_pipelined_posts_are_answered_in_order(server: ServerProcess) -> None:
    """2,000 POSTs in one write (hostile pipelining; an in-memory node answers each inside the callback that read it):
    2,000 answers in order on the same connection, no error (answering must not recurse into the next request)."""
    body = b'{"channel":"pipelined-many","event":"P","data":1}'
    head = f"POST /api/v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {API_KEY}\r\nContent-Length: {len(body)}\r\n\r\n"
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    try:
        writer.write((head.encode() + body) * 2000)
        positions = []
        for _ in range(2000):
            answer = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
            assert answer.startswith(b"HTTP/1.1 200 "), answer
            length = int(answer.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
            positions.append(json.loads(await reader.readexactly(length))["positions"]["pipelined-many"])
        assert positions == sorted(positions, key=lambda p: tuple(int(x) for x in p.split("@")[0].split("-")))
    finally:
        writer.close()
