"""One Pusher connection: its socket id, app, channels and limits, on a raw WebSocket in callback mode.

No task waits on an idle connection: :class:`~realtime_sio.engine.connection.WebSocketConnection` calls
:meth:`PusherSession.received` for each message. Pings and pongs are answered at once; everything else is handled in
arrival order by a task that exists only while messages are pending (:mod:`realtime_sio.pusher.server`), and
reading pauses while too many pile up. Liveness is checked by the hub's one sweep timer, not a timer per connection.
"""

from __future__ import annotations

import asyncio
import secrets
from collections import deque
from collections.abc import Callable, Coroutine
from typing import Any

from realtime_sio.engine import round_trip
from realtime_sio.engine.connection import WebSocketConnection
from realtime_sio.pusher import messages
from realtime_sio.pusher.messages import Inbound, PusherError
from realtime_sio.settings import PusherApp

MAX_PENDING = 32  # messages waiting for the session's task before reading from the client pauses


def new_socket_id() -> str:
    """A random Pusher socket id, two integers joined by a dot (Reverb: ``random_int(1, 10**9)`` each)."""
    return f"{secrets.randbelow(10**9) + 1}.{secrets.randbelow(10**9) + 1}"


class PusherSession:
    """Per-connection state; the protocol's decisions are :class:`~realtime_sio.pusher.server.PusherServer`'s."""

    __slots__ = (
        "app",
        "channels",
        "connection",
        "ended",
        "event_tokens",
        "last_seen",
        "pending",
        "ping_sent",
        "pinged",
        "refilled",
        "rtt",
        "rtt_cell",
        "run",
        "socket_id",
        "subscribe_tokens",
        "task",
        "user_id",
    )

    def __init__(
        self,
        connection: WebSocketConnection,
        app: PusherApp,
        now: float,
        burst: float,
        event_burst: float,
        run: Callable[[PusherSession], Coroutine[Any, Any, None]],
    ) -> None:
        self.connection = connection
        self.app = app
        self.socket_id = new_socket_id()
        # channels[name] = the presence user id this connection joined as (str), or None for other channels
        self.channels: dict[str, str | None] = {}
        self.last_seen = now  # loop time of the client's last message (the hub's sweep reads it)
        self.pinged = False  # the sweep sent pusher:ping and waits for any message
        self.ping_sent = 0.0  # loop time of that pusher:ping, until its pusher:pong (the round trip)
        self.rtt = -1.0  # last round trip, seconds (-1: not measured yet; engine/round_trip.py)
        self.rtt_cell = 0
        self.subscribe_tokens = burst
        self.event_tokens = event_burst
        self.refilled = now
        self.pending: deque[Inbound] | None = None  # messages waiting for the task, in arrival order
        self.task: asyncio.Task[None] | None = None
        self.ended = False
        self.user_id: str | None = None  # set by a valid pusher:signin (user authentication)
        self.run = run  # the server's handler loop (shared by every session: one function, not a bound method)

    # -- what the WebSocket calls (deliver_to) ------------------------------------------------------------------
    def received(self, raw: str | bytes) -> None:
        self.last_seen = now = asyncio.get_running_loop().time()
        self.pinged = False
        inbound = messages.parse(raw)
        if inbound is None:
            inbound = Inbound("", None, None)  # answered in order with INVALID_MESSAGE by the task
        elif self.pending is None and inbound.event == "pusher:ping":
            self.send(messages.PONG)
            return
        elif inbound.event == "pusher:pong":
            if self.ping_sent:  # the answer to the server's pusher:ping: one round trip
                round_trip.record(self, now - self.ping_sent)
                self.ping_sent = 0.0
            return
        if self.pending is None:
            self.pending = deque()
        self.pending.append(inbound)
        if len(self.pending) >= MAX_PENDING:
            self.connection.pause_reading()
        if self.task is None:
            self.task = asyncio.get_running_loop().create_task(self.run(self))

    def closed(self) -> None:
        """No more messages will come: the server's task (or a new one) leaves every channel."""
        self.ended = True
        if self.task is None:
            self.task = asyncio.get_running_loop().create_task(self.run(self))

    def unsent(self) -> int | None:
        """Bytes written to the connection but not sent yet; None once it ended (latency/estimate.py Held)."""
        return None if self.ended or self.connection.is_closing() else self.connection.buffered()

    # -- output -------------------------------------------------------------------------------------------------
    def send(self, text: str) -> None:
        self.connection.write_message(text)

    def fail(self, error: PusherError) -> None:
        """Send ``pusher:error`` and close the WebSocket with the error's code (the client acts on the code)."""
        self.send(messages.error(error))
        self.connection.end(error.code)
