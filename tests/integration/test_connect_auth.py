"""Connect-time authentication against a real server: every token source, every bad-token kind."""

from __future__ import annotations

import time
from typing import Any

import jwt
import pytest
import socketio

from tests.support import API_KEY, JWT_SECRET, Client, ServerProcess, token


async def _refusal(client: Client, **connect: Any) -> dict[str, Any]:
    with pytest.raises(socketio.exceptions.ConnectionError):
        await client.connect(**connect)
    assert client.connect_errors, "expected a connect_error"
    error = client.connect_errors[-1]
    # The CONNECT_ERROR packet carries {message, data}; data is the catalogue entry.
    assert isinstance(error, dict) and isinstance(error.get("data"), dict), error
    assert error["message"] == error["data"]["message"]
    return error["data"]


async def test_anonymous_connect_is_accepted(server: ServerProcess, clients: Any) -> None:
    """No token at all connects as an anonymous socket."""
    c = clients(server.url)
    await c.connect()
    assert c.sio.connected


async def test_token_in_auth_payload_joins_user_and_role_rooms(server: ServerProcess, clients: Any) -> None:
    """A JWT in auth.token auto-joins private-user.{sub} and private-role.{role}; events reach it unsubscribed."""
    import aiohttp

    c = clients(server.url)
    await c.connect(auth={"token": token(42, ["admin"])})
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {API_KEY}"}) as http:
        for channel in ("private-user.42", "private-role.admin", "private-user.43"):
            r = await http.post(f"{server.url}/api/v1/events", json={"channel": channel, "event": "E", "data": {"c": channel}})
            assert r.status == 200
    got = await c.wait_for("E", 2)
    assert [args[0] for args in got] == ["private-user.42", "private-role.admin"]
    assert got[0][1] == {"c": "private-user.42"}


@pytest.mark.parametrize(
    "where",
    ["echo_auth_headers", "authorization_header", "query"],
)
async def test_token_sources(server: ServerProcess, clients: Any, where: str) -> None:
    """The token is also read from Echo's auth.headers, an Authorization header, and a token query parameter."""
    tok = token(7)
    c = clients(server.url)
    if where == "echo_auth_headers":
        await c.connect(auth={"headers": {"Authorization": f"Bearer {tok}"}})
    elif where == "authorization_header":
        await c.connect(headers={"Authorization": f"Bearer {tok}"})
    else:
        c.url = f"{server.url}?token={tok}"
        await c.connect()
    ack = await c.sio.call("subscribe", {"channel": "private-user.7"})
    assert ack["ok"] is True


def _claims(**extra: Any) -> dict[str, Any]:
    now = int(time.time())
    return {"sub": "5", "iat": now, "exp": now + 600, **extra}


BAD_TOKENS = {
    "token_expired": lambda: jwt.encode(_claims(exp=int(time.time()) - 3600), JWT_SECRET, "HS256"),
    "token_not_yet_valid": lambda: jwt.encode(_claims(nbf=int(time.time()) + 3600), JWT_SECRET, "HS256"),
    "token_bad_signature": lambda: jwt.encode(_claims(), "another-secret-0123456789-0123456789", "HS256"),
    "token_bad_algorithm": lambda: jwt.encode(_claims(), JWT_SECRET, "HS512"),
    "token_malformed": lambda: "not.a.jwt",
    "token_too_large": lambda: jwt.encode(_claims(pad="x" * 10_000), JWT_SECRET, "HS256"),
    "token_missing_claim": lambda: jwt.encode({"sub": "5"}, JWT_SECRET, "HS256"),
}


def _alg_none() -> str:
    return jwt.encode(_claims(), None, algorithm="none")  # type: ignore[arg-type]


@pytest.mark.parametrize("code", sorted([*BAD_TOKENS, "alg_none"]))
async def test_bad_tokens_are_refused_with_a_stable_code(server: ServerProcess, clients: Any, code: str) -> None:
    """Each bad token kind is refused with connect_error data {code, message, retryable}; never a traceback."""
    bad = _alg_none() if code == "alg_none" else BAD_TOKENS[code]()
    expected = "token_bad_algorithm" if code == "alg_none" else code
    data = await _refusal(clients(server.url), auth={"token": bad})
    assert data["code"] == expected
    assert data["message"] and "Traceback" not in data["message"]
    assert isinstance(data["retryable"], bool)


async def test_non_string_token_is_malformed(server: ServerProcess, clients: Any) -> None:
    """auth.token that is not a string is refused as token_malformed."""
    data = await _refusal(clients(server.url), auth={"token": {"nested": 1}})
    assert data["code"] == "token_malformed"


async def test_issuer_and_audience_are_checked(server_factory: Any, clients: Any) -> None:
    """With JWT_ISSUER/JWT_AUDIENCE set, a token for another issuer or audience is refused."""
    srv = server_factory(REALTIME_SIO_JWT_ISSUER="https://app.example", REALTIME_SIO_JWT_AUDIENCE="realtime")
    good = jwt.encode(_claims(iss="https://app.example", aud="realtime"), JWT_SECRET, "HS256")
    c = clients(srv.url)
    await c.connect(auth={"token": good})
    await c.close()
    wrong_iss = jwt.encode(_claims(iss="https://evil.example", aud="realtime"), JWT_SECRET, "HS256")
    wrong_aud = jwt.encode(_claims(iss="https://app.example", aud="other"), JWT_SECRET, "HS256")
    assert (await _refusal(clients(srv.url), auth={"token": wrong_iss}))["code"] == "token_bad_issuer"
    assert (await _refusal(clients(srv.url), auth={"token": wrong_aud}))["code"] == "token_bad_audience"


async def test_refusals_are_counted_and_the_server_keeps_serving(server: ServerProcess, clients: Any) -> None:
    """After bad tokens the server still accepts good ones, and /metrics counts failures by reason."""
    import aiohttp

    await _refusal(clients(server.url), auth={"token": "garbage"})
    ok = clients(server.url)
    await ok.connect(auth={"token": token(1)})
    async with aiohttp.ClientSession() as http:
        text = await (await http.get(f"{server.url}/metrics")).text()
    assert 'realtime_sio_auth_failures_total{reason="token_malformed"}' in text
    assert "Traceback" not in server.logs()
    assert JWT_SECRET not in server.logs()
