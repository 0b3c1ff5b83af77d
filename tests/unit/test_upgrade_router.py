"""Which request heads the router upgrades itself (engine/upgrade_router.py); everything doubtful goes to aiohttp."""

from __future__ import annotations

import json
from typing import Any

from realtime_sio import errors
from realtime_sio.engine.upgrade_router import (
    Reply,
    error_reply,
    head_too_large,
    is_engineio_websocket,
    is_pusher_websocket,
    parse_head,
    polling_body_length,
    post_body_length,
    render_reply,
    wrong_websocket_version,
)

PATH = "/socket.io/"
GOOD = (
    b"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n"
    b"Connection: keep-alive, Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13"
)


def routed(head: bytes) -> bool:
    parsed = parse_head(head)
    return parsed is not None and is_engineio_websocket(*parsed, PATH)


def test_parse_head_builds_a_wsgi_environ() -> None:
    """Request line and headers become REQUEST_METHOD/PATH_INFO/QUERY_STRING and HTTP_* (repeated ones joined)."""
    parsed = parse_head(GOOD + b"\r\nCookie: a=1\r\ncookie: b=2")
    assert parsed is not None
    method, path, version, environ = parsed
    assert (method, path, version) == ("GET", PATH, "HTTP/1.1")
    assert environ["QUERY_STRING"] == "EIO=4&transport=websocket"
    assert environ["HTTP_SEC_WEBSOCKET_VERSION"] == "13"
    assert environ["HTTP_COOKIE"] == "a=1,b=2"


def test_a_valid_engineio_upgrade_is_routed() -> None:
    """The complete upgrade to the Engine.IO path with transport=websocket is served by the lean WebSocket."""
    assert routed(GOOD)


def replace(old: bytes, new: bytes) -> bytes:
    assert old in GOOD
    return GOOD.replace(old, new)


def test_anything_else_goes_to_aiohttp() -> None:
    """Other methods, paths, versions, transports, keys, bodies and malformed heads are aiohttp's to answer."""
    cases: dict[str, Any] = {
        "POST": replace(b"GET ", b"POST "),
        "other path": replace(b"/socket.io/?", b"/other/?"),
        "HTTP/1.0": replace(b"HTTP/1.1", b"HTTP/1.0"),
        "polling": replace(b"transport=websocket", b"transport=polling"),
        "no Upgrade": replace(b"Upgrade: websocket\r\n", b""),
        "no Connection upgrade": replace(b"Connection: keep-alive, Upgrade", b"Connection: keep-alive"),
        "version 8": replace(b"Version: 13", b"Version: 8"),
        "short key": replace(b"dGhlIHNhbXBsZSBub25jZQ==", b"c2hvcnQ="),
        "key not base64": replace(b"dGhlIHNhbXBsZSBub25jZQ==", b"!!!!!!!!!!!!!!!!!!!!!!!="),
        "body": GOOD + b"\r\nContent-Length: 3",
        "header without colon": GOOD + b"\r\nnot a header",
        "space before colon": GOOD + b"\r\nX-A : b",
        "bad request line": replace(b"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1", b"GET /socket.io/"),
    }
    for name, head in cases.items():
        assert not routed(head), name


def test_only_upgrades_to_the_engineio_path_with_another_version_get_426() -> None:
    """Sec-WebSocket-Version other than 13 (or none) on an upgrade to the Engine.IO path is refused; 13 is not, nor
    another path or a request without Upgrade: websocket."""

    def refused(head: bytes) -> bool:
        parsed = parse_head(head)
        assert parsed is not None
        return wrong_websocket_version(parsed[0], parsed[1], parsed[3], PATH)

    assert not refused(GOOD)
    assert refused(replace(b"Version: 13", b"Version: 8"))
    assert refused(replace(b"\r\nSec-WebSocket-Version: 13", b""))
    assert not refused(replace(b"Version: 13", b"Version: 8").replace(b"/socket.io/?", b"/other/?"))
    assert not refused(replace(b"Version: 13", b"Version: 8").replace(b"Upgrade: websocket\r\n", b""))


