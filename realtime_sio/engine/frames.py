"""Sans-I/O RFC 6455 frame codec, server side: client bytes in → events out, and the server's own frames.

No socket, no loop, no clock: :class:`FrameParser` is fed the bytes a client sent and returns what they mean, in the
style of the ``websockets`` library's ``Protocol`` (``receive_data`` then ``events_received``). Every byte-level rule
lives here (masking, opcodes, fragmentation, sizes, UTF-8, close codes), so unit tests drive it with bytes and the
I/O code (:mod:`realtime_sio.engine.connection`) only moves bytes and applies deadlines.

Events, in the order the client sent them:

- ``str`` / ``bytes``: a complete text / binary message (fragments reassembled, text checked as UTF-8);
- :class:`Ping` / :class:`Pong`: control frames (the caller answers a ping with ``frame(OP_PONG, payload)``);
- :class:`Close`: the client's valid close frame; answer it with ``close_frame(event.reply_code)``;
- :class:`ProtocolError`: the client broke the protocol; close with ``close_frame(event.code)``.

``Close`` and ``ProtocolError`` are always the last event: the parser ignores whatever follows them.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass


def _mask_in_place(mask: bytes, data: bytearray) -> None:
    """XOR ``data`` with the repeated 4-byte ``mask`` (RFC 6455 §5.3), as one big-integer XOR done in C."""
    n = len(data)
    if n:
        key = (mask * (n // 4 + 1))[:n]
        data[:] = (int.from_bytes(data, "little") ^ int.from_bytes(key, "little")).to_bytes(n, "little")


_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
OP_CONTINUATION, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
CLOSE_NORMAL, CLOSE_PROTOCOL_ERROR, CLOSE_INVALID_DATA, CLOSE_TOO_BIG = 1000, 1002, 1007, 1009
CLOSE_NO_STATUS = 1005  # what a close frame without a status code means (§7.1.5); never sent on the wire
MAX_FRAME_HEADER = 14  # 2 bytes + 8-byte length + 4-byte mask


def accept_key(key: str) -> str:
    """``Sec-WebSocket-Accept`` for a client's ``Sec-WebSocket-Key`` (RFC 6455 §4.2.2)."""
    return base64.b64encode(hashlib.sha1(key.encode() + _GUID).digest()).decode()


def valid_key(key: str) -> bool:
    """A ``Sec-WebSocket-Key`` must be the base64 form of 16 bytes (RFC 6455 §4.1)."""
    try:
        return len(key) == 24 and len(base64.b64decode(key, validate=True)) == 16
    except ValueError:
        return False


def frame(opcode: int, payload: bytes) -> bytes:
    """An unmasked, final frame as a server sends it (RFC 6455 §5.2)."""
    n = len(payload)
    if n < 126:
        header = bytes((0x80 | opcode, n))
    elif n < 65536:
        header = bytes((0x80 | opcode, 126)) + n.to_bytes(2, "big")
    else:
        header = bytes((0x80 | opcode, 127)) + n.to_bytes(8, "big")
    return header + payload


def close_frame(code: int) -> bytes:
    """The server's close frame with a status code and no reason."""
    return frame(OP_CLOSE, code.to_bytes(2, "big"))


def valid_close_code(code: int) -> bool:
    """A status code a peer may send (§7.4.1, IANA registry): 1000-1003, 1007-1014, 3000-4999.

    1004 is reserved, 1005/1006/1015 must never be sent, 1016-2999 are unassigned: each is a protocol error.
    """
    return 1000 <= code <= 1003 or 1007 <= code <= 1014 or 3000 <= code <= 4999


@dataclass(frozen=True, slots=True)
class Ping:
    """A ping control frame; the server answers with a pong carrying the same payload."""

    payload: bytes


@dataclass(frozen=True, slots=True)
class Pong:
    """A pong control frame (unsolicited or answering a ping)."""

    payload: bytes


@dataclass(frozen=True, slots=True)
class Close:
    """The client's valid close frame: its status (``CLOSE_NO_STATUS`` when it gave none) and UTF-8 reason."""

    code: int
    reason: str = ""

    @property
    def reply_code(self) -> int:
        """The status the server's answering close frame carries: the client's own, or 1000 when it gave none."""
        return CLOSE_NORMAL if self.code == CLOSE_NO_STATUS else self.code


@dataclass(frozen=True, slots=True)
class ProtocolError:
    """The client broke RFC 6455: close the connection with ``code`` (1002, 1007 or 1009); ``reason`` is for logs."""

    code: int
    reason: str


Event = str | bytes | Ping | Pong | Close | ProtocolError


