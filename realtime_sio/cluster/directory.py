"""Cluster-wide channel queries for the Pusher API: this node's live rooms plus every other live node's counts."""

from __future__ import annotations

from realtime_sio.cluster.nodes import Nodes
from realtime_sio.members import Member
from realtime_sio.publish.channel_directory import ChannelCounts
from realtime_sio.publish.presence import PresenceStore


class ClusterChannelDirectory:
    """:class:`~realtime_sio.publish.channel_directory.ChannelDirectory` over every live node.

    Other nodes' counts are what they wrote at their last heartbeat (at most ``lease/3`` seconds old).
    """

    def __init__(self, nodes: Nodes, counts: ChannelCounts, presence: PresenceStore) -> None:
        self._nodes = nodes
        self._local_counts = counts
        self._presence = presence

    async def _counts(self) -> dict[str, int]:
        totals = await self._nodes.counts(exclude_self=True)
        for channel, count in self._local_counts().items():
            totals[channel] = totals.get(channel, 0) + count
        return totals

    async def channels(self, prefix: str = "") -> dict[str, int]:
        return {c: n for c, n in (await self._counts()).items() if c.startswith(prefix) and n > 0}

    async def subscription_count(self, channel: str) -> int:
        return (await self._counts()).get(channel, 0)

    async def users(self, channel: str) -> list[Member]:
        return await self._presence.members(channel)
