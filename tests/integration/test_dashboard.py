"""The /dashboard routes on a real server: off by default, credential checks, snapshot contents, the live stream."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest
import socketio

from tests.support import Client, ServerProcess, eventually, token

DASHBOARD_TOKEN = "dashboard-test-token-0123456789"


def basic(password: str) -> dict[str, str]:
    """An ``Authorization: Basic`` header with user ``admin``."""
    return {"Authorization": "Basic " + base64.b64encode(f"admin:{password}".encode()).decode()}


GOOD = basic(DASHBOARD_TOKEN)
WRONG = basic("not-the-token-at-all")


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    """A client session that does not follow redirects on its own."""
    async with aiohttp.ClientSession() as session:
        yield session


async def snapshot(http: aiohttp.ClientSession, server: ServerProcess) -> dict[str, Any]:
    async with http.get(f"{server.url}/dashboard/snapshot.json", headers=GOOD) as response:
        assert response.status == 200
        body: dict[str, Any] = await response.json()
        return body


async def next_event(response: aiohttp.ClientResponse, timeout: float = 10.0) -> dict[str, Any]:
    """The next ``event: snapshot`` of a server-sent event stream, decoded."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        remaining = deadline - asyncio.get_running_loop().time()
        block = await asyncio.wait_for(response.content.readuntil(b"\n\n"), max(0.01, remaining))
        if not block:
            raise AssertionError("stream ended")
        lines = block.decode().strip().splitlines()
        if "event: snapshot" in lines:
            data = next(line for line in lines if line.startswith("data: "))
            result: dict[str, Any] = json.loads(data[6:])
            return result


async def test_dashboard_is_off_without_a_token(server: ServerProcess, http: aiohttp.ClientSession) -> None:
    """Without REALTIME_SIO_DASHBOARD_TOKEN every dashboard route answers 404."""
    for path in ("/dashboard", "/dashboard/stream", "/dashboard/snapshot.json"):
        async with http.get(server.url + path, headers=GOOD) as response:
            assert response.status == 404, path


async def test_basic_auth_right_and_wrong(server_factory: Callable[..., ServerProcess], http: aiohttp.ClientSession) -> None:
    """The token as Basic password opens the dashboard; a wrong password is a 401 with a Basic challenge."""
    server = server_factory(REALTIME_SIO_DASHBOARD_TOKEN=DASHBOARD_TOKEN)
    async with http.get(f"{server.url}/dashboard", headers=GOOD) as response:
        assert response.status == 200
        assert 'id="connections-table"' in await response.text()
        assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    async with http.get(f"{server.url}/dashboard", headers=WRONG) as response:
        assert response.status == 401
        assert 'id="login-form"' in await response.text()
    async with http.get(f"{server.url}/dashboard/snapshot.json", headers=WRONG) as response:
        assert response.status == 401
        assert response.headers["WWW-Authenticate"].startswith("Basic ")


async def test_no_credential_gets_the_login_form(server_factory: Callable[..., ServerProcess], http: aiohttp.ClientSession) -> None:
    """No credential is not a wrong one: the page offers the form (200); data routes answer 401 without a challenge."""
    server = server_factory(REALTIME_SIO_DASHBOARD_TOKEN=DASHBOARD_TOKEN)
    async with http.get(f"{server.url}/dashboard") as response:
        text = await response.text()
        assert response.status == 200
        assert 'id="login-form"' in text and "connections-table" not in text
    for path in ("/dashboard/snapshot.json", "/dashboard/stream"):
        async with http.get(server.url + path) as response:
            assert response.status == 401
            assert "WWW-Authenticate" not in response.headers  # a browser would pop a dialog over the page


