"""The Pusher HTTP API: the official npm `pusher` SDK and hand-signed requests against a real server process."""

from __future__ import annotations

import asyncio
import json
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from realtime_sio.auth.pusher_signature import sign, signed_params
from tests.integration.test_redis_ingest import until_ready
from tests.support import (
    Client,
    RedisServer,
    ServerProcess,
    base_env,
    eventually,
    token,
)

JS = Path(__file__).resolve().parent.parent / "js"
APP = {"appId": "app-1", "key": "key-1", "secret": "secret-one-0123456789"}
OTHER = {"appId": "app-2", "key": "key-2", "secret": "secret-two-0123456789"}
EVENT = "App\\Events\\OrderShipped"
MAX_BODY = 4096

needs_node = pytest.mark.skipif(
    shutil.which("node") is None or not (JS / "node_modules" / "pusher").is_dir(),
    reason="needs node and `npm ci --prefix tests/js`",
)


@pytest.fixture(scope="module")
def server() -> Iterator[ServerProcess]:
    """One server with two Pusher apps and a small body limit, shared by this module (channels differ per test)."""
    apps = ",".join(f"{a['appId']}:{a['key']}:{a['secret']}" for a in (APP, OTHER))
    proc = ServerProcess(env=base_env(REALTIME_SIO_PUSHER_APPS=apps, REALTIME_SIO_API_MAX_BODY_BYTES=str(MAX_BODY)))
    proc.start()
    yield proc
    proc.kill()


