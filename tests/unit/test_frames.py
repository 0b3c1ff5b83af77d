"""The sans-I/O RFC 6455 codec (engine/frames.py) fed bytes: messages, control frames and every conformance case."""

from __future__ import annotations

import os

import pytest

from realtime_sio.engine.frames import (
    CLOSE_NO_STATUS,
    OP_BINARY,
    OP_CLOSE,
    OP_CONTINUATION,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    Close,
    FrameParser,
    Ping,
    Pong,
    ProtocolError,
    accept_key,
    close_frame,
    frame,
    valid_close_code,
    valid_key,
)


def client_frame(opcode: int, payload: bytes, fin: bool = True, masked: bool = True, rsv: int = 0, length: int | None = None) -> bytes:
    """A frame as a client sends it: masked, with the shortest length form (or ``length`` claimed instead)."""
    n = len(payload) if length is None else length
    first = (0x80 if fin else 0) | rsv | opcode
    bit = 0x80 if masked else 0
    if n < 126:
        head = bytes((first, bit | n))
    elif n < 65536:
        head = bytes((first, bit | 126)) + n.to_bytes(2, "big")
    else:
        head = bytes((first, bit | 127)) + n.to_bytes(8, "big")
    if not masked:
        return head + payload
    mask = os.urandom(4)
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def close_body(code: int, reason: bytes = b"") -> bytes:
    return code.to_bytes(2, "big") + reason


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
    assert close_frame(1002) == b"\x88\x02\x03\xea"


def test_text_and_binary_messages_become_str_and_bytes() -> None:
    """A masked text frame is a str, a binary frame bytes; several frames in one read are several events, in order."""
    parser = FrameParser(1000)
    data = client_frame(OP_TEXT, "héllo".encode()) + client_frame(OP_BINARY, b"\x00\x01") + client_frame(OP_TEXT, b"")
    assert parser.feed(data) == ["héllo", b"\x00\x01", ""]


def test_a_frame_split_across_reads_is_returned_once_complete() -> None:
    """Bytes fed one at a time give nothing until the frame is whole, whatever the length form."""
    for size in (5, 300, 70_000):
        parser = FrameParser(100_000)
        data = client_frame(OP_BINARY, b"x" * size)
        events = [event for i in range(len(data)) for event in parser.feed(data[i : i + 1])]
        assert events == [b"x" * size], size


def test_fragments_are_reassembled_with_control_frames_between_them() -> None:
    """A message in three fragments is one event; a ping between fragments is answered in its place."""
    parser = FrameParser(1000)
    data = (
        client_frame(OP_TEXT, b"he", fin=False)
        + client_frame(OP_PING, b"mid")
        + client_frame(OP_CONTINUATION, b"ll", fin=False)
        + client_frame(OP_CONTINUATION, b"o")
    )
    assert parser.feed(data) == [Ping(b"mid"), "hello"]


def test_pings_and_pongs_are_events_with_their_payload() -> None:
    """Ping and pong frames carry their payload out; the caller answers a ping."""
    assert FrameParser(1000).feed(client_frame(OP_PING, b"p") + client_frame(OP_PONG, b"q")) == [Ping(b"p"), Pong(b"q")]


def test_valid_close_frames_are_echoed() -> None:
    """A close with a valid code is answered with the same code; an empty close is answered with 1000."""
    for code in (1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999, 4000, 4999):
        [event] = FrameParser(1000).feed(client_frame(OP_CLOSE, close_body(code, b"bye")))
        assert event == Close(code, "bye") and isinstance(event, Close) and event.reply_code == code, code
    [empty] = FrameParser(1000).feed(client_frame(OP_CLOSE, b""))
    assert empty == Close(CLOSE_NO_STATUS) and isinstance(empty, Close) and empty.reply_code == 1000