async def test_login_form_sets_an_hmac_session_cookie(server_factory: Callable[..., ServerProcess]) -> None:
    """Posting the right token sets an HttpOnly SameSite=Strict cookie that is not the token and opens the data routes."""
    server = server_factory(REALTIME_SIO_DASHBOARD_TOKEN=DASHBOARD_TOKEN)
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        async with http.post(f"{server.url}/dashboard/login", data={"token": DASHBOARD_TOKEN}, allow_redirects=False) as response:
            assert response.status == 303
            assert response.headers["Location"] == "/dashboard"
            cookie = response.headers["Set-Cookie"]
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/dashboard" in cookie
        assert DASHBOARD_TOKEN not in cookie and "Secure" not in cookie  # plain HTTP here
        async with http.get(f"{server.url}/dashboard/snapshot.json") as response:
            assert response.status == 200
        async with http.post(f"{server.url}/dashboard/logout", allow_redirects=False) as response:
            assert response.status == 303
        async with http.get(f"{server.url}/dashboard/snapshot.json") as response:
            assert response.status == 401
        proxied = {"X-Forwarded-Proto": "https"}
        async with http.post(f"{server.url}/dashboard/login", data={"token": DASHBOARD_TOKEN}, headers=proxied, allow_redirects=False) as response:
            assert "Secure" in response.headers["Set-Cookie"]  # behind a TLS-terminating proxy


async def test_wrong_form_token_and_forged_cookie_are_refused(
    server_factory: Callable[..., ServerProcess], http: aiohttp.ClientSession
) -> None:
    """A wrong form token is a 401 form; a forged session cookie is a 401 on pages and data routes."""
    server = server_factory(REALTIME_SIO_DASHBOARD_TOKEN=DASHBOARD_TOKEN)
    async with http.post(f"{server.url}/dashboard/login", data={"token": "wrong-token-wrong-token"}, allow_redirects=False) as response:
        assert response.status == 401
        assert "not valid" in await response.text()
        assert "Set-Cookie" not in response.headers
    forged = {"Cookie": f"realtime_sio_dashboard=9999999999.{'0' * 64}"}
    async with http.get(f"{server.url}/dashboard/snapshot.json", headers=forged) as response:
        assert response.status == 401
    async with http.get(f"{server.url}/dashboard", headers=forged) as response:
        assert response.status == 401
        assert 'id="login-form"' in await response.text()


async def test_snapshot_shows_connections_channels_presence_and_errors(
    server_factory: Callable[..., ServerProcess], clients: Callable[..., Client], http: aiohttp.ClientSession
) -> None:
    """A socket's connection, channels and presence membership, and refused inputs, appear in the snapshot."""
    server = server_factory(REALTIME_SIO_DASHBOARD_TOKEN=DASHBOARD_TOKEN)
    client = clients(server.url)
    await client.connect(auth={"token": token(7, name="Grace")})
    await client.joined("presence-chat.ops")
    await client.joined("orders")
    await client.subscribe("bad channel name!")  # refused: channel_invalid
    await client.wait_for("subscription_error")
    intruder = clients(server.url)
    with pytest.raises(socketio.exceptions.ConnectionError):
        await intruder.connect(auth={"token": "not-a-jwt"})

    snap = await snapshot(http, server)
    assert snap["connections"]["open"] == 1 and snap["connections"]["authenticated"] == 1
    assert snap["connections"]["websocket"] == 1
    rows = {row["name"]: row for row in snap["channels"]["rows"]}
    assert rows["presence-chat.ops"] == {"name": "presence-chat.ops", "kind": "presence", "subscribers": 1, "presence_members": 1}
    assert rows["orders"]["subscribers"] == 1 and rows["private-user.7"]["kind"] == "private"
    assert snap["recent_connections"][0] == {
        "sid": client.sid,
        "user_id": "7",
        "transport": "websocket",
        "channels": ["orders", "presence-chat.ops", "private-user.7"],
    }
    errors = {(e["category"], e["reason"]): e for e in snap["errors"]["rows"]}
    assert ("bad_input", "channel_invalid") in errors
    assert ("auth", "token_malformed") in errors
    assert snap["redis"] == {"state": "disabled", "up": True} and snap["draining"] is False


async def test_stream_pushes_live_snapshots(
    server_factory: Callable[..., ServerProcess], clients: Callable[..., Client], http: aiohttp.ClientSession
) -> None:
    """The event stream sends a snapshot at once and keeps sending; a new connection shows up without reloading."""
    server = server_factory(REALTIME_SIO_DASHBOARD_TOKEN=DASHBOARD_TOKEN)
    async with http.get(f"{server.url}/dashboard/stream", headers=GOOD) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/event-stream")
        first = await next_event(response)
        assert first["connections"]["open"] == 0
        client = clients(server.url)
        await client.connect()
        for _ in range(20):  # each event is ~1 s apart; the connection must show within a few of them
            if (await next_event(response))["connections"]["open"] == 1:
                break
        else:
            raise AssertionError("the new connection never appeared in the stream")