def test_refusals_are_catalogue_errors_that_end_the_connection() -> None:
    """A refusal is an HTTP/1.1 answer with the catalogue status, Connection: close and the JSON error body."""
    data = render_reply(error_reply(errors.WEBSOCKET_VERSION, "expected 13", [("Sec-WebSocket-Version", "13")]))
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    assert lines[0] == b"HTTP/1.1 426 Upgrade Required"
    assert b"Connection: close" in lines and b"Sec-WebSocket-Version: 13" in lines
    assert f"Content-Length: {len(body)}".encode() in lines
    assert json.loads(body)["error"] == {**errors.WEBSOCKET_VERSION.payload("expected 13")}


PUSHER = (
    b"GET /app/key-1?protocol=7&client=js&version=8.4.0&flash=false HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n"
    b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13"
)


def test_pusher_upgrades_are_routed_by_prefix() -> None:
    """A valid upgrade under /app/ is the Pusher server's; a plain GET, a bare /app/ or a broken upgrade is aiohttp's."""
    parsed = parse_head(PUSHER)
    assert parsed is not None and is_pusher_websocket(*parsed, "/app/")
    assert not is_engineio_websocket(*parsed, PATH)
    for head in (
        PUSHER.replace(b"Upgrade: websocket\r\n", b""),
        PUSHER.replace(b"/app/key-1", b"/app/"),
        PUSHER.replace(b"HTTP/1.1", b"HTTP/1.0"),
        PUSHER.replace(b"dGhlIHNhbXBsZSBub25jZQ==", b"short"),
    ):
        other = parse_head(head)
        assert other is not None and not is_pusher_websocket(*other, "/app/")


def test_pusher_wrong_version_is_426() -> None:
    """Version 8 under /app/ is answered 426 when the Pusher endpoint is served, else left to aiohttp."""
    parsed = parse_head(PUSHER.replace(b"Version: 13", b"Version: 8"))
    assert parsed is not None
    assert wrong_websocket_version(parsed[0], parsed[1], parsed[3], PATH, "/app/")
    assert not wrong_websocket_version(parsed[0], parsed[1], parsed[3], PATH)


def polling(head: bytes, max_body: int = 1000) -> int | None:
    parsed = parse_head(head)
    assert parsed is not None
    return polling_body_length(*parsed, PATH, max_body)


def test_plain_polling_requests_are_served_by_the_router_with_their_body_length() -> None:
    """A polling GET (no body) and a polling POST with a Content-Length within the limit are the router's."""
    assert polling(b"GET /socket.io/?EIO=4&transport=polling&t=x HTTP/1.1\r\nHost: a") == 0
    assert polling(b"GET /socket.io/?EIO=4&transport=polling&sid=abc HTTP/1.1\r\nHost: a\r\nContent-Length: 0") == 0
    assert polling(b"POST /socket.io/?EIO=4&transport=polling&sid=abc HTTP/1.1\r\nHost: a\r\nContent-Length: 2") == 2


