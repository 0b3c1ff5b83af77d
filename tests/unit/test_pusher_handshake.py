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


def test_an_app_with_its_own_allowed_origins_uses_them_instead_of_cors_origins() -> None:
    """An app's allowed_origins decide for its key (4009 for others, even ones CORS_ORIGINS lists); an app without
    them follows CORS_ORIGINS."""
    own = PusherApp("2", "key-2", "secret", allowed_origins=("https://shop.example.com",))
    apps = {**APPS, own.key: own}
    cors = ("https://app.example.com",)
    assert handshake.check(environ("/app/key-2", origin="https://shop.example.com", host="rt"), apps, cors) is own
    assert handshake.check(environ("/app/key-2", origin="https://app.example.com", host="rt"), apps, cors) is messages.ORIGIN_NOT_ALLOWED
    assert handshake.check(environ("/app/key-1", origin="https://app.example.com", host="rt"), apps, cors) is APP

