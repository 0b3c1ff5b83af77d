"""Parsing Laravel RedisBroadcaster messages: byte-exact payloads accepted, every malformed shape rejected by reason."""

from __future__ import annotations

import pytest

from realtime_sio.publish.redis_message import (
    REASONS,
    Rejected,
    parse,
    pattern_for,
    preview,
    strip_prefix,
)

PREFIX = "laravel_database_"
# What RedisBroadcaster publishes for broadcast(new OrderShipped($order))->toOthers() (protocol reference §3.1).
LARAVEL = b'{"event":"App\\\\Events\\\\OrderShipped","data":{"order":{"id":1},"socket":"AbC123xyz"},"socket":"AbC123xyz"}'


def _parse(payload: bytes, channel: bytes = b"laravel_database_private-orders.1", max_bytes: int = 10_000) -> object:
    return parse(channel, payload, PREFIX, max_bytes, 200)


def _reason(payload: bytes, **kwargs: object) -> str:
    with pytest.raises(Rejected) as info:
        _parse(payload, **kwargs)  # type: ignore[arg-type]
    return info.value.reason


def test_laravel_payload() -> None:
    """The byte-exact Laravel payload yields channel, event, data (socket kept inside data) and the excluded sid."""
    msg = parse(b"laravel_database_private-orders.1", LARAVEL, PREFIX, 10_000, 200)
    assert msg.channel == "private-orders.1"
    assert msg.event == "App\\Events\\OrderShipped"
    assert msg.data == {"order": {"id": 1}, "socket": "AbC123xyz"}
    assert msg.except_sid == "AbC123xyz"


def test_null_socket_means_everyone() -> None:
    """socket null (no toOthers) excludes nobody."""
    msg = _parse(b'{"event":"E","data":{"socket":null},"socket":null}')
    assert msg.except_sid is None  # type: ignore[attr-defined]


def test_missing_socket_key() -> None:
    """A message without the socket key (other publishers) excludes nobody."""
    assert _parse(b'{"event":"E","data":[]}').except_sid is None  # type: ignore[attr-defined]


def test_empty_data_array() -> None:
    """PHP's empty payload array arrives as [] and is delivered as a list."""
    assert _parse(b'{"event":"E","data":[],"socket":null}').data == []  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"not json", "not_json"),
        (b"\xff\xfe", "not_json"),
        (b'["event","data"]', "not_object"),
        (b'"just a string"', "not_object"),
        (b'{"data":{}}', "event_invalid"),
        (b'{"event":42,"data":{}}', "event_invalid"),
        (b'{"event":"","data":{}}', "event_invalid"),
        (b'{"event":"' + b"x" * 201 + b'","data":{}}', "event_invalid"),
        (b'{"event":"E"}', "data_missing"),
        (b'{"event":"connect","data":{}}', "event_reserved"),
        (b'{"event":"newListener","data":{}}', "event_reserved"),
        (b'{"event":"E","data":{},"socket":123}', "socket_invalid"),
        (b'{"event":"E","data":{},"socket":["a"]}', "socket_invalid"),
    ],
)
def test_rejections(payload: bytes, reason: str) -> None:
    """Each malformed payload is rejected with its closed-set reason."""
    assert _reason(payload) == reason
    assert reason in REASONS


def test_too_large_checked_before_decoding() -> None:
    """A payload over the limit is rejected as too_large without being parsed."""
    assert _reason(b"{" + b" " * 200 + b"}", max_bytes=100) == "too_large"


@pytest.mark.parametrize(
    "channel",
    [b"laravel_database_", b"laravel_database_has space", b"laravel_database_\xff", b"other_private-x", b"laravel_database_" + b"a" * 201],
)
def test_channel_invalid(channel: bytes) -> None:
    """Empty, oddly spelled, non-UTF-8, unprefixed or over-long channel names are rejected."""
    assert _reason(b'{"event":"E","data":{}}', channel=channel) == "channel_invalid"


@pytest.mark.parametrize(
    ("prefix", "channel", "expected"),
    [
        ("laravel_database_", "laravel_database_private-a.1", "private-a.1"),
        ("laravel-database-", "laravel-database-presence-chat.1", "presence-chat.1"),
        ("", "news", "news"),
        ("my[app]_", "my[app]_private-a", "private-a"),
    ],
)
def test_strip_prefix(prefix: str, channel: str, expected: str) -> None:
    """The configured prefix is removed exactly once from the front."""
    assert strip_prefix(channel.encode(), prefix) == expected


@pytest.mark.parametrize(
    ("prefix", "pattern"),
    [("laravel_database_", "laravel_database_*"), ("", "*"), ("a*b?[c]\\", "a\\*b\\?\\[c\\]\\\\*")],
)
def test_pattern_escapes_glob(prefix: str, pattern: str) -> None:
    """Glob characters in the prefix are escaped so PSUBSCRIBE matches it literally."""
    assert pattern_for(prefix) == pattern


def test_preview_is_short() -> None:
    """Log previews never carry more than a short prefix of the payload."""
    assert len(preview(b"x" * 10_000)) <= 48
    assert preview(b"\xff" * 3) == "\ufffd" * 3