async def sdk(server: ServerProcess, *ops: dict[str, Any], app: dict[str, str] = APP) -> list[dict[str, Any]]:
    """Run ops through tests/js/pusher_sdk.mjs and return its per-op results."""
    spec = {"app": app, "host": "127.0.0.1", "port": server.port, "ops": list(ops)}
    proc = await asyncio.create_subprocess_exec(
        "node", str(JS / "pusher_sdk.mjs"), json.dumps(spec), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0, err.decode()
    results: list[dict[str, Any]] = json.loads(out)
    for result in results:
        if isinstance(result.get("body"), str) and result["body"].startswith("{"):
            result["body"] = json.loads(result["body"])
    return results


async def signed(
    server: ServerProcess,
    method: str,
    path: str,
    body: bytes = b"",
    *,
    app: dict[str, str] = APP,
    skew: int = 0,
    params: dict[str, str] | None = None,
    tamper: Callable[[dict[str, str]], None] | None = None,
) -> tuple[int, Any]:
    """Send one request signed like a Pusher SDK would (optionally skewed in time or tampered with)."""
    query = signed_params(app["key"], app["secret"], method, path, body, int(time.time()) + skew, params)
    if tamper is not None:
        tamper(query)
    headers = {"Content-Type": "application/json"} if body else {}
    url = server.url + path
    async with aiohttp.ClientSession() as http, http.request(method, url, params=query, data=body or None, headers=headers) as resp:
        return resp.status, await resp.json(content_type=None)


async def connected(server: ServerProcess, clients: Callable[..., Client], user: int, *channels: str) -> Client:
    client = clients(server.url)
    await client.connect(auth={"token": token(user, name=f"user {user}")})
    for channel in channels:
        await client.joined(channel)
    return client


@needs_node
async def test_sdk_trigger_reaches_clients(server: ServerProcess, clients: Callable[..., Client]) -> None:
    """pusher.trigger to a public and a private channel: clients get the decoded object, the SDK gets {}."""
    alice = await connected(server, clients, 7, "news-1", "private-App.Models.User.7")
    (result,) = await sdk(server, {"op": "trigger", "channels": ["news-1", "private-App.Models.User.7"], "event": EVENT, "data": {"order": {"id": 1}}})
    assert result == {"ok": True, "status": 200, "body": {}}
    received = await alice.wait_for(EVENT, 2)
    assert sorted(args[:2] for args in received) == [("news-1", {"order": {"id": 1}}), ("private-App.Models.User.7", {"order": {"id": 1}})]


@needs_node
async def test_sdk_trigger_non_json_string_and_info(server: ServerProcess, clients: Callable[..., Client]) -> None:
    """A data string that is not JSON is delivered as the string; info=subscription_count is answered."""
    alice = await connected(server, clients, 7, "news-2")
    (result,) = await sdk(server, {"op": "trigger", "channels": "news-2", "event": "plain", "data": "hello world", "params": {"info": "subscription_count"}})
    assert result["body"] == {"channels": {"news-2": {"subscription_count": 1}}}
    (args,) = await alice.wait_for("plain")
    assert args[:2] == ("news-2", "hello world")


@needs_node
async def test_sdk_trigger_batch(server: ServerProcess, clients: Callable[..., Client]) -> None:
    """pusher.triggerBatch delivers every event in order, and answers info per event."""
    alice = await connected(server, clients, 7, "news-3", "presence-chat.3")
    batch = [
        {"channel": "news-3", "name": "first", "data": {"n": 1}},
        {"channel": "presence-chat.3", "name": "second", "data": {"n": 2}, "info": "user_count,subscription_count"},
    ]
    (result,) = await sdk(server, {"op": "triggerBatch", "batch": batch})
    assert result["body"] == {"batch": [{}, {"subscription_count": 1, "user_count": 1}]}
    assert (await alice.wait_for("first"))[0][:2] == ("news-3", {"n": 1})
    assert (await alice.wait_for("second"))[0][:2] == ("presence-chat.3", {"n": 2})


@needs_node
async def test_sdk_channel_queries(server: ServerProcess, clients: Callable[..., Client]) -> None:
    """Channel list, channel info and presence users as the SDK reads them (several tabs of one user count once)."""
    await connected(server, clients, 7, "presence-chat.4", "news-4")
    await connected(server, clients, 7, "presence-chat.4")
    await connected(server, clients, 8, "presence-chat.4")
    results = await sdk(
        server,
        {"op": "get", "path": "/channels", "params": {"filter_by_prefix": "presence-chat.4", "info": "user_count"}},
        {"op": "get", "path": "/channels", "params": {"filter_by_prefix": "news-4"}},
        {"op": "get", "path": "/channels/presence-chat.4", "params": {"info": "user_count,subscription_count"}},
        {"op": "get", "path": "/channels/news-4"},
        {"op": "get", "path": "/channels/nobody-here"},
        {"op": "get", "path": "/channels/presence-chat.4/users"},
        {"op": "get", "path": "/channels/news-4/users"},
        {"op": "get", "path": "/channels", "params": {"info": "user_count"}},
    )
    assert [r["status"] for r in results] == [200, 200, 200, 200, 200, 200, 400, 400]
    assert results[0]["body"] == {"channels": {"presence-chat.4": {"user_count": 2}}}
    assert results[1]["body"] == {"channels": {"news-4": {}}}
    assert results[2]["body"] == {"occupied": True, "subscription_count": 3, "user_count": 2}
    assert results[3]["body"] == {"occupied": True}
    assert results[4]["body"] == {"occupied": False}
    assert sorted(u["id"] for u in results[5]["body"]["users"]) == [7, 8]
    assert results[6]["body"]["error"]["code"] == "not_presence_channel"


@needs_node
async def test_sdk_channel_list_excludes_socket_rooms(server: ServerProcess, clients: Callable[..., Client]) -> None:
    """GET /channels lists channels only, never a socket's own sid room."""
    alice = await connected(server, clients, 9, "news-5")
    (result,) = await sdk(server, {"op": "get", "path": "/channels"})
    names = set(result["body"]["channels"])
    assert "news-5" in names and "private-user.9" in names and alice.sid not in names


@needs_node
async def test_sdk_wrong_secret_rejected(server: ServerProcess, clients: Callable[..., Client]) -> None:
    """A trigger signed with the wrong secret gets 401 and emits nothing."""
    alice = await connected(server, clients, 7, "news-6")
    wrong = {**APP, "secret": "not-the-secret-000000"}
    (bad,) = await sdk(server, {"op": "trigger", "channels": "news-6", "event": "bad", "data": {}}, app=wrong)
    assert bad["ok"] is False and bad["status"] == 401
    assert bad["body"]["error"]["code"] == "signature_invalid"
    (good,) = await sdk(server, {"op": "trigger", "channels": "news-6", "event": "good", "data": {}})
    assert good["ok"] is True
    await alice.wait_for("good")
    assert alice.named("bad") == []


@needs_node
async def test_sdk_refuses_socket_io_ids_itself(server: ServerProcess, clients: Callable[..., Client]) -> None:
    """The Pusher SDK validates socket_id as digits.digits, so toOthers with a Socket.IO id fails before sending."""
    alice = await connected(server, clients, 7)
    (result,) = await sdk(server, {"op": "trigger", "channels": "news-7", "event": "x", "data": {}, "params": {"socket_id": alice.sid}})
    assert result["ok"] is False and "Invalid socket id" in result["message"]


async def test_socket_id_excludes_that_socket(server: ServerProcess, clients: Callable[..., Client]) -> None:
    """socket_id (a Socket.IO id, sent without the SDK's format check) excludes exactly that socket."""
    tab1 = await connected(server, clients, 7, "news-8")
    tab2 = await connected(server, clients, 7, "news-8")
    body = json.dumps({"name": "e", "channel": "news-8", "data": '{"n":1}', "socket_id": tab1.sid}).encode()
    assert (await signed(server, "POST", "/apps/app-1/events", body))[0] == 200
    body = json.dumps({"name": "e", "channel": "news-8", "data": '{"n":2}'}).encode()
    assert (await signed(server, "POST", "/apps/app-1/events", body))[0] == 200
    assert [a[1] for a in await tab2.wait_for("e", 2)] == [{"n": 1}, {"n": 2}]
    assert [a[1] for a in await tab1.wait_for("e")] == [{"n": 2}]


def _drop_md5_and_resign_with(value: str) -> Callable[[dict[str, str]], None]:
    def tamper(query: dict[str, str]) -> None:
        query["body_md5"] = value
        query.pop("auth_signature")
        query["auth_signature"] = sign(APP["secret"], "POST", "/apps/app-1/events", query)

    return tamper


@pytest.mark.parametrize(
    ("case", "expected_status", "expected_code"),
    [
        ("tampered_signature", 401, "signature_invalid"),
        ("stale_timestamp", 401, "timestamp_expired"),
        ("future_timestamp", 401, "timestamp_expired"),
        ("wrong_body_md5", 401, "signature_invalid"),
        ("wrong_key", 401, "unauthorized"),
        ("other_apps_credentials", 401, "unauthorized"),
        ("unknown_app", 404, "unknown_app"),
        ("101_channels", 400, "body_invalid"),
        ("oversized_body", 413, "payload_too_large"),
        ("not_json", 400, "body_invalid"),
        ("missing_data", 400, "body_invalid"),
        ("batch_of_11", 400, "body_invalid"),
        ("invalid_channel", 400, "body_invalid"),
    ],
)
async def test_rejected_requests_emit_nothing(
    case: str, expected_status: int, expected_code: str, server: ServerProcess, clients: Callable[..., Client]
) -> None:
    """Each bad request gets its status and code and no client receives anything."""
    channel = f"news-bad-{case.replace('_', '-')}"
    alice = await connected(server, clients, 7, channel)
    event = {"name": "bad", "channel": channel, "data": "{}"}
    body = json.dumps(event).encode()
    path = "/apps/app-1/events"
    kwargs: dict[str, Any] = {}
    if case == "tampered_signature":
        kwargs["tamper"] = lambda q: q.update(auth_signature=q["auth_signature"][::-1])
    elif case == "stale_timestamp":
        kwargs["skew"] = -601
    elif case == "future_timestamp":
        kwargs["skew"] = 601
    elif case == "wrong_body_md5":
        kwargs["tamper"] = _drop_md5_and_resign_with("0" * 32)
    elif case == "wrong_key":
        kwargs["app"] = {**APP, "key": "key-x"}
    elif case == "other_apps_credentials":
        kwargs["app"] = OTHER
    elif case == "unknown_app":
        path = "/apps/no-such-app/events"
    elif case == "101_channels":
        body = json.dumps({"name": "bad", "channels": [channel] + [f"c{i}" for i in range(100)], "data": "{}"}).encode()
    elif case == "oversized_body":
        body = json.dumps({**event, "data": json.dumps({"x": "y" * MAX_BODY})}).encode()
    elif case == "not_json":
        body = b"{not json"
    elif case == "missing_data":
        body = json.dumps({"name": "bad", "channel": channel}).encode()
    elif case == "batch_of_11":
        path = "/apps/app-1/batch_events"
        body = json.dumps({"batch": [event] * 11}).encode()
    elif case == "invalid_channel":
        body = json.dumps({"name": "bad", "channels": [channel, "bad channel!"], "data": "{}"}).encode()
    status, answer = await signed(server, "POST", path, body, **kwargs)
    assert (status, answer["error"]["code"]) == (expected_status, expected_code), answer
    sentinel = json.dumps({"name": "sentinel", "channel": channel, "data": "{}"}).encode()
    assert (await signed(server, "POST", "/apps/app-1/events", sentinel))[0] == 200
    await alice.wait_for("sentinel")
    assert alice.named("bad") == []


async def test_batch_limit_is_inclusive(server: ServerProcess, clients: Callable[..., Client]) -> None:
    """A batch of exactly 10 events is accepted and delivered in order."""
    alice = await connected(server, clients, 7, "news-batch")
    batch = [{"name": "b", "channel": "news-batch", "data": json.dumps({"n": i})} for i in range(10)]
    status, answer = await signed(server, "POST", "/apps/app-1/batch_events", json.dumps({"batch": batch}).encode())
    assert (status, answer) == (200, {})
    assert [a[1]["n"] for a in await alice.wait_for("b", 10)] == list(range(10))


async def test_api_requests_metric(server: ServerProcess) -> None:
    """api_requests{route,status} counts Pusher routes by route name and status."""
    await signed(server, "GET", "/apps/app-1/channels")
    await signed(server, "GET", "/apps/nope/channels")
    async with aiohttp.ClientSession() as http, http.get(server.url + "/metrics") as resp:
        text = await resp.text()
    assert 'realtime_sio_api_requests_total{route="pusher_channels",status="200"}' in text
    assert 'realtime_sio_api_requests_total{route="pusher_channels",status="404"}' in text


async def test_large_body_read_whole(server_factory: Callable[..., ServerProcess], clients: Callable[..., Client]) -> None:
    """A body far larger than one socket read (300 kB) is read whole: signature verifies, data arrives intact."""
    apps = f"{APP['appId']}:{APP['key']}:{APP['secret']}"
    big_server = server_factory(REALTIME_SIO_PUSHER_APPS=apps, REALTIME_SIO_API_MAX_BODY_BYTES="1000000")
    alice = await connected(big_server, clients, 7, "news-big")
    payload = {"text": "z" * 300_000}
    body = json.dumps({"name": "big", "channel": "news-big", "data": json.dumps(payload)}).encode()
    status, answer = await signed(big_server, "POST", "/apps/app-1/events", body)
    assert (status, answer) == (200, {})
    (args,) = await alice.wait_for("big")
    assert args[1] == payload


async def test_503_when_delivery_cannot_be_guaranteed(
    redis_server: RedisServer, server_factory: Callable[..., ServerProcess]
) -> None:
    """With the cluster transport and Redis down, a trigger answers 503 unavailable (the publisher retries)."""
    apps = f"{APP['appId']}:{APP['key']}:{APP['secret']}"
    node = server_factory(REALTIME_SIO_PUSHER_APPS=apps, REALTIME_SIO_REDIS_URL=redis_server.url)
    await until_ready(node)
    body = json.dumps({"name": "e", "channel": "news-503", "data": "{}"}).encode()
    assert (await signed(node, "POST", "/apps/app-1/events", body))[0] == 200
    redis_server.stop()
    status, answer = await signed(node, "POST", "/apps/app-1/events", body)
    assert (status, answer["error"]["code"], answer["error"]["retryable"]) == (503, "unavailable", True)


@needs_node
async def test_sdk_terminate_user_connections(server: ServerProcess, clients: Callable[..., Client]) -> None:
    """pusher.terminateUserConnections (one node, no Redis): user 31's socket is disconnected by the server and the SDK
    gets {}; user 32's socket stays connected."""
    ada = await connected(server, clients, 31, "news-31")
    bob = await connected(server, clients, 32, "news-31")
    reasons: list[Any] = []
    ada.sio.on("disconnect", lambda reason=None: reasons.append(reason))
    (result,) = await sdk(server, {"op": "terminate", "userId": "31"})
    assert result == {"ok": True, "status": 200, "body": {}}
    await eventually(lambda: reasons == ["server disconnect"], what=f"user 31's socket to be disconnected (got {reasons})")
    status, _ = await signed(server, "POST", "/apps/app-1/events", json.dumps({"name": "after", "channel": "news-31", "data": "{}"}).encode())
    assert status == 200
    await bob.wait_for("after")
    assert bob.sio.connected and not ada.sio.connected
