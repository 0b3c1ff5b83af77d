"""Which /app/{key} upgrades become Pusher connections (pusher/handshake.py)."""

from __future__ import annotations

from realtime_sio.pusher import handshake, messages
from realtime_sio.settings import PusherApp

APP = PusherApp("1", "key-1", "secret")
APPS = {APP.key: APP}


def environ(path: str = "/app/key-1", query: str = "protocol=7&client=js&version=8.4.0", **headers: str) -> dict[str, str]:
    return {"PATH_INFO": path, "QUERY_STRING": query, **{f"HTTP_{k.upper()}": v for k, v in headers.items()}}


def test_app_key_from_path() -> None:
    assert handshake.app_key("/app/key-1") == "key-1"
    for path in ("/app/", "/app/a/b", "/apps/key-1", "/socket.io/"):
        assert handshake.app_key(path) is None


def test_known_app_and_protocol() -> None:
    """A known key with protocol 7 (or none, as Reverb) is admitted; an unknown key is 4001, protocol 99 is 4007."""
    assert handshake.check(environ(), APPS, ()) is APP
    assert handshake.check(environ(query=""), APPS, ()) is APP
    assert handshake.check(environ("/app/other"), APPS, ()) is messages.UNKNOWN_APP
    assert handshake.check(environ(query="protocol=99"), APPS, ()) is messages.UNSUPPORTED_PROTOCOL


def test_origins() -> None:
    """No Origin, same host, *, a listed origin or a Reverb-style host pattern are allowed; others get 4009."""
    assert handshake.origin_allowed(None, "rt.example.com", ())
    assert handshake.origin_allowed("https://rt.example.com", "rt.example.com", ())
    assert handshake.origin_allowed("https://evil.test", "rt.example.com", ("*",))
    assert handshake.origin_allowed("https://app.example.com", "rt", ("https://app.example.com",))
    assert handshake.origin_allowed("https://a.example.com:8443", "rt", ("*.example.com",))
    assert not handshake.origin_allowed("https://evil.test", "rt.example.com", ("https://app.example.com", "*.example.com"))
    refused = handshake.check(environ(origin="https://evil.test", host="rt"), APPS, ("https://app.example.com",))
    assert refused is messages.ORIGIN_NOT_ALLOWED
