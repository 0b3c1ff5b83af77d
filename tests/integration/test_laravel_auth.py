"""Delegated channel authorisation against a small real aiohttp app that answers like Laravel's /broadcasting/auth."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import socketio

from tests.fake_laravel import SESSION_COOKIE, FakeLaravel
from tests.support import Client, ServerProcess, base_env, eventually, free_port, token

CSRF = "csrf-token-value-456"


@pytest.fixture(scope="module")
def laravel() -> Iterator[FakeLaravel]:
    """The fake Laravel app, shared by the module; requests are told apart by socket_id."""
    fake = FakeLaravel()
    fake.start()
    yield fake
    fake.stop()


@pytest.fixture(scope="module")
def server(laravel: FakeLaravel) -> Iterator[ServerProcess]:
    """A server delegating unmatched private-/presence- channels to the fake Laravel with a 1 s timeout."""
    proc = ServerProcess(env=base_env(REALTIME_SIO_LARAVEL_AUTH_URL=laravel.url, REALTIME_SIO_LARAVEL_AUTH_TIMEOUT="1"))
    proc.start()
    yield proc
    proc.kill()


def bearer(user: int) -> dict[str, Any]:
    """Echo's subscribe auth option for a Sanctum bearer token."""
    return {"headers": {"Authorization": f"Bearer user-{user}", "X-CSRF-TOKEN": CSRF}}


async def subscribe_ack(client: Client, channel: str, **extra: Any) -> dict[str, Any]:
    ack: dict[str, Any] = await client.sio.call("subscribe", {"channel": channel, **extra}, timeout=15)
    return ack


async def test_private_allowed_with_headers_and_cookie_forwarded(
    server: ServerProcess, laravel: FakeLaravel, clients: Callable[..., Client]
) -> None:
    """Laravel answering true joins the socket; it saw channel_name, socket_id, the auth headers and handshake cookie."""
    client = clients(server.url)
    await client.connect(headers={"Cookie": SESSION_COOKIE})
    extra_headers = {"Connection": "close, X-Evil", "Host": "evil.example", "Content-Length": "999", "X-Custom": "dropped"}
    auth = {"headers": {"X-CSRF-TOKEN": CSRF, **extra_headers}}
    ack = await subscribe_ack(client, "private-orders.ok", auth=auth)
    assert ack["ok"] is True
    (seen,) = laravel.for_socket(client.sid)
    assert seen.channel == "private-orders.ok"
    assert seen.headers["X-CSRF-TOKEN"] == CSRF
    assert "X-Custom" not in seen.headers  # not on the allow-list
    assert seen.headers["Cookie"] == SESSION_COOKIE
    assert seen.headers["X-Requested-With"] == "XMLHttpRequest"
    assert seen.headers["Accept"] == "application/json"
    assert seen.headers["Host"] == f"127.0.0.1:{laravel.port}"
    assert "X-Evil" not in seen.headers.get("Connection", "")
    assert seen.headers["Content-Type"] == "application/x-www-form-urlencoded"


async def test_client_cookie_header_wins_over_handshake_cookie(
    server: ServerProcess, laravel: FakeLaravel, clients: Callable[..., Client]
) -> None:
    """A Cookie the client puts in auth.headers is sent instead of the handshake cookie."""
    client = clients(server.url)
    await client.connect(headers={"Cookie": "laravel_session=other"})
    ack = await subscribe_ack(client, "private-orders.ok", auth={"headers": {"Cookie": SESSION_COOKIE}})
    assert ack["ok"] is True
    assert laravel.for_socket(client.sid)[0].headers["Cookie"] == SESSION_COOKIE


async def test_bearer_without_cookie(server: ServerProcess, laravel: FakeLaravel, clients: Callable[..., Client]) -> None:
    """With no cookie at all, a bearer token in auth.headers is what Laravel authenticates."""
    client = clients(server.url)
    await client.connect()
    assert (await subscribe_ack(client, "private-orders.ok", auth=bearer(5)))["ok"] is True
    assert "Cookie" not in laravel.for_socket(client.sid)[0].headers


async def test_denied_403(server: ServerProcess, laravel: FakeLaravel, clients: Callable[..., Client]) -> None:
    """Laravel's 403 becomes subscription_error(channel, 403) and the socket is not joined."""
    client = clients(server.url)
    await client.connect()
    ack = await subscribe_ack(client, "private-orders.denied", auth=bearer(5))
    assert ack["ok"] is False and ack["status"] == 403
    (error,) = await client.wait_for("subscription_error")
    assert error[:2] == ("private-orders.denied", 403)