async def test_stream_count_is_bounded(server_factory: Callable[..., ServerProcess], http: aiohttp.ClientSession) -> None:
    """Past REALTIME_SIO_DASHBOARD_MAX_STREAMS open streams the route answers 503; a closed stream frees its slot."""
    server = server_factory(REALTIME_SIO_DASHBOARD_TOKEN=DASHBOARD_TOKEN, REALTIME_SIO_DASHBOARD_MAX_STREAMS="2")
    first = await http.get(f"{server.url}/dashboard/stream", headers=GOOD)
    second = await http.get(f"{server.url}/dashboard/stream", headers=GOOD)
    await next_event(first)
    await next_event(second)
    async with http.get(f"{server.url}/dashboard/stream", headers=GOOD) as third:
        assert third.status == 503
        assert third.headers["Retry-After"] == "5"
    first.close()  # the viewer goes away: the server notices at its next write and frees the slot
    await eventually(lambda: "client_gone" in server.logs(), what="the server to notice the closed stream")

    async def reopened() -> int:
        async with http.get(f"{server.url}/dashboard/stream", headers=GOOD) as response:
            return response.status

    assert await reopened() == 200
    second.close()


async def test_stream_ends_cleanly_on_shutdown(server_factory: Callable[..., ServerProcess], http: aiohttp.ClientSession) -> None:
    """On SIGTERM an open stream is ended by the server and the process exits 0 without waiting it out."""
    server = server_factory(REALTIME_SIO_DASHBOARD_TOKEN=DASHBOARD_TOKEN)
    async with http.get(f"{server.url}/dashboard/stream", headers=GOOD) as response:
        await next_event(response)
        assert await asyncio.to_thread(server.terminate, 15) == 0
        rest = await asyncio.wait_for(response.content.read(), 10)  # EOF: the server closed the stream
        assert b"event: snapshot" in rest or rest == b""
    assert '"reason": "shutdown"' in server.logs() and "dashboard_stream_closed" in server.logs()


async def test_snapshot_in_cluster_mode_shows_redis_and_cluster_presence(
    server_factory: Callable[..., ServerProcess],
    clients: Callable[..., Client],
    http: aiohttp.ClientSession,
    redis_server: Any,
) -> None:
    """With Redis configured the dashboard reports Redis up and reads presence members from the cluster store."""
    server = server_factory(REALTIME_SIO_DASHBOARD_TOKEN=DASHBOARD_TOKEN, REALTIME_SIO_REDIS_URL=redis_server.url)
    client = clients(server.url)
    await client.connect(auth={"token": token(9, name="Lin")})
    await client.joined("presence-chat.cluster")

    async def settled() -> dict[str, Any]:
        snap: dict[str, Any] = {}
        deadline = asyncio.get_running_loop().time() + 10
        while asyncio.get_running_loop().time() < deadline:
            snap = await snapshot(http, server)
            rows = {row["name"]: row for row in snap["channels"]["rows"]}
            if snap["redis"]["state"] == "up" and rows.get("presence-chat.cluster", {}).get("presence_members") == 1:
                return snap
            await asyncio.sleep(0.2)
        raise AssertionError(f"cluster state never showed: {snap}")

    snap = await settled()
    assert snap["channels"]["presence_available"] is True


async def test_cross_site_form_posts_are_refused(server_factory: Callable[..., ServerProcess], http: aiohttp.ClientSession) -> None:
    """A sign-in or sign-out posted from another site (Sec-Fetch-Site: cross-site) is refused with 403."""
    server = server_factory(REALTIME_SIO_DASHBOARD_TOKEN=DASHBOARD_TOKEN)
    cross = {"Sec-Fetch-Site": "cross-site"}
    async with http.post(f"{server.url}/dashboard/login", data={"token": DASHBOARD_TOKEN}, headers=cross, allow_redirects=False) as response:
        assert response.status == 403
        assert "Set-Cookie" not in response.headers
    async with http.post(f"{server.url}/dashboard/logout", headers=cross, allow_redirects=False) as response:
        assert response.status == 403
    same = {"Sec-Fetch-Site": "same-origin"}
    async with http.post(f"{server.url}/dashboard/login", data={"token": DASHBOARD_TOKEN}, headers=same, allow_redirects=False) as response:
        assert response.status == 303
