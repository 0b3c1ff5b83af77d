"""Delegated auth, the pure parts: which headers go to Laravel, how its answers are read, who a cache entry is for."""

from __future__ import annotations

import pytest

from realtime_sio.auth.laravel import (
    cache_key,
    forwarded_headers,
    interpret,
    member_from,
)
from realtime_sio.members import Member


def test_forwarded_headers_filter_and_defaults() -> None:
    """Only allow-listed headers pass, in canonical spelling; cookie and XHR markers are added unless given."""
    headers = forwarded_headers({"Connection": "close", "host": "x", "Content-Length": "9", "x-csrf-token": "t"}, "a=b")
    assert headers == {"X-CSRF-TOKEN": "t", "Cookie": "a=b", "X-Requested-With": "XMLHttpRequest", "Accept": "application/json"}


def test_client_cookie_kept() -> None:
    """A client-supplied cookie (any case) is not replaced by the handshake cookie."""
    assert forwarded_headers({"cookie": "mine=1"}, "handshake=1")["Cookie"] == "mine=1"


@pytest.mark.parametrize(
    "name",
    ["X-Forwarded-For", "X-Real-IP", "Forwarded", "X-Forwarded-Host", "Host :", "Cookie ", " Authorization", "X-Requested-With", "X-Custom"],
)
def test_headers_outside_the_allow_list_are_dropped(name: str) -> None:
    """Spoofable proxy headers, names with stray spaces and anything not allow-listed never reach Laravel."""
    headers = forwarded_headers({name: "1.2.3.4"}, None)
    assert headers == {"X-Requested-With": "XMLHttpRequest", "Accept": "application/json"}


@pytest.mark.parametrize("value", ["a\r\nX-Evil: 1", "a\nb", "a\rb", "a\x00b", "caf\u00e9", "\udcff", "x" * 8193])
def test_header_values_with_controls_or_non_ascii_are_dropped(value: str) -> None:
    """A value aiohttp would refuse (CR/LF, NUL, non-ASCII, oversize) is dropped, client's and handshake's alike."""
    assert "Authorization" not in forwarded_headers({"Authorization": value}, None)
    assert "Cookie" not in forwarded_headers({}, value)


@pytest.mark.parametrize(
    ("channel", "status", "body", "expected"),
    [
        ("private-a", 200, b"true", (200, None)),
        ("private-a", 200, b'{"auth":"k:sig"}', (200, None)),
        ("presence-a", 200, b"true", (200, None)),
        ("presence-a", 200, b'{"channel_data":{"user_id":1,"user_info":{"n":1}}}', (200, Member(1, {"n": 1}))),
        ("presence-a", 200, b'{"channel_data":"{\\"user_id\\":\\"u1\\"}"}', (200, Member("u1", None))),
        ("presence-a", 200, b'{"channel_data":{"user_info":{}}}', (502, None)),
        ("presence-a", 200, b'{"channel_data":"not json"}', (502, None)),
        ("private-a", 200, b"<html>", (502, None)),
        ("private-a", 200, b"false", (502, None)),
        ("private-a", 403, b"true", (403, None)),
        ("private-a", 419, b"", (419, None)),
    ],
)
def test_interpret(channel: str, status: int, body: bytes, expected: tuple[int, Member | None]) -> None:
    """Laravel's answers map to (status, member) as the module docstring promises."""
    answer = interpret(channel, status, body)
    assert (answer.status, answer.member) == expected


@pytest.mark.parametrize("user_id", [True, None, "", 1.5, [1]])
def test_member_needs_usable_user_id(user_id: object) -> None:
    """user_id must be a non-empty string or an integer."""
    assert member_from({"user_id": user_id}) is None


def test_cache_key_covers_exactly_what_was_forwarded() -> None:
    """The key changes with the channel and with any forwarded header; without cookie or Authorization: not cached."""
    base = forwarded_headers({}, "s=1")
    key = cache_key("private-a", base)
    assert key is not None and "s=1" not in key
    assert cache_key("private-b", base) != key
    assert cache_key("private-a", forwarded_headers({"X-CSRF-TOKEN": "t"}, "s=1")) != key
    assert cache_key("private-a", forwarded_headers({"Authorization": "Bearer x"}, "s=1")) != key
    assert cache_key("private-a", forwarded_headers({}, "s=1")) == key
    assert cache_key("private-a", forwarded_headers({"X-CSRF-TOKEN": "t"}, None)) is None
