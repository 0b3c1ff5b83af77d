"""Closing one user's connections on every node, of both protocols (``POST /apps/{id}/users/{user}/terminate_connections``).

The request travels as one internal signal through the broadcaster's transport, the path every event takes: the
cluster bus carries it to every node (the receiving node too), whose :class:`~realtime_sio.publish.delivery.LocalDelivery`
hands it to :meth:`UserTerminations.received` instead of fanning it out. Its channel starts with ``#``, outside the
channel alphabet (``channels.py``), so no client, publisher or Laravel broadcast can use that name, and no socket is
ever in that room. Each node then asks every protocol registered with :meth:`UserTerminations.add` to close the user's
connections (Socket.IO: ``sio/namespace.py``, Pusher: ``pusher/server.py``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from realtime_sio import logs
from realtime_sio.publish.broadcaster import Broadcaster, Message

log = logs.get(__name__)

CHANNEL = "#user-terminations"
EVENT = "terminate"

# closer(app_id, user_id) → how many of this node's connections it closed
Closer = Callable[[str, str], Awaitable[int]]


def target(message: Message) -> tuple[str, str] | None:
    """``(app_id, user_id)`` of a termination signal, or None for anything else (never raises)."""
    data: Any = message.data
    if message.event != EVENT or not isinstance(data, dict):
        return None
    app_id, user_id = data.get("app_id"), data.get("user_id")
    if not isinstance(app_id, str) or not isinstance(user_id, str) or not user_id:
        return None
    return app_id, user_id


class UserTerminations:
    """Both sides of a termination: :meth:`request` (the HTTP API) and :meth:`received` (every node's delivery)."""

    def __init__(self) -> None:
        self._closers: dict[str, Closer] = {}  # closers[protocol]
        self._running: set[asyncio.Task[None]] = (
            set()
        )  # strong references to terminations in progress

    def add(self, protocol: str, closer: Closer) -> None:
        """Register a protocol's way of closing a user's connections on this node."""
        self._closers[protocol] = closer

    async def request(
        self, broadcaster: Broadcaster, app_id: str, user_id: str
    ) -> None:
        """Send the termination to every node; raises when the transport cannot carry it to all of them."""
        await broadcaster.control(
            CHANNEL, EVENT, {"app_id": app_id, "user_id": user_id}
        )

    def received(self, message: Message) -> None:
        """Delivery's handler for :data:`CHANNEL`: close the user's connections here, in a task of its own."""
        found = target(message)
        if found is None:
            log.info("termination_signal_invalid")
            return
        task = asyncio.get_running_loop().create_task(self._close(*found))
        self._running.add(task)
        task.add_done_callback(self._running.discard)

    async def _close(self, app_id: str, user_id: str) -> None:
        closed: dict[str, int] = {}
        for protocol, closer in self._closers.items():
            try:
                closed[protocol] = await closer(app_id, user_id)
            except Exception:  # a bug of ours: keep the traceback, still run the other protocol's closer
                log.exception(
                    "user_termination_failed", protocol=protocol, user_id=user_id
                )
        if any(closed.values()):
            log.info(
                "user_connections_terminated", app=app_id, user_id=user_id, **closed
            )
