"""Unit tests of client payload parsing (sio/payloads.py)."""

from __future__ import annotations

from typing import Any

import pytest

from realtime_sio.auth.tokens import Identity
from realtime_sio.errors import RealtimeError
from realtime_sio.publish.history import Cursor
from realtime_sio.settings import Settings
from realtime_sio.sio import payloads


def test_token_sources_in_order() -> None:
    """auth.token wins over Echo's auth.headers, then the Authorization header, then ?token=."""
    env = {"HTTP_AUTHORIZATION": "Bearer hdr", "QUERY_STRING": "EIO=4&token=q"}
    assert payloads.token_from({"token": "a"}, env) == "a"
    assert payloads.token_from({"headers": {"authorization": "Bearer echo"}}, env) == "echo"
    assert payloads.token_from(None, env) == "hdr"
    assert payloads.token_from(["junk"], {"QUERY_STRING": "token=q"}) == "q"
    assert payloads.token_from({}, {}) is None


def test_subscribe_request_filters_headers() -> None:
    """Only string headers are kept for delegation; since is parsed."""
    req = payloads.subscribe_request({"channel": "private-x", "auth": {"headers": {"X-CSRF-TOKEN": "t", "n": 1}}, "since": "5-1@e1"}, 200)
    assert req.headers == {"X-CSRF-TOKEN": "t"} and req.since == Cursor((5, 1), "e1")


@pytest.mark.parametrize("data", [None, "x", 5, [], {"channel": 1}, {"channel": ""}, {"channel": "#room"}, {"channel": "é"}])
def test_subscribe_request_rejects(data: Any) -> None:
    """Non-objects and bad channel names raise."""
    with pytest.raises(RealtimeError):
        payloads.subscribe_request(data, 200)


def test_connect_positions() -> None:
    """Recovery positions must be a bounded map of well-formed ids."""
    assert payloads.connect_positions({"positions": {"news": "1-0"}}, 10) == {"news": Cursor((1, 0))}
    assert payloads.connect_positions({"positions": {"news": "1-0@ab12"}}, 10) == {"news": Cursor((1, 0), "ab12")}
    assert payloads.connect_positions({"token": "x"}, 10) == {}
    for bad in ({"positions": []}, {"positions": {"a": "x-y"}}, {"positions": {"a": "1-0@"}}, {"positions": {"a": "1-0@a b"}}, {"positions": {f"c{i}": "1-0" for i in range(11)}}):
        with pytest.raises(RealtimeError):
            payloads.connect_positions(bad, 10)


def test_client_event() -> None:
    """Whispers need client-* names and a valid channel; JSON strings are accepted."""
    assert payloads.client_event('{"channel":"private-a","event":"client-x","data":1}', 200) is not None
    for bad in ({"channel": "private-a", "event": "x"}, {"channel": 3, "event": "client-x"}, "{", None):
        assert payloads.client_event(bad, 200) is None


def test_auto_rooms() -> None:
    """Authenticated identities get their user room and one room per role."""
    identity = Identity(user_id="7", roles=frozenset({"b", "a"}))
    assert list(payloads.auto_rooms(Settings(), identity)) == ["private-user.7", "private-role.a", "private-role.b"]


@pytest.mark.parametrize(
    ("any_origin", "origin", "host", "kept"),
    [
        (True, None, "rt.example", True),  # not a browser: no Origin header
        (True, "https://rt.example", "rt.example", True),  # same origin
        (True, "https://RT.example", "rt.example", True),
        (True, "https://evil.example", "rt.example", False),  # any site may connect with '*', its cookies do not count
        (True, "null", "rt.example", False),
        (True, "https://rt.example:444", "rt.example", False),
        (False, "https://app.example", "rt.example", True),  # an origin from the list is trusted with cookies
    ],
)
def test_handshake_cookie(any_origin: bool, origin: str | None, host: str, kept: bool) -> None:
    """With CORS '*' the handshake cookie counts only for same-origin or Origin-less handshakes."""
    environ = {"HTTP_COOKIE": "s=1", "HTTP_HOST": host, **({"HTTP_ORIGIN": origin} if origin else {})}
    assert payloads.handshake_cookie(environ, any_origin) == ("s=1" if kept else None)
    assert payloads.handshake_cookie({"HTTP_HOST": host}, any_origin) is None


def test_disconnect_reasons_are_a_closed_set() -> None:
    """Every value disconnect_reason() can return is in DISCONNECT_REASONS (the namespace binds one metric child each)."""
    for reason in ("client disconnect", "SERVER_DISCONNECT", "ping timeout", "transport close", "transport error", None, "x"):
        assert payloads.disconnect_reason(reason) in payloads.DISCONNECT_REASONS