async def test_anonymous_denied(server: ServerProcess, laravel: FakeLaravel, clients: Callable[..., Client]) -> None:
    """No cookie and no token: Laravel refuses (403) and so does the server."""
    client = clients(server.url)
    await client.connect()
    ack = await subscribe_ack(client, "private-orders.ok")
    assert (ack["ok"], ack["status"]) == (False, 403)


@pytest.mark.parametrize("shape", ["obj", "str"])
async def test_presence_member_from_channel_data(
    shape: str, server: ServerProcess, laravel: FakeLaravel, clients: Callable[..., Client]
) -> None:
    """channel_data (object or JSON string) becomes the member: here lists both users, joining announces the second."""
    channel = f"presence-room.{shape}"
    alice, bob = clients(server.url), clients(server.url)
    await alice.connect()
    await bob.connect()
    assert (await subscribe_ack(alice, channel, auth=bearer(7)))["ok"] is True
    (here,) = await alice.wait_for("presence:subscribed")
    assert here == (channel, [{"user_id": 7, "user_info": {"id": 7, "name": "User 7"}}])
    assert (await subscribe_ack(bob, channel, auth=bearer(8)))["ok"] is True
    (joining,) = await alice.wait_for("presence:joining")
    assert joining == (channel, {"user_id": 8, "user_info": {"id": 8, "name": "User 8"}})
    (bob_here,) = await bob.wait_for("presence:subscribed")
    assert sorted(m["user_id"] for m in bob_here[1]) == [7, 8]
    await bob.close()
    (leaving,) = await alice.wait_for("presence:leaving")
    assert leaving == (channel, {"user_id": 8, "user_info": {"id": 8, "name": "User 8"}})


async def test_presence_true_joins_without_presence(server: ServerProcess, laravel: FakeLaravel, clients: Callable[..., Client]) -> None:
    """A presence callback returning true (body `true`) joins the room but sends no presence events."""
    client = clients(server.url)
    await client.connect()
    ack = await subscribe_ack(client, "presence-room.true", auth=bearer(7))
    assert ack["ok"] is True
    # presence:subscribed would be queued before the ack on this connection; the ack is in, so none was sent.
    assert client.named("presence:subscribed") == []


async def test_timeout_is_status_0_and_blocks_nobody(
    server: ServerProcess, laravel: FakeLaravel, clients: Callable[..., Client]
) -> None:
    """Laravel slower than the timeout gives subscription_error(channel, 0); other sockets are answered meanwhile."""
    slow, quick = clients(server.url), clients(server.url)
    await slow.connect()
    await quick.connect()
    await slow.subscribe("private-orders.slow", auth=bearer(7))
    await eventually(lambda: laravel.in_flight_slow > 0, what="the slow request to reach Laravel")
    assert (await subscribe_ack(quick, "private-orders.ok", auth=bearer(8)))["ok"] is True
    assert "private-orders.ok" in laravel.concurrent_with_slow  # answered while the slow one was still pending
    (error,) = await slow.wait_for("subscription_error", timeout=15)
    assert error[:2] == ("private-orders.slow", 0)


@pytest.mark.parametrize(("channel", "status"), [("private-orders.garbage", 502), ("private-orders.error", 500)])
async def test_bad_answers_refused(
    channel: str, status: int, server: ServerProcess, laravel: FakeLaravel, clients: Callable[..., Client]
) -> None:
    """A 200 that is not a Laravel auth answer (HTML) gives 502; a 500 gives 500; neither joins."""
    client = clients(server.url)
    await client.connect()
    ack = await subscribe_ack(client, channel, auth=bearer(7))
    assert (ack["ok"], ack["status"]) == (False, status)
    (error,) = await client.wait_for("subscription_error")
    assert error[:2] == (channel, status)


async def test_no_credentials_in_logs(server: ServerProcess, laravel: FakeLaravel, clients: Callable[..., Client]) -> None:
    """Cookies, CSRF tokens and bearer tokens sent to Laravel never appear in the server's log."""
    client = clients(server.url)
    await client.connect(headers={"Cookie": SESSION_COOKIE})
    await subscribe_ack(client, "private-orders.denied", auth=bearer(7))
    await subscribe_ack(client, "private-orders.ok", auth=bearer(7))
    logs = server.logs()
    assert "laravel_auth_denied" in logs
    for secret in ("handshake-cookie-value-123", CSRF, "Bearer user-7"):
        assert secret not in logs


