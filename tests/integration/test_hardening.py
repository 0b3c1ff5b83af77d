"""Hostile input against a real server (issue 11): clear documented errors, no traceback, no leak, quiet logs."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import aiohttp
import pytest
from redis.asyncio import Redis

from realtime_sio import errors
from realtime_sio.auth.pusher_signature import signed_params
from tests.integration.test_redis_ingest import (
    laravel_payload,
    metrics_text,
    sample,
    until_ready,
)
from tests.support import (
    API_KEY,
    JWT_SECRET,
    ROOT,
    RedisServer,
    ServerProcess,
    base_env,
    eventually,
    token,
)

DASHBOARD_TOKEN = "dashboard-token-0123456789"
APP = {"id": "app-1", "key": "key-1", "secret": "secret-one-0123456789"}
RESERVED = ["connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener"]


@pytest.fixture(scope="module")
def server() -> Iterator[ServerProcess]:
    """One server with the dashboard and a Pusher app, shared by this module."""
    proc = ServerProcess(
        env=base_env(
            REALTIME_SIO_DASHBOARD_TOKEN=DASHBOARD_TOKEN,
            REALTIME_SIO_PUSHER_APPS=f"{APP['id']}:{APP['key']}:{APP['secret']}",
        )
    )
    proc.start()
    yield proc
    proc.kill()


def log_records(server: ServerProcess) -> list[dict[str, Any]]:
    """Every line the server wrote, parsed; fails on a line that is not one JSON object."""
    records = []
    for line in server.logs().splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            raise AssertionError(f"not a JSON log line: {line[:300]!r}") from None
        assert isinstance(record, dict), line
        records.append(record)
    return records


def assert_clean_log(server: ServerProcess) -> None:
    """JSON lines only, no traceback, no error-level line."""
    text = server.logs()
    assert "Traceback" not in text, text[-3000:]
    bad = [r for r in log_records(server) if r.get("level") in ("error", "critical") or "exception" in r]
    assert not bad, bad


async def raw_request(server: ServerProcess, head: bytes, body: bytes = b"") -> tuple[int, dict[str, str], bytes]:
    """Send bytes on a fresh TCP connection; the status, headers (lowercased names) and body of the answer."""
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    try:
        writer.write(head + body)
        await writer.drain()
        data = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        lines = data.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ")[1])
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
        length = int(headers.get("content-length", "0"))
        payload = await asyncio.wait_for(reader.readexactly(length), 10) if length else b""
        return status, headers, payload
    finally:
        writer.close()


# -- item 1: unknown client events ------------------------------------------------------------------------------
async def test_unknown_events_are_one_info_line_each_without_traceback(server: ServerProcess, clients: Any) -> None:
    """A burst of unknown events is dropped and counted and logs client_input_dropped lines, never a traceback."""
    c = clients(server.url)
    await c.connect()
    for i in range(50):
        await c.sio.emit(f"evt{i}", {"x": 1})
    assert await c.sio.call("ping") == "pong"
    text = await metrics_text(server)
    assert sample(text, "realtime_sio_bad_input_total", reason="unknown_event") >= 50
    await eventually(lambda: '"event_name": "evt0"' in server.logs(), what="the first unknown event logged")
    assert_clean_log(server)


# -- item 2: sid rooms ------------------------------------------------------------------------------------------
async def test_another_sockets_sid_is_not_a_channel(server: ServerProcess, clients: Any) -> None:
    """Subscribing to a live socket's sid is refused with channel_invalid; the victim's private emits stay private."""
    victim, attacker = clients(server.url), clients(server.url)
    await victim.connect()
    await attacker.connect()
    ack = await attacker.sio.call("subscribe", {"channel": victim.sid}, timeout=10)
    assert ack["ok"] is False and ack["code"] == "channel_invalid" and ack["status"] == 400
    (refusal,) = await attacker.wait_for("subscription_error")
    assert refusal[0] == victim.sid and refusal[2]["code"] == "channel_invalid"
    await victim.subscribe("private-user.99")  # refused: anonymous; the error goes to the victim's sid room
    await victim.wait_for("subscription_error")
    assert await attacker.sio.call("ping") == "pong"
    assert len(attacker.named("subscription_error")) == 1
    assert_clean_log(server)


# -- item 3: unauthenticated input that used to answer 500 ------------------------------------------------------
@pytest.mark.parametrize(
    ("path", "header"),
    [
        ("/dashboard/snapshot.json", b"Cookie: realtime_sio_dashboard=\xc2\xb21.abc"),  # "²1": str.isdigit() is True
        ("/dashboard/snapshot.json", b"Authorization: Basic \xc3\xa9\xc3\xa9"),  # "Basic éé"
        ("/dashboard/snapshot.json", b"Authorization: Basic \xff\xfe"),
    ],
)
async def test_hostile_dashboard_credentials_get_401_json(server: ServerProcess, path: str, header: bytes) -> None:
    """A malformed dashboard cookie or Basic header is a 401 with the catalogue's dashboard_unauthorized body."""
    status, _, body = await raw_request(server, b"GET " + path.encode() + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" + header + b"\r\n\r\n")
    assert status == 401
    assert json.loads(body)["error"]["code"] == errors.DASHBOARD_UNAUTHORIZED.code
    assert_clean_log(server)


async def test_hostile_dashboard_cookie_on_the_page_gets_the_login_form(server: ServerProcess) -> None:
    """The /dashboard page with a cookie of Unicode digits answers the login form (401 "not valid"), not a 500."""
    status, _, body = await raw_request(
        server, b"GET /dashboard HTTP/1.1\r\nHost: x\r\nConnection: close\r\nCookie: realtime_sio_dashboard=\xc2\xb21.abc\r\n\r\n"
    )
    # aiohttp < 3.12 drops a cookie it cannot parse before we see it: the credential is then absent, and the page
    # offers the form with 200; newer aiohttp hands it over and the guard refuses it with 401. Never a 500.
    assert status in (200, 401) and b"<form" in body
    assert_clean_log(server)


@pytest.mark.parametrize(
    ("content_type", "body", "status"),
    [
        (b"application/x-www-form-urlencoded", b"token=\xff\xfe", 400),  # not UTF-8
        (b"multipart/form-data; boundary=zz", b"token=%FF", 400),  # not a multipart body
        (b"application/x-www-form-urlencoded; charset=bogus", b"token=abc", 401),  # unknown charset: still UTF-8
        (b"application/x-www-form-urlencoded", b"token=%FF", 401),
    ],
)
async def test_hostile_login_forms_get_the_login_page(server: ServerProcess, content_type: bytes, body: bytes, status: int) -> None:
    """A login body that is not UTF-8, not URL-encoded or names an unknown charset is answered 400/401, never 500."""
    head = (
        b"POST /dashboard/login HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: " + content_type
        + b"\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n"
    )
    answer, _, page = await raw_request(server, head, body)
    assert answer == status and b"<form" in page
    assert_clean_log(server)


@pytest.mark.parametrize("credential", [b"Bearer \xff\xfe\xfd", b"Bearer \xc3\xa9t\xc3\xa9", b"Basic \xc3\xa9\xc3\xa9"])
async def test_non_utf8_bearer_on_the_events_api_gets_401(server: ServerProcess, credential: bytes) -> None:
    """An Authorization header that is not UTF-8 (or not ASCII) on /api/v1/events is a 401 unauthorized."""
    body = b'{"channel":"news","event":"E","data":1}'
    head = (
        b"POST /api/v1/events HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\n"
        b"Authorization: " + credential + b"\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n"
    )
    status, _, answer = await raw_request(server, head, body)
    assert status == 401
    assert json.loads(answer)["error"]["code"] == errors.API_UNAUTHORIZED.code
    assert_clean_log(server)


@pytest.mark.parametrize("timestamp", ["²", "١٢٣", "12a", "", "-5"])
async def test_unicode_digit_auth_timestamp_gets_401(server: ServerProcess, timestamp: str) -> None:
    """Pusher auth_timestamp of Unicode digits (or no digits) is a 401 signature_invalid, not a 500."""
    query = signed_params(APP["key"], APP["secret"], "GET", f"/apps/{APP['id']}/channels", b"", int(time.time()))
    query["auth_timestamp"] = timestamp
    async with aiohttp.ClientSession() as http, http.get(f"{server.url}/apps/{APP['id']}/channels", params=query) as resp:
        assert resp.status == 401
        assert (await resp.json())["error"]["code"] == errors.API_SIGNATURE_INVALID.code
    assert_clean_log(server)


async def test_undecodable_pusher_query_values_get_401(server: ServerProcess) -> None:
    """auth_key and auth_signature holding bytes that are not UTF-8 are a clean 401."""
    path = f"/apps/{APP['id']}/channels?auth_key=%FF%FE&auth_timestamp=1&auth_version=1.0&auth_signature=%FF"
    status, _, body = await raw_request(server, b"GET " + path.encode() + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert status == 401 and json.loads(body)["error"]["code"] == errors.API_UNAUTHORIZED.code
    assert_clean_log(server)


# -- item 6: reserved event names -------------------------------------------------------------------------------
@pytest.mark.parametrize("event", RESERVED)
async def test_events_api_refuses_reserved_names(server: ServerProcess, clients: Any, event: str) -> None:
    """POST /api/v1/events with a name Socket.IO clients reserve answers 422 event_reserved and emits nothing."""
    c = clients(server.url)
    await c.connect()
    await c.joined("reserved-news")
    headers = {"Authorization": f"Bearer {API_KEY}"}
    async with aiohttp.ClientSession(headers=headers) as http:
        resp = await http.post(f"{server.url}/api/v1/events", json={"channel": "reserved-news", "event": event, "data": {}})
        assert resp.status == 422
        assert (await resp.json())["error"]["code"] == errors.API_EVENT_RESERVED.code
        ok = await http.post(f"{server.url}/api/v1/events", json={"channel": "reserved-news", "event": "Marker", "data": {}})
        assert ok.status == 200
    await c.wait_for("Marker")
    assert [name for name, _ in c.events if not name.startswith("recovery:")] == ["Marker"]
    assert c.sio.connected


@pytest.mark.parametrize("route", ["events", "batch_events"])
async def test_pusher_api_refuses_reserved_names(server: ServerProcess, route: str) -> None:
    """The Pusher HTTP API answers 422 event_reserved for an event named connect."""
    event = {"name": "connect", "data": "{}"}
    doc = {"batch": [{**event, "channel": "news"}]} if route == "batch_events" else {**event, "channels": ["news"]}
    body = json.dumps(doc)
    path = f"/apps/{APP['id']}/{route}"
    query = signed_params(APP["key"], APP["secret"], "POST", path, body.encode(), int(time.time()))
    async with aiohttp.ClientSession() as http:
        resp = await http.post(server.url + path, params=query, data=body, headers={"Content-Type": "application/json"})
        assert resp.status == 422
        assert (await resp.json())["error"]["code"] == errors.API_EVENT_RESERVED.code


async def test_redis_ingest_drops_reserved_names(
    redis_server: RedisServer, server_factory: Callable[..., ServerProcess], clients: Any
) -> None:
    """A Laravel Redis broadcast named connect is dropped and counted as redis_messages_rejected{event_reserved}."""
    srv = server_factory(REALTIME_SIO_REDIS_URL=redis_server.url)
    await until_ready(srv)
    c = clients(srv.url)
    await c.connect()
    await c.joined("orders")
    redis = Redis.from_url(redis_server.url)
    try:
        await redis.publish("laravel_database_orders", laravel_payload("connect", {"x": 1}, None))
        await redis.publish("laravel_database_orders", laravel_payload("Marker", {"x": 2}, None))
    finally:
        await redis.aclose()
    await c.wait_for("Marker")
    assert [name for name, _ in c.events if not name.startswith("recovery:")] == ["Marker"]
    assert sample(await metrics_text(srv), "realtime_sio_redis_messages_rejected_total", reason="event_reserved") == 1.0


# -- item 5: CORS '*' -------------------------------------------------------------------------------------------
async def test_any_origin_gets_no_credentials(server: ServerProcess) -> None:
    """With CORS_ORIGINS='*' a foreign Origin may poll, but Access-Control-Allow-Credentials is never sent."""
    async with aiohttp.ClientSession() as http:
        for method in ("GET", "OPTIONS"):
            resp = await http.request(
                method,
                f"{server.url}/socket.io/?EIO=4&transport=polling",
                headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"},
            )
            await resp.read()
            assert resp.status == 200
            assert "Access-Control-Allow-Credentials" not in resp.headers


async def test_listed_origin_keeps_credentials(server_factory: Callable[..., ServerProcess]) -> None:
    """With an explicit origin list, that origin gets Access-Control-Allow-Credentials: true (cookies are intended)."""
    srv = server_factory(REALTIME_SIO_CORS_ORIGINS="https://app.example")
    async with aiohttp.ClientSession() as http:
        resp = await http.get(f"{srv.url}/socket.io/?EIO=4&transport=polling", headers={"Origin": "https://app.example"})
        await resp.read()
        assert resp.headers.get("Access-Control-Allow-Credentials") == "true"
        assert resp.headers.get("Access-Control-Allow-Origin") == "https://app.example"


# -- item 7: configuration --------------------------------------------------------------------------------------
async def test_server_header_names_no_versions(server: ServerProcess) -> None:
    """Every answer, aiohttp's own 400 for an unparsable request included, says Server: realtime-sio."""
    async with aiohttp.ClientSession() as http:
        for path in ("/health", "/metrics", "/nowhere", "/socket.io/?EIO=4&transport=polling"):
            resp = await http.get(server.url + path)
            await resp.read()
            assert resp.headers.get("Server") == "realtime-sio", path
    status, headers, _ = await raw_request(server, b"GET /health HTTP/1.1\r\nHost: x\r\nBad Header: y\r\n\r\n")
    assert status == 400 and headers.get("server") == "realtime-sio"


def run_cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {"PATH": "/usr/bin:/bin", "REALTIME_SIO_LOG_FORMAT": "json", **env}
    return subprocess.run([sys.executable, "-m", "realtime_sio", *args], capture_output=True, text=True, env=environ, cwd=ROOT, timeout=60, check=False)


def test_short_api_key_is_refused_at_start_up() -> None:
    """REALTIME_SIO_API_KEY shorter than 16 characters: exit status 2 and a line naming the variable."""
    result = run_cli("serve", REALTIME_SIO_API_KEY="k", REALTIME_SIO_PORT="0")
    assert result.returncode == 2
    (line,) = result.stderr.splitlines()
    assert json.loads(line)["event"] == "startup_failed"  # with LOG_FORMAT=json even this line is JSON
    assert "REALTIME_SIO_API_KEY: expected at least 16 characters" in json.loads(line)["message"]


def test_secret_given_as_a_flag_is_warned_about_without_its_value() -> None:
    """A secret passed as a command-line flag logs secret_on_command_line naming the variable, never the value."""
    result = run_cli("token", "--user", "1", "--jwt-secret", JWT_SECRET)
    assert result.returncode == 0, result.stderr
    (warning,) = [json.loads(line) for line in result.stderr.splitlines()]
    assert warning["event"] == "secret_on_command_line" and warning["setting"] == "REALTIME_SIO_JWT_SECRET"
    assert JWT_SECRET not in result.stderr
    assert run_cli("token", "--user", "1", REALTIME_SIO_JWT_SECRET=JWT_SECRET).stderr == ""


# -- item 11: library logs are JSON ----------------------------------------------------------------------------
async def test_unparsable_request_is_one_json_info_line(server_factory: Callable[..., ServerProcess]) -> None:
    """aiohttp's "Error handling request" for a bad head becomes one JSON http_request_malformed line, no traceback."""
    srv = server_factory()
    for head in (b"GET /health HTTP/1.1\r\nHost: x\r\nBad Header: y\r\n\r\n", b"GET /health HTTP/1.1\r\nContent-Length: x\r\n\r\n"):
        status, _, _ = await raw_request(srv, head)
        assert status == 400
    await eventually(lambda: srv.logs().count("http_request_malformed") == 2, what="two http_request_malformed lines")
    (record, _) = [r for r in log_records(srv) if r.get("event") == "http_request_malformed"]
    assert record["level"] == "info" and record["logger"] == "aiohttp.server" and record["error"]
    assert_clean_log(srv)


# -- item 12: quiet defaults and the throttle ------------------------------------------------------------------
async def test_default_log_level_writes_no_per_connection_lines(server_factory: Callable[..., ServerProcess], clients: Any) -> None:
    """At LOG_LEVEL=info a connect, join and disconnect write nothing; refusals still do."""
    srv = server_factory(REALTIME_SIO_LOG_LEVEL="info")
    c = clients(srv.url)
    await c.connect(auth={"token": token(5)})
    await c.joined("news")
    await c.subscribe("private-user.6")
    await c.wait_for("subscription_error")
    await c.close()
    await eventually(lambda: "subscription_denied" in srv.logs(), what="the refusal logged")
    events = {r["event"] for r in log_records(srv)}
    assert not events & {"client_connected", "channel_joined", "client_disconnected"}, events


async def test_a_flood_of_refusals_is_throttled_into_a_summary(server_factory: Callable[..., ServerProcess], clients: Any) -> None:
    """Past LOG_THROTTLE_LINES per window one event's lines stop; one log_lines_suppressed line counts the rest."""
    srv = server_factory(REALTIME_SIO_LOG_THROTTLE_LINES="5", REALTIME_SIO_LOG_THROTTLE_SECONDS="0.5")
    c = clients(srv.url)
    await c.connect()
    for i in range(100):
        await c.sio.emit(f"flood{i}")
    assert await c.sio.call("ping") == "pong"

    def accounted() -> tuple[int, int]:
        records = log_records(srv)
        dropped = sum(r["event"] == "client_input_dropped" for r in records)
        suppressed = sum(r["count"] for r in records if r["event"] == "log_lines_suppressed" and r["suppressed_event"] == "client_input_dropped")
        return dropped, suppressed

    await eventually(lambda: sum(accounted()) == 100, what="100 drops written or counted in summaries")
    dropped, suppressed = accounted()
    assert dropped >= 5 and suppressed > 0
    assert sample(await metrics_text(srv), "realtime_sio_bad_input_total", reason="unknown_event") == 100