class FrameParser:
    """Turns the bytes a client sends into :data:`Event` values; stops for good after a close or a protocol error."""

    __slots__ = ("_buffer", "_fragments", "_fragments_opcode", "done", "max_size")

    def __init__(self, max_size: int) -> None:
        self.max_size = max_size  # largest message, fragments included (larger: 1009)
        self.done = False  # a Close or ProtocolError was returned: nothing more is parsed
        self._buffer: bytearray | None = None  # the start of a frame still incomplete (None between frames)
        self._fragments: bytearray | None = None  # the message being reassembled from fragments
        self._fragments_opcode = 0

    def feed(self, data: bytes) -> list[Event]:
        """Add bytes received from the client; returns the events they complete (possibly none)."""
        if self.done:
            return []
        buf: bytes | bytearray
        if self._buffer is None:
            buf = data  # the usual case: the read starts with a frame; parsed in place, not copied
        else:
            buf = self._buffer
            buf += data
        events: list[Event] = []
        size = len(buf)
        pos = 0  # start of the next frame; parsed frames are dropped from the buffer once, at the end
        while size - pos >= 2:
            b0, b1 = buf[pos], buf[pos + 1]
            if b0 & 0x70:
                return self._stop(events, CLOSE_PROTOCOL_ERROR, "reserved bits set without an extension")
            if not b1 & 0x80:
                return self._stop(events, CLOSE_PROTOCOL_ERROR, "unmasked client frame")
            opcode = b0 & 0x0F
            length = b1 & 0x7F
            start = pos + 2
            if length == 126:
                if size - pos < 4:
                    break
                length = int.from_bytes(buf[start : start + 2], "big")
                start += 2
            elif length == 127:
                if size - pos < 10:
                    break
                length = int.from_bytes(buf[start : start + 8], "big")
                start += 8
            if opcode >= 0x8 and (length > 125 or not b0 & 0x80):
                return self._stop(events, CLOSE_PROTOCOL_ERROR, "control frame longer than 125 bytes or fragmented")
            fragments = self._fragments
            if length + (len(fragments) if fragments is not None else 0) > self.max_size:
                return self._stop(events, CLOSE_TOO_BIG, f"message over {self.max_size} bytes")
            end = start + 4 + length
            if size < end:
                break
            payload = bytearray(buf[start + 4 : end])
            _mask_in_place(bytes(buf[start : start + 4]), payload)
            pos = end
            if b0 == 0x81 and fragments is None:  # a whole text message: the common case, handled inline
                try:
                    events.append(payload.decode())
                except UnicodeDecodeError:
                    return self._stop(events, CLOSE_INVALID_DATA, "text message is not UTF-8")
                continue
            event = self._frame(b0 & 0x80, opcode, payload)
            if event is None:
                continue
            events.append(event)
            if type(event) is Close or type(event) is ProtocolError:
                self._end()
                return events
        if pos == size:
            self._buffer = None
        elif buf is self._buffer:
            del buf[:pos]
        else:
            self._buffer = bytearray(buf[pos:])
        return events

    def _frame(self, fin: int, opcode: int, payload: bytearray) -> Event | None:
        """The event one unmasked frame completes, or None (a fragment of a message still incomplete)."""
        if opcode == OP_PING:
            return Ping(bytes(payload))
        if opcode == OP_PONG:
            return Pong(bytes(payload))
        if opcode == OP_CLOSE:
            return _close(payload)
        if opcode == OP_CONTINUATION:
            if self._fragments is None:
                return ProtocolError(CLOSE_PROTOCOL_ERROR, "continuation frame without a message to continue")
            self._fragments += payload
            if not fin:
                return None
            opcode, payload = self._fragments_opcode, self._fragments
            self._fragments = None
        elif opcode == OP_TEXT or opcode == OP_BINARY:
            if self._fragments is not None:
                return ProtocolError(CLOSE_PROTOCOL_ERROR, "new message before the fragmented one finished")
            if not fin:
                self._fragments, self._fragments_opcode = payload, opcode
                return None
        else:
            return ProtocolError(CLOSE_PROTOCOL_ERROR, f"reserved opcode {opcode:#x}")
        if opcode == OP_TEXT:
            try:
                return payload.decode()
            except UnicodeDecodeError:
                return ProtocolError(CLOSE_INVALID_DATA, "text message is not UTF-8")
        return bytes(payload)

    def _stop(self, events: list[Event], code: int, reason: str) -> list[Event]:
        events.append(ProtocolError(code, reason))
        self._end()
        return events

    def _end(self) -> None:
        self.done = True
        self._buffer = None
        self._fragments = None


def _close(payload: bytearray) -> Close | ProtocolError:
    """Validate a close frame's body (§5.5.1): empty, or a valid status code and a UTF-8 reason."""
    if not payload:
        return Close(CLOSE_NO_STATUS)
    if len(payload) == 1:
        return ProtocolError(CLOSE_PROTOCOL_ERROR, "close frame with a 1-byte body")
    code = int.from_bytes(payload[:2], "big")
    if not valid_close_code(code):
        return ProtocolError(CLOSE_PROTOCOL_ERROR, f"close code {code} may not be sent")
    try:
        reason = payload[2:].decode()
    except UnicodeDecodeError:
        return ProtocolError(CLOSE_INVALID_DATA, "close reason is not UTF-8")
    return Close(code, reason)