async def test_positive_answers_cached(
    laravel: FakeLaravel, server_factory: Callable[..., ServerProcess], clients: Callable[..., Client]
) -> None:
    """With a cache TTL, a second socket with the same credentials joins without asking Laravel; denials are not cached."""
    server = server_factory(REALTIME_SIO_LARAVEL_AUTH_URL=laravel.url, REALTIME_SIO_LARAVEL_AUTH_CACHE_TTL="60")
    first, second = clients(server.url), clients(server.url)
    for client in (first, second):
        await client.connect(headers={"Cookie": SESSION_COOKIE})
        assert (await subscribe_ack(client, "private-orders.ok"))["ok"] is True
        assert (await subscribe_ack(client, "private-orders.denied"))["ok"] is False
    assert [r.channel for r in laravel.for_socket(first.sid)] == ["private-orders.ok", "private-orders.denied"]
    assert [r.channel for r in laravel.for_socket(second.sid)] == ["private-orders.denied"]


async def test_default_off_denies_unmatched_channels(
    laravel: FakeLaravel, server_factory: Callable[..., ServerProcess], clients: Callable[..., Client]
) -> None:
    """LARAVEL_AUTH_DEFAULT=false: a private channel no rule matches is denied without asking Laravel."""
    server = server_factory(REALTIME_SIO_LARAVEL_AUTH_URL=laravel.url, REALTIME_SIO_LARAVEL_AUTH_DEFAULT="false")
    client = clients(server.url)
    await client.connect(headers={"Cookie": SESSION_COOKIE})
    ack = await subscribe_ack(client, "private-orders.ok")
    assert (ack["ok"], ack["status"]) == (False, 403)
    assert laravel.for_socket(client.sid) == []


async def test_explicit_laravel_rule(
    laravel: FakeLaravel, server_factory: Callable[..., ServerProcess], clients: Callable[..., Client], tmp_path: Any
) -> None:
    """A [[channels]] rule with allow = "laravel" delegates even when the default fallback is off."""
    config = tmp_path / "realtime.toml"
    config.write_text('[[channels]]\npattern = "private-orders.*"\nallow = "laravel"\n')
    server = server_factory(
        REALTIME_SIO_LARAVEL_AUTH_URL=laravel.url, REALTIME_SIO_LARAVEL_AUTH_DEFAULT="false", REALTIME_SIO_CONFIG_FILE=str(config)
    )
    client = clients(server.url)
    await client.connect(headers={"Cookie": SESSION_COOKIE})
    assert (await subscribe_ack(client, "private-orders.ok"))["ok"] is True
    assert (await subscribe_ack(client, "private-other.ok"))["ok"] is False
    assert [r.channel for r in laravel.for_socket(client.sid)] == ["private-orders.ok"]


async def test_unreachable_laravel_is_status_0(server_factory: Callable[..., ServerProcess], clients: Callable[..., Client]) -> None:
    """Nothing listening at the auth URL: subscription_error(channel, 0)."""
    server = server_factory(REALTIME_SIO_LARAVEL_AUTH_URL=f"http://127.0.0.1:{free_port()}/broadcasting/auth")
    client = clients(server.url)
    await client.connect(headers={"Cookie": SESSION_COOKIE})
    ack = await subscribe_ack(client, "private-orders.ok")
    assert (ack["ok"], ack["status"]) == (False, 0)


async def test_echo_bearer_for_laravel_does_not_refuse_connection(
    server: ServerProcess, laravel: FakeLaravel, clients: Callable[..., Client]
) -> None:
    """Echo's bearerToken lands in the handshake auth.headers too; a non-JWT (Sanctum) token there connects anonymously."""
    client = clients(server.url)
    await client.connect(auth=bearer(7))  # what Echo sends as Socket.IO auth when given bearerToken
    assert client.connect_errors == []
    assert (await subscribe_ack(client, "private-orders.ok", auth=bearer(7)))["ok"] is True
    assert laravel.for_socket(client.sid)[0].headers["Authorization"] == "Bearer user-7"


async def test_forged_jwt_in_echo_headers_still_refused(server: ServerProcess, clients: Callable[..., Client]) -> None:
    """A JWT of this server's algorithm with a bad signature is refused even when Laravel auth is on."""
    forged = token(7)[:-4] + "AAAA"
    client = clients(server.url)
    with pytest.raises(socketio.exceptions.ConnectionError):
        await client.connect(auth={"headers": {"Authorization": f"Bearer {forged}"}})
    assert client.connect_errors and client.connect_errors[-1]["data"]["code"] == "token_bad_signature"


