"""The server side of one RFC 6455 WebSocket on a raw asyncio transport, with the interface engineio's socket uses.

aiohttp serves a WebSocket with a request object, a request handler (HTTP parser, payload queue, keep-alive state),
a ``WebSocketResponse``, a reader, a writer and a data queue, and a task awaiting the handler: about 15 KB per idle
connection here, more than Node's socket.io spends on a whole connection (docs/performance.md). An Engine.IO socket
needs none of that once the upgrade is done, only ``wait()`` (next message), ``send()`` and ``close()``: this class is
those three on the transport itself. :mod:`realtime_sio.engine.upgrade_router` hands a connection here after it read a
valid Engine.IO WebSocket upgrade request; everything else stays with aiohttp.

Every byte-level rule (masking, opcodes, fragments, sizes, UTF-8, close codes) is in the sans-I/O codec
:mod:`realtime_sio.engine.frames`; this class feeds it the bytes read and acts on its events: messages handed out, pings
answered, a close or a protocol error answered with a close frame and the transport ended. Flow control: reading
pauses while unread messages pile up, and ``send`` waits while the transport's write buffer is above its high-water
mark.

Writes can be *held* (:meth:`hold`): what is written until :meth:`release` (called by the holder, or at the latest by
the loop's next iteration) goes out in one ``write``, in order. The 101 answer and the Engine.IO OPEN packet are one
write, and so are the packets a socket's own handler sends for one inbound packet (the CONNECT answer and its
``recovery:position``, a subscribe's ack and its position): one system call and one TCP segment instead of two or
three, for the server and the client (issue 14).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable

from realtime_sio.engine.frames import (
    CLOSE_NORMAL,
    MAX_FRAME_HEADER,
    OP_BINARY,
    OP_PONG,
    OP_TEXT,
    Close,
    Event,
    FrameParser,
    Ping,
    ProtocolError,
    accept_key,
    close_frame,
    frame,
)
from realtime_sio.engine.sink import BUFFERED, DELIVERED, SKIPPED, SLOW, Offer

_LINGER_SECONDS = 5.0  # after our close frame, how long the client has to close its side
_MAX_UNREAD = 32  # messages buffered before reading pauses (the reader is the socket's own read loop)


class WebSocketConnection(asyncio.Protocol):
    """One accepted WebSocket: frame parsing in ``data_received``, messages handed out by ``wait()``."""

    __slots__ = (
        "_accepted",
        "_backlog_full",
        "_closed",
        "_drain",
        "_early",
        "_held",
        "_linger",
        "_messages",
        "_on_end",
        "_on_message",
        "_on_protocol_error",
        "_parser",
        "_paused_reading",
        "_waiter",
        "_write_paused",
        "close_code",
        "transport",
    )

    def __init__(
        self,
        transport: asyncio.Transport,
        max_size: int,
        initial: bytes = b"",
        on_protocol_error: Callable[[ProtocolError], None] | None = None,
    ) -> None:
        self.transport = transport
        self.close_code: int | None = None
        self._parser = FrameParser(max_size)
        self._on_protocol_error = on_protocol_error  # told once when the client breaks RFC 6455 (count, log)
        self._early = initial  # bytes after the request head: parsed once the upgrade is accepted
        self._accepted = False
        self._linger: asyncio.TimerHandle | None = None  # after our close frame: abort if the client never closes
        self._messages: deque[str | bytes | None] | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._closed = False  # no more messages will arrive (close frame, protocol error or connection lost)
        self._backlog_full = False  # the reader asked for a pause (unhandled messages piled up)
        self._paused_reading = False  # the transport's reading is paused (backlog full or write buffer full)
        self._write_paused = False
        self._drain: asyncio.Future[None] | None = None
        self._on_message: Callable[[str | bytes], None] | None = None
        self._on_end: Callable[[], None] | None = None
        self._held: bytearray | None = None  # writes held until release() (see the module's docstring)

    # -- asyncio.Protocol -------------------------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:  # pragma: no cover - set_protocol, not this
        pass

    def data_received(self, data: bytes) -> None:
        if self._closed:
            return
        if self._accepted:
            self._handle(self._parser.feed(data))
            return
        self._early += data  # rare: a client that sends frames before the 101
        if len(self._early) > self._parser.max_size + MAX_FRAME_HEADER:  # over one largest frame before the 101
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
        self.hold()  # the OPEN packet follows at once: one write for both
        self.write(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Accept: " + accept_key(key).encode() + b"\r\n\r\n"
        )
        early, self._early = self._early, b""
        if early:
            self._handle(self._parser.feed(early))

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

    def end(self, code: int = CLOSE_NORMAL) -> None:
        """:meth:`close` for callers outside a coroutine (the Pusher session closing with 4xxx, issue 12)."""
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
            held = self._held
            if held is not None:
                held += data
            else:
                self.transport.write(data)

    def offer(self, data: bytes, limit: int) -> Offer:
        """Fan-out's write of prebuilt frames, bounded by ``limit`` unsent bytes (engine/sink.py FrameSink)."""
        transport = self.transport
        if self.close_code is not None or transport.is_closing():
            return SKIPPED
        held = self._held
        ahead = transport.get_write_buffer_size() if held is None else transport.get_write_buffer_size() + len(held)
        if ahead + len(data) > limit:
            return SLOW
        if held is not None:
            held += data
        else:
            transport.write(data)
        return BUFFERED if ahead else DELIVERED

    def hold(self) -> None:
        """Hold writes until :meth:`release`, which the loop's next iteration calls if the holder does not."""
        if self._held is None and self.close_code is None:
            self._held = bytearray()
            asyncio.get_running_loop().call_soon(self.release)

    def release(self) -> None:
        """Write what was held, in one ``write``, and write straight through again."""
        held, self._held = self._held, None
        if held and self.close_code is None and not self.transport.is_closing():
            self.transport.write(bytes(held))

    def buffered(self) -> int:
        """Bytes written but not yet sent (engine/sink.py FrameSink)."""
        held = self._held
        return self.transport.get_write_buffer_size() + (len(held) if held is not None else 0)

    def is_closing(self) -> bool:
        """A close frame went out or the transport is ending (engine/sink.py FrameSink)."""
        return self.close_code is not None or self.transport.is_closing()

    # -- frames ------------------------------------------------------------------------------------------------------

    def _handle(self, events: list[Event]) -> None:
        """Act on what the client's bytes meant (engine/frames.py): deliver messages, answer pings, close."""
        for event in events:
            if self._closed:
                return
            if isinstance(event, (str, bytes)):
                self._deliver(event)
            elif isinstance(event, Ping):
                self.write(frame(OP_PONG, event.payload))
            elif isinstance(event, Close):
                self._fail(event.reply_code)
            elif isinstance(event, ProtocolError):
                if self._on_protocol_error is not None:
                    self._on_protocol_error(event)
                self._fail(event.code)

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
        self._early = b""
        self._deliver(None)

    def _fail(self, code: int) -> None:
        """Close with ``code``: send the close frame once and stop reading.

        The write side is shut (FIN after the buffered data) and what the client still sends is read and dropped
        until it closes too: closing a socket with unread input would send a TCP reset, which can destroy the close
        frame (and data before it) on its way. A client that never closes is dropped after ``_LINGER_SECONDS``.
        """
        first = self.close_code is None
        if first:
            self.release()  # what was written before the close frame goes first
        self._finish(code)
        transport = self.transport
        if first and not transport.is_closing():
            transport.write(close_frame(code))
            if transport.can_write_eof():
                transport.write_eof()
                self._linger = asyncio.get_running_loop().call_later(_LINGER_SECONDS, transport.abort)
            else:  # TLS transports cannot half-close: close() sends the buffered data, then close_notify
                transport.close()

    def abort(self) -> None:
        """Drop the connection now, unsent data included (a slow reader, a drain)."""
        self._held = None
        self._finish(None)
        self.transport.abort()
