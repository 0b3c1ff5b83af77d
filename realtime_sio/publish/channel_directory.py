"""Which channels are occupied, by how many sockets and which presence users: the query side of the Pusher API.

:class:`ChannelDirectory` is the seam for the cluster (issue 4): :class:`LocalChannelDirectory` answers from this
node's subscriber counts (Socket.IO rooms and Pusher channels, issue 12) and presence store; a Redis-backed directory
answers for every node with the same protocol.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Protocol

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
    """This node's view: its channel → subscriber counts (both protocols) and the presence store."""

    def __init__(self, local_counts: Callable[[], Mapping[str, int]], presence: PresenceStore) -> None:
        self._local_counts = local_counts
        self._presence = presence

    async def channels(self, prefix: str = "") -> dict[str, int]:
        return {room: n for room, n in self._local_counts().items() if n > 0 and room.startswith(prefix)}

    async def subscription_count(self, channel: str) -> int:
        return self._local_counts().get(channel, 0)

    async def users(self, channel: str) -> list[Member]:
        return await self._presence.members(channel)