@pytest.mark.parametrize("code", [0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535])
def test_close_codes_that_may_not_be_sent_are_a_protocol_error(code: int) -> None:
    """RFC 6455 §7.4.1: reserved, never-sent and unassigned close codes are answered with 1002, not echoed."""
    assert not valid_close_code(code)
    [event] = FrameParser(1000).feed(client_frame(OP_CLOSE, close_body(code)))
    assert isinstance(event, ProtocolError) and event.code == 1002, event


def test_close_with_a_one_byte_body_is_a_protocol_error() -> None:
    """A close body is empty or at least the 2-byte code (§5.5.1): one byte is 1002, not a normal close."""
    [event] = FrameParser(1000).feed(client_frame(OP_CLOSE, b"\x03"))
    assert isinstance(event, ProtocolError) and event.code == 1002


def test_close_reason_that_is_not_utf8_is_invalid_data() -> None:
    """A close reason must be UTF-8 (§5.5.1): otherwise 1007."""
    [event] = FrameParser(1000).feed(client_frame(OP_CLOSE, close_body(1000, b"\xff\xfe")))
    assert isinstance(event, ProtocolError) and event.code == 1007


@pytest.mark.parametrize(
    ("name", "data", "code"),
    [
        ("unmasked client frame", client_frame(OP_TEXT, b"40", masked=False), 1002),
        ("reserved bit set", client_frame(OP_TEXT, b"40", rsv=0x40), 1002),
        ("reserved data opcode", client_frame(0x3, b"x"), 1002),
        ("reserved control opcode", client_frame(0xB, b"x"), 1002),
        ("continuation without a start", client_frame(OP_CONTINUATION, b"x"), 1002),
        ("fragmented control frame", client_frame(OP_PING, b"x", fin=False), 1002),
        ("control frame over 125 bytes", client_frame(OP_PING, b"x" * 126), 1002),
        ("new message inside a fragmented one", client_frame(OP_TEXT, b"a", fin=False) + client_frame(OP_TEXT, b"b"), 1002),
        ("text that is not UTF-8", client_frame(OP_TEXT, b"42\xff\xfe"), 1007),
        ("fragmented text that is not UTF-8", client_frame(OP_TEXT, b"\xe2", fin=False) + client_frame(OP_CONTINUATION, b"\x28"), 1007),
    ],
)
def test_protocol_violations_give_their_close_code(name: str, data: bytes, code: int) -> None:
    """Each RFC 6455 violation is one ProtocolError event carrying the close code the RFC assigns."""
    events = FrameParser(1000).feed(data)
    assert len(events) == 1 and isinstance(events[0], ProtocolError) and events[0].code == code, (name, events)


def test_oversized_messages_are_refused_from_the_header_alone() -> None:
    """A frame announcing more than max_size is 1009 before its payload arrives; so are fragments adding up past it."""
    parser = FrameParser(100)
    [event] = parser.feed(client_frame(OP_BINARY, b"", length=1_000_000)[:10])
    assert isinstance(event, ProtocolError) and event.code == 1009
    fragments = client_frame(OP_BINARY, b"x" * 60, fin=False) + client_frame(OP_CONTINUATION, b"x" * 60)
    [event] = FrameParser(100).feed(fragments)
    assert isinstance(event, ProtocolError) and event.code == 1009


def test_nothing_is_parsed_after_a_close_or_an_error() -> None:
    """Close and ProtocolError end the stream: frames after them in the same read, or later, are ignored."""
    parser = FrameParser(1000)
    events = parser.feed(client_frame(OP_TEXT, b"a") + client_frame(OP_CLOSE, close_body(1000)) + client_frame(OP_TEXT, b"b"))
    assert events == ["a", Close(1000)] and parser.done
    assert parser.feed(client_frame(OP_TEXT, b"c")) == []
    broken = FrameParser(1000)
    assert isinstance(broken.feed(client_frame(OP_TEXT, b"x", masked=False))[0], ProtocolError)
    assert broken.feed(client_frame(OP_TEXT, b"y")) == []
