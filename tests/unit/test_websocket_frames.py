"""RFC 6455 helpers of the lean WebSocket (sio/websocket.py): accept key, key validation, server frame headers."""

from __future__ import annotations

from realtime_sio.sio.websocket import OP_BINARY, OP_TEXT, accept_key, frame, valid_key


def test_accept_key_matches_the_rfc_example() -> None:
    """RFC 6455 §1.3: key dGhlIHNhbXBsZSBub25jZQ== is answered with s3pPLMBiTxaQ9kYGzzhZRbK+xOo=."""
    assert accept_key("dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


def test_only_16_byte_base64_keys_are_valid() -> None:
    """A key is the base64 of exactly 16 bytes."""
    assert valid_key("dGhlIHNhbXBsZSBub25jZQ==")
    assert not valid_key("c2hvcnQ=")
    assert not valid_key("")
    assert not valid_key("????????????????????????")


def test_frames_use_the_shortest_length_encoding() -> None:
    """Payload lengths below 126, below 65536 and above use the 7-bit, 16-bit and 64-bit forms, unmasked and final."""
    assert frame(OP_TEXT, b"hi") == b"\x81\x02hi"
    medium = frame(OP_BINARY, b"x" * 300)
    assert medium[:4] == b"\x82\x7e\x01\x2c" and len(medium) == 304
    large = frame(OP_BINARY, b"x" * 70_000)
    assert large[:2] == b"\x82\x7f" and int.from_bytes(large[2:10], "big") == 70_000