async def test_only_allow_listed_headers_reach_laravel(
    server: ServerProcess, laravel: FakeLaravel, clients: Callable[..., Client]
) -> None:
    """Proxy headers a client could spoof (X-Forwarded-For, Forwarded, ...) and names with stray spaces are dropped."""
    client = clients(server.url)
    await client.connect(headers={"Cookie": SESSION_COOKIE})
    spoofed = {
        "X-Forwarded-For": "10.0.0.1",
        "X-Real-IP": "10.0.0.2",
        "Forwarded": "for=10.0.0.3",
        "X-Forwarded-Host": "admin.example",
        "Host :": "admin.example",
        "X-Requested-With": "Nope",
    }
    ack = await subscribe_ack(client, "private-orders.ok", auth={"headers": {**spoofed, "X-XSRF-TOKEN": "xsrf-1", "X-Socket-Id": client.sid}})
    assert ack["ok"] is True
    (seen,) = laravel.for_socket(client.sid)
    lowered = {k.lower(): v for k, v in seen.headers.items()}
    assert not {"x-forwarded-for", "x-real-ip", "forwarded", "x-forwarded-host"} & set(lowered)
    assert "admin.example" not in seen.headers.values()
    assert lowered["x-requested-with"] == "XMLHttpRequest"
    assert lowered["x-xsrf-token"] == "xsrf-1" and lowered["x-socket-id"] == client.sid


@pytest.mark.parametrize("value", ["a\r\nX-Evil: 1", "a\nb", "caf\u00e9"])
async def test_header_value_with_crlf_still_gets_an_answer(
    server: ServerProcess, laravel: FakeLaravel, clients: Callable[..., Client], value: str
) -> None:
    """A CR/LF (or non-ASCII) header value is dropped: the subscribe is answered, nothing raises, the log stays clean."""
    client = clients(server.url)
    await client.connect(headers={"Cookie": SESSION_COOKIE})
    ack = await subscribe_ack(client, "private-orders.ok", auth={"headers": {"X-CSRF-TOKEN": value}})
    assert ack["ok"] is True
    (seen,) = laravel.for_socket(client.sid)
    assert "X-Evil" not in seen.headers and "X-CSRF-TOKEN" not in seen.headers
    assert "Traceback" not in server.logs() and "handler_failed" not in server.logs()


async def test_cache_is_keyed_by_every_forwarded_header(
    laravel: FakeLaravel, server_factory: Callable[..., ServerProcess], clients: Callable[..., Client]
) -> None:
    """A cached approval is reused only when exactly the same headers would be forwarded (same cookie, other CSRF → ask)."""
    server = server_factory(REALTIME_SIO_LARAVEL_AUTH_URL=laravel.url, REALTIME_SIO_LARAVEL_AUTH_CACHE_TTL="60")
    first, second, third = clients(server.url), clients(server.url), clients(server.url)
    for client, csrf in ((first, "csrf-a"), (second, "csrf-b"), (third, "csrf-a")):
        await client.connect(headers={"Cookie": SESSION_COOKIE})
        assert (await subscribe_ack(client, "private-orders.ok", auth={"headers": {"X-CSRF-TOKEN": csrf}}))["ok"] is True
    assert len(laravel.for_socket(first.sid)) == 1
    assert len(laravel.for_socket(second.sid)) == 1  # another CSRF token: Laravel may decide otherwise, so it is asked
    assert laravel.for_socket(third.sid) == []  # exactly the first socket's headers: served from the cache


async def test_any_origin_does_not_lend_a_cross_site_cookie_to_laravel(
    server: ServerProcess, laravel: FakeLaravel, clients: Callable[..., Client]
) -> None:
    """With CORS_ORIGINS='*' a handshake from a foreign Origin is anonymous: its browser-attached cookie is not forwarded."""
    foreign, same = clients(server.url), clients(server.url)
    await foreign.connect(headers={"Cookie": SESSION_COOKIE, "Origin": "https://evil.example"})
    ack = await subscribe_ack(foreign, "private-orders.ok")
    assert (ack["ok"], ack["status"]) == (False, 403)
    assert "Cookie" not in laravel.for_socket(foreign.sid)[0].headers
    await same.connect(headers={"Cookie": SESSION_COOKIE, "Origin": server.url})  # same origin keeps its cookie
    assert (await subscribe_ack(same, "private-orders.ok"))["ok"] is True
    assert laravel.for_socket(same.sid)[0].headers["Cookie"] == SESSION_COOKIE
