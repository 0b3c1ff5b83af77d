"""Which channels are occupied, by how many sockets and which presence users: the query side of the Pusher API.

:class:`ChannelDirectory` is the seam for the cluster (issue 4): :class:`LocalChannelDirectory` answers from this
node's channel counts (:data:`ChannelCounts`, every protocol's subscribers) and presence store; a Redis-backed
directory answers for every node with the same protocol.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Protocol

from realtime_sio.members import Member
from realtime_sio.publish.presence import PresenceStore

# This node's occupied channels → local subscriber count (a socket's own room is not a channel).
ChannelCounts = Callable[[], Mapping[str, int]]


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
    """This node's view: its channel counts and the presence store."""

    def __init__(self, counts: ChannelCounts, presence: PresenceStore) -> None:
        self._counts = counts
        self._presence = presence

    async def channels(self, prefix: str = "") -> dict[str, int]:
        return {room: n for room, n in self._counts().items() if n and room.startswith(prefix)}

    async def subscription_count(self, channel: str) -> int:
        return self._counts().get(channel, 0)

    async def users(self, channel: str) -> list[Member]:
        return await self._presence.members(channel)
