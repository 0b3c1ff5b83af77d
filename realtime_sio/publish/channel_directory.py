"""Which channels are occupied, by how many sockets and which presence users: the query side of the Pusher API.

:class:`ChannelDirectory` is the seam for the cluster (issue 4): :class:`LocalChannelDirectory` answers from this
node's Socket.IO rooms and presence store; a Redis-backed directory answers for every node with the same protocol.
"""

from __future__ import annotations

from typing import Protocol

import socketio

from realtime_sio.members import Member
from realtime_sio.sio.presence import PresenceStore


class ChannelDirectory(Protocol):
    async def channels(self, prefix: str = "") -> dict[str, int]:
        """Occupied channels whose name starts with ``prefix`` → subscription count (sockets in the room)."""
        ...

    async def subscription_count(self, channel: str) -> int:
        """Sockets subscribed to ``channel`` (0 when unoccupied)."""
        ...

    async def users(self, channel: str) -> list[Member]:
        """Distinct presence members of ``channel`` (one per user id)."""
        ...


class LocalChannelDirectory:
    """This node's view: python-socketio rooms of namespace ``/`` (sid rooms excluded) and the presence store."""

    def __init__(self, manager: socketio.AsyncManager, presence: PresenceStore, namespace: str = "/") -> None:
        self._manager = manager
        self._presence = presence
        self._namespace = namespace

    async def channels(self, prefix: str = "") -> dict[str, int]:
        # rooms[namespace][room] = bidict(sid → eio_sid); room None holds every client, and each sid has its own room
        rooms = self._manager.rooms.get(self._namespace, {})
        everyone = rooms.get(None, {})
        return {
            room: len(members)
            for room, members in rooms.items()
            if room is not None and room not in everyone and members and room.startswith(prefix)
        }

    async def subscription_count(self, channel: str) -> int:
        rooms = self._manager.rooms.get(self._namespace, {})
        if channel in rooms.get(None, {}):
            return 0  # a socket's own room is not a channel
        return len(rooms.get(channel, {}))

    async def users(self, channel: str) -> list[Member]:
        return await self._presence.members(channel)
