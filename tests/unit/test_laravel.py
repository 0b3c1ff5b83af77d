"""Delegated auth, the pure parts: which headers go to Laravel, how its answers are read, who a cache entry is for."""

from __future__ import annotations

import pytest

from realtime_sio.auth.laravel import (
    cache_subject,
    forwarded_headers,
    interpret,
    member_from,
)
from realtime_sio.auth.tokens import ANONYMOUS, Identity
from realtime_sio.members import Member


def test_forwarded_headers_filter_and_defaults() -> None:
    """Hop-by-hop and framing headers are dropped; cookie and XHR markers added unless the client set them."""
    headers = forwarded_headers({"Connection": "close", "host": "x", "Content-Length": "9", "X-CSRF-TOKEN": "t"}, "a=b")
    assert headers == {"X-CSRF-TOKEN": "t", "Cookie": "a=b", "X-Requested-With": "XMLHttpRequest", "Accept": "application/json"}


def test_client_cookie_kept() -> None:
    """A client-supplied cookie (any case) is not replaced by the handshake cookie."""
    assert forwarded_headers({"cookie": "mine=1"}, "handshake=1")["cookie"] == "mine=1"
    assert "Cookie" not in forwarded_headers({"cookie": "mine=1"}, "handshake=1")


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


def test_cache_subject() -> None:
    """JWT user first, else a digest of cookie + Authorization; nothing to go on → not cached."""
    assert cache_subject(Identity(user_id="7"), {}, None) == "u:7"
    a = cache_subject(ANONYMOUS, {}, "s=1")
    assert a is not None and a.startswith("h:") and "s=1" not in a
    assert cache_subject(ANONYMOUS, {"Authorization": "Bearer x"}, "s=1") != a
    assert cache_subject(ANONYMOUS, {}, None) is None