def test_doubtful_polling_requests_go_to_aiohttp() -> None:
    """HTTP/1.0, other paths or transports, JSONP, upgrades, chunked, Expect, missing/odd/oversized lengths,
    a GET with a body and OPTIONS are left to aiohttp (which answers them as before)."""
    for head in (
        b"GET /socket.io/?EIO=4&transport=polling HTTP/1.0\r\nHost: a",
        b"GET /other/?EIO=4&transport=polling HTTP/1.1\r\nHost: a",
        b"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: a",
        b"GET /socket.io/?EIO=4&transport=pollingx HTTP/1.1\r\nHost: a",
        b"GET /socket.io/?EIO=4&transport=polling&j=0 HTTP/1.1\r\nHost: a",
        b"GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: a\r\nUpgrade: websocket",
        b"GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: a\r\nContent-Length: 3",
        b"POST /socket.io/?EIO=4&transport=polling&sid=a HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked",
        b"POST /socket.io/?EIO=4&transport=polling&sid=a HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 2",
        b"POST /socket.io/?EIO=4&transport=polling&sid=a HTTP/1.1\r\nHost: a",
        b"POST /socket.io/?EIO=4&transport=polling&sid=a HTTP/1.1\r\nHost: a\r\nContent-Length: 0",
        b"POST /socket.io/?EIO=4&transport=polling&sid=a HTTP/1.1\r\nHost: a\r\nContent-Length: +2",
        b"POST /socket.io/?EIO=4&transport=polling&sid=a HTTP/1.1\r\nHost: a\r\nContent-Length: \xc2\xb2",
        b"POST /socket.io/?EIO=4&transport=polling&sid=a HTTP/1.1\r\nHost: a\r\nContent-Length: 1001",
        b"OPTIONS /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: a",
    ):
        assert polling(head) is None, head


def test_a_kept_alive_answer_has_no_connection_close() -> None:
    """A polling answer leaves the connection open for the next request; refusals still close it."""
    reply = Reply("200 OK", [("Content-Type", "text/plain; charset=UTF-8")], b"6")
    kept = render_reply(reply, keep_alive=True)
    assert kept.startswith(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n") and b"Connection: close" not in kept
    assert kept.endswith(b"\r\n\r\n6")
    assert b"Connection: close" in render_reply(reply)



def test_heads_over_the_limit_are_refused_complete_or_not() -> None:
    """431 for a complete head longer than the limit (even all in one read) and for an unfinished one past it; a
    head of exactly the limit, blank line included, is accepted."""
    limit = 16_384
    big = GOOD + b"\r\nX-Filler: " + b"a" * 20_000 + b"\r\n\r\n"
    assert head_too_large(len(big), big.find(b"\r\n\r\n"), limit)  # complete, arrived in one read
    assert head_too_large(limit + 1, -1, limit)  # no blank line yet, already past the limit
    assert not head_too_large(limit, -1, limit)  # no blank line yet, still within it
    assert not head_too_large(limit, limit - 4, limit)  # exactly the limit
    assert head_too_large(limit + 1, limit - 3, limit)
    small = GOOD + b"\r\n\r\n"
    assert not head_too_large(len(small), small.find(b"\r\n\r\n"), limit)


def test_plain_posts_to_a_served_route_are_served_by_the_router_with_their_body_length() -> None:
    """POST /api/v1/events over HTTP/1.1 with a Content-Length up to the limit is the router's (0 included: its handler
    answers the empty body)."""
    routes = {"/api/v1/events": object()}
    for length in (0, 38, 1000):
        parsed = parse_head(b"POST /api/v1/events HTTP/1.1\r\nHost: a\r\nContent-Length: %d" % length)
        assert parsed is not None and post_body_length(*parsed, routes, 1000) == length


def test_doubtful_posts_and_other_routes_go_to_aiohttp() -> None:
    """Another path or method, HTTP/1.0, chunked, Expect, no or a bad Content-Length, or one over the limit."""
    routes = {"/api/v1/events": object()}
    heads = [
        b"POST /api/v1/other HTTP/1.1\r\nContent-Length: 2",
        b"GET /api/v1/events HTTP/1.1",
        b"POST /api/v1/events HTTP/1.0\r\nContent-Length: 2",
        b"POST /api/v1/events HTTP/1.1\r\nTransfer-Encoding: chunked",
        b"POST /api/v1/events HTTP/1.1\r\nContent-Length: 2\r\nExpect: 100-continue",
        b"POST /api/v1/events HTTP/1.1",
        b"POST /api/v1/events HTTP/1.1\r\nContent-Length: -2",
        b"POST /api/v1/events HTTP/1.1\r\nContent-Length: 1001",
    ]
    for head in heads:
        parsed = parse_head(head)
        assert parsed is not None and post_body_length(*parsed, routes, 1000) is None, head
