"""The server side of one RFC 6455 WebSocket on a raw asyncio transport, with the interface engineio's socket uses.

aiohttp serves a WebSocket with a request object, a request handler (HTTP parser, payload queue, keep-alive state),
a ``WebSocketResponse``, a reader, a writer and a data queue, and a task awaiting the handler: about 15 KB per idle
connection here, more than Node's socket.io spends on a whole connection (docs/performance.md). An Engine.IO socket
needs none of that once the upgrade is done, only ``wait()`` (next message), ``send()`` and ``close()``: this class is
those three on the transport itself. :mod:`realtime_sio.sio.upgrade_router` hands a connection here after it read a
valid Engine.IO WebSocket upgrade request; everything else stays with aiohttp.

Protocol coverage (server side, no extensions): masked client frames only, text/binary/continuation messages with a
size limit (close 1009), UTF-8 checked text (1007), ping answered with pong, close answered and the transport ended,
reserved bits or opcodes refused (1002). Flow control: reading pauses while unread messages pile up, and ``send``
waits while the transport's write buffer is above its high-water mark.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
from collections import deque
from collections.abc import Callable

try:  # aiohttp's C helper; the fallback is the same XOR in pure Python
    from aiohttp._websocket.helpers import websocket_mask as _mask_in_place
except ImportError:  # pragma: no cover - aiohttp always ships it

    def _mask_in_place(mask: bytes, data: bytearray) -> None:
        for i in range(len(data)):
            data[i] ^= mask[i & 3]


_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
OP_CONTINUATION, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
CLOSE_NORMAL, CLOSE_PROTOCOL_ERROR, CLOSE_INVALID_DATA, CLOSE_TOO_BIG = 1000, 1002, 1007, 1009
_LINGER_SECONDS = 5.0  # after our close frame, how long the client has to close its side
_MAX_UNREAD = 32  # messages buffered before reading pauses (the reader is the socket's own read loop)


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


class WebSocketConnection(asyncio.Protocol):
    """One accepted WebSocket: frame parsing in ``data_received``, messages handed out by ``wait()``."""

    __slots__ = (
        "_accepted",
        "_backlog_full",
        "_buffer",
        "_closed",
        "_drain",
        "_fragments",
        "_fragments_opcode",
        "_linger",
        "_messages",
        "_on_end",
        "_on_message",
        "_paused_reading",
        "_waiter",
        "_write_paused",
        "close_code",
        "max_size",
        "transport",
    )

    def __init__(self, transport: asyncio.Transport, max_size: int, initial: bytes = b"") -> None:
        self.transport = transport
        self.max_size = max_size
        self.close_code: int | None = None
        self._buffer = bytearray(initial)  # bytes after the request head: parsed once the upgrade is accepted
        self._accepted = False
        self._linger: asyncio.TimerHandle | None = None  # after our close frame: abort if the client never closes
        self._messages: deque[str | bytes | None] | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._fragments: bytearray | None = None
        self._fragments_opcode = 0
        self._closed = False  # no more messages will arrive (close frame, protocol error or connection lost)
        self._backlog_full = False  # the reader asked for a pause (unhandled messages piled up)
        self._paused_reading = False  # the transport's reading is paused (backlog full or write buffer full)
        self._write_paused = False
        self._drain: asyncio.Future[None] | None = None
        self._on_message: Callable[[str | bytes], None] | None = None
        self._on_end: Callable[[], None] | None = None

    # -- asyncio.Protocol -------------------------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:  # pragma: no cover - set_protocol, not this
        pass

    def data_received(self, data: bytes) -> None:
        if self._closed:
            return
        self._buffer += data
        if self._accepted:
            self._parse()
        elif len(self._buffer) > self.max_size + 14:  # more than one largest frame ahead of the 101: wait for it
            self.pause_reading()

    def eof_received(self) -> bool | None:
        self._finish(None)
        return False  # let the transport close itself

    def connection_lost(self, exc: Exception | None) -> None:
        if self._linger is not None:
            self._linger.cancel()
            self._linger = None
        self._finish(None)
        drain = self._drain
        if drain is not None and not drain.done():
            drain.set_exception(ConnectionResetError("connection lost"))

    def pause_writing(self) -> None:
        # Replies (acks, pongs) pile up for a client that sends but does not read: stop reading its requests until
        # the buffer drains, as TCP itself would. Broadcasts are bounded separately (MAX_BUFFERED_BYTES, fanout.py).
        self._write_paused = True
        self._apply_reading()

    def resume_writing(self) -> None:
        self._write_paused = False
        self._apply_reading()
        drain = self._drain
        if drain is not None and not drain.done():
            drain.set_result(None)

    def accept(self, key: str) -> None:
        """Answer the upgrade with 101 (RFC 6455 §4.2.2), then read frames, including any sent ahead of it."""
        if self._accepted or self.transport.is_closing():
            return
        self._accepted = True
        self.resume_reading()
        self.transport.write(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Accept: " + accept_key(key).encode() + b"\r\n\r\n"
        )
        self._parse()

    # -- what engineio's socket calls --------------------------------------------------------------------------------

    async def wait(self) -> str | bytes | None:
        """The next message (``str`` for text, ``bytes`` for binary), or ``None`` once the connection is done."""
        while not self._messages:
            if self._closed:
                return None
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        message = self._messages.popleft()
        if message is None:
            self._messages.append(None)  # stays "done" for later calls
        elif self._backlog_full and len(self._messages) < _MAX_UNREAD // 2:
            self.resume_reading()
        return message

    @property
    def ended(self) -> bool:
        """No more messages will arrive (a close frame, a protocol error, the connection lost)."""
        return self._closed

    async def send(self, message: str | bytes) -> None:
        if self.close_code is not None or self.transport.is_closing():
            raise ConnectionResetError("WebSocket is closed")
        self.write_message(message)
        if self._write_paused:
            self._drain = asyncio.get_running_loop().create_future()
            try:
                await self._drain
            finally:
                self._drain = None

    async def close(self, code: int = CLOSE_NORMAL) -> None:
        """Send a close frame (once) and end the transport after what is buffered has been written."""
        self._fail(code)

    def deliver_to(self, on_message: Callable[[str | bytes], None], on_end: Callable[[], None]) -> None:
        """Switch from ``wait()`` to callbacks: messages already read first, then each one as it arrives.

        ``on_end`` runs once, when no more messages will come. The receiver paces reading itself with
        :meth:`pause_reading` / :meth:`resume_reading`. No task waits on an idle connection in this mode.
        """
        self._on_message, self._on_end = on_message, on_end
        pending, self._messages = self._messages, None
        self.resume_reading()
        while pending:
            message = pending.popleft()
            if message is None:
                on_end()
                return
            on_message(message)

    def pause_reading(self) -> None:
        """The reader has enough unhandled messages: read no more until :meth:`resume_reading`."""
        self._backlog_full = True
        self._apply_reading()

    def resume_reading(self) -> None:
        self._backlog_full = False
        self._apply_reading()

    def _apply_reading(self) -> None:
        """Reading is paused while the backlog is full or the write buffer is above its high-water mark."""
        pause = self._backlog_full or self._write_paused
        if pause == self._paused_reading or self.transport.is_closing():
            return
        self._paused_reading = pause
        if pause:
            self.transport.pause_reading()
        else:
            self.transport.resume_reading()

    def write_message(self, message: str | bytes) -> None:
        """Frame and write one message (text for ``str``, binary for ``bytes``) unless the connection is closing."""
        self.write(frame(OP_TEXT, message.encode()) if isinstance(message, str) else frame(OP_BINARY, message))

    def write(self, data: bytes) -> None:
        """Write bytes (prebuilt frames) unless the connection is closing."""
        if self.close_code is None and not self.transport.is_closing():
            self.transport.write(data)

    # -- frames ------------------------------------------------------------------------------------------------------

    def _parse(self) -> None:
        buf = self._buffer
        while len(buf) >= 2:
            b0, b1 = buf[0], buf[1]
            opcode = b0 & 0x0F
            if b0 & 0x70 or not b1 & 0x80:  # reserved bits without an extension, or an unmasked client frame
                self._fail(CLOSE_PROTOCOL_ERROR)
                return
            length = b1 & 0x7F
            start = 2
            if length == 126:
                if len(buf) < 4:
                    return
                length = int.from_bytes(buf[2:4], "big")
                start = 4
            elif length == 127:
                if len(buf) < 10:
                    return
                length = int.from_bytes(buf[2:10], "big")
                start = 10
            if opcode >= 0x8 and (length > 125 or not b0 & 0x80):
                self._fail(CLOSE_PROTOCOL_ERROR)  # control frames are short and never fragmented
                return
            pending = len(self._fragments) if self._fragments is not None else 0
            if length + pending > self.max_size:
                self._fail(CLOSE_TOO_BIG)
                return
            end = start + 4 + length
            if len(buf) < end:
                return
            mask = bytes(buf[start : start + 4])
            payload = bytearray(buf[start + 4 : end])
            del buf[:end]
            _mask_in_place(mask, payload)
            if not self._frame(b0 & 0x80, opcode, payload):
                return

    def _frame(self, fin: int, opcode: int, payload: bytearray) -> bool:
        """Handle one unmasked frame; False when the connection is done."""
        if opcode == OP_PING:
            if not self.transport.is_closing():
                self.transport.write(frame(OP_PONG, bytes(payload)))
            return True
        if opcode == OP_PONG:
            return True
        if opcode == OP_CLOSE:
            code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else CLOSE_NORMAL
            self._fail(code if 1000 <= code < 5000 else CLOSE_PROTOCOL_ERROR)
            return False
        if opcode == OP_CONTINUATION:
            if self._fragments is None:
                self._fail(CLOSE_PROTOCOL_ERROR)
                return False
            self._fragments += payload
            if not fin:
                return True
            opcode, payload = self._fragments_opcode, self._fragments
            self._fragments = None
        elif opcode in (OP_TEXT, OP_BINARY):
            if self._fragments is not None:
                self._fail(CLOSE_PROTOCOL_ERROR)  # a new message before the fragmented one finished
                return False
            if not fin:
                self._fragments, self._fragments_opcode = payload, opcode
                return True
        else:
            self._fail(CLOSE_PROTOCOL_ERROR)
            return False
        if opcode == OP_TEXT:
            try:
                message: str | bytes = payload.decode()
            except UnicodeDecodeError:
                self._fail(CLOSE_INVALID_DATA)
                return False
        else:
            message = bytes(payload)
        self._deliver(message)
        return True

    def _deliver(self, message: str | bytes | None) -> None:
        on_message = self._on_message
        if on_message is not None:
            if message is not None:
                on_message(message)
                return
            on_end = self._on_end
            self._on_message = self._on_end = None
            if on_end is not None:
                on_end()
            return
        if self._messages is None:
            self._messages = deque()
        self._messages.append(message)
        if message is not None and len(self._messages) >= _MAX_UNREAD:
            self.pause_reading()
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _finish(self, code: int | None) -> None:
        """No more messages: wake the reader with the end marker."""
        if code is not None and self.close_code is None:
            self.close_code = code
        if self._closed:
            return
        self._closed = True
        self._buffer.clear()
        self._fragments = None
        self._deliver(None)

    def _fail(self, code: int) -> None:
        """Close with ``code``: send the close frame once and stop reading.

        The write side is shut (FIN after the buffered data) and what the client still sends is read and dropped
        until it closes too: closing a socket with unread input would send a TCP reset, which can destroy the close
        frame (and data before it) on its way. A client that never closes is dropped after ``_LINGER_SECONDS``.
        """
        first = self.close_code is None
        self._finish(code)
        transport = self.transport
        if first and not transport.is_closing():
            transport.write(frame(OP_CLOSE, code.to_bytes(2, "big")))
            if transport.can_write_eof():
                transport.write_eof()
                self._linger = asyncio.get_running_loop().call_later(_LINGER_SECONDS, transport.abort)
            else:  # TLS transports cannot half-close: close() sends the buffered data, then close_notify
                transport.close()

    def abort(self) -> None:
        """Drop the connection now, unsent data included (a slow reader, a drain)."""
        self._finish(None)
        self.transport.abort()
