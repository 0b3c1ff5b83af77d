"""Presence membership per channel, de-duplicated per user: several tabs of one user are one member.

``LocalPresence`` keeps members in memory for a single node; the cluster store (Redis) implements the same
:class:`PresenceStore` protocol. A store announces ``presence:joining`` when a user's first socket joins and
``presence:leaving`` when their last one leaves (to every socket of the channel but that one), so a membership change
and its announcement are one step: no caller can change one and forget the other.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from realtime_sio.members import Member

JOINING, LEAVING = "presence:joining", "presence:leaving"

# announce(channel, JOINING or LEAVING, member, the socket that joined or left): tell the channel's other sockets
Announce = Callable[[str, str, Member, str], Awaitable[None]]


@dataclass(frozen=True)
class JoinResult:
    first_for_user: bool  # announce presence:joining
    members: list[Member]  # for presence:subscribed, one per user


@dataclass(frozen=True)
class LeaveResult:
    last_for_user: bool  # announce presence:leaving
    member: Member | None


class PresenceStore(Protocol):
    """Members per presence channel; ``join`` and ``leave`` also announce a user's arrival and departure."""

    async def join(self, channel: str, sid: str, member: Member) -> JoinResult: ...

    async def leave(self, channel: str, sid: str) -> LeaveResult: ...

    async def members(self, channel: str) -> list[Member]: ...

    async def channels(self) -> Mapping[str, int]:
        """Presence channel → distinct user count."""
        ...


@dataclass
class _Channel:
    # users[user_key] = (member, {sid, ...}); sid_user[sid] = user_key
    users: dict[str, tuple[Member, set[str]]] = field(default_factory=dict)
    sid_user: dict[str, str] = field(default_factory=dict)


class LocalPresence:
    """In-memory presence for one node; ``announce`` tells this node's sockets (the only ones there are)."""

    def __init__(self, announce: Announce) -> None:
        self._channels: dict[str, _Channel] = {}
        self._announce = announce

    async def join(self, channel: str, sid: str, member: Member) -> JoinResult:
        ch = self._channels.setdefault(channel, _Channel())
        key = _user_key(member.user_id)
        previous = ch.sid_user.get(sid)
        if previous is not None and previous != key:
            # The same socket re-joined as a different member (delegated auth changed its answer): move it.
            await self.leave(channel, sid)
            ch = self._channels.setdefault(channel, _Channel())
        entry = ch.users.get(key)
        first = entry is None
        sids = entry[1] if entry is not None else set()
        sids.add(sid)
        # The newest socket's user_info wins, as with laravel-echo-server's uniqBy over the reversed list.
        ch.users[key] = (member, sids)
        ch.sid_user[sid] = key
        result = JoinResult(first_for_user=first, members=[m for m, _ in ch.users.values()])
        if first:
            await self._announce(channel, JOINING, member, sid)
        return result

    async def leave(self, channel: str, sid: str) -> LeaveResult:
        ch = self._channels.get(channel)
        if ch is None or sid not in ch.sid_user:
            return LeaveResult(last_for_user=False, member=None)
        key = ch.sid_user.pop(sid)
        member, sids = ch.users[key]
        sids.discard(sid)
        last = not sids
        if last:
            del ch.users[key]
        if not ch.users:
            del self._channels[channel]
        if last:
            await self._announce(channel, LEAVING, member, sid)
        return LeaveResult(last_for_user=last, member=member)

    async def members(self, channel: str) -> list[Member]:
        ch = self._channels.get(channel)
        return [m for m, _ in ch.users.values()] if ch else []

    async def channels(self) -> Mapping[str, int]:
        return {name: len(ch.users) for name, ch in self._channels.items()}


def _user_key(user_id: str | int) -> str:
    """Ids 42 and "42" are one user (JWT claims are strings, Laravel's channel_data ints)."""
    return str(user_id)
