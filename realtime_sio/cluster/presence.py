"""Presence kept in Redis: members de-duplicated per user across nodes and tabs, one Lua script per join/leave.

Per presence channel (prefix ``p``)::

    p:ps:<channel>:sockets  HASH sid -> user key            (which socket is which user)
    p:ps:<channel>:users    HASH user key -> socket count   (first socket → joining, last → leaving)
    p:ps:<channel>:info     HASH user key -> member JSON    (what here() lists; the newest socket's info wins)
    p:ps:channels           SET of presence channels with members
    p:node:<id>:presence    SET of "<channel>\\n<sid>" a node holds (removed by the reaper when the node dies)

Socket ids are unique across nodes, so a node's entries can be removed by anyone once it stops heart-beating. The
scripts publish ``presence:joining``/``presence:leaving`` on the cluster bus (cluster/bus.py) when a user's first socket
joins or last socket leaves: whoever changes the membership announces it, in the same atomic step, so an announcement
is never lost between a membership change and a separate publish that Redis refused.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from realtime_sio import logs
from realtime_sio.cluster.bus import encode_around, events_channel
from realtime_sio.cluster.replies import texts
from realtime_sio.cluster.script_calls import ScriptCalls
from realtime_sio.members import Member
from realtime_sio.publish.broadcaster import Message
from realtime_sio.publish.presence import JOINING, LEAVING, JoinResult, LeaveResult

log = logs.get(__name__)

# KEYS: sockets, users, info, node set, channels set; ARGV: sid, user key, member json, channel, node entry, the bus
# channel, presence:joining's JSON before and after its member, the same for presence:leaving. A user's first socket
# announces presence:joining on the bus in the same script, so a join and its announcement happen together or not at all.
_JOIN = """
local prev = redis.call('HGET', KEYS[1], ARGV[1])
if prev == ARGV[2] then
  redis.call('HSET', KEYS[3], ARGV[2], ARGV[3])
  return {0, redis.call('HVALS', KEYS[3])}
end
if prev then
  local old = redis.call('HGET', KEYS[3], prev)
  if redis.call('HINCRBY', KEYS[2], prev, -1) <= 0 then
    redis.call('HDEL', KEYS[2], prev)
    redis.call('HDEL', KEYS[3], prev)
    if old then redis.call('PUBLISH', ARGV[6], '- ' .. ARGV[9] .. old .. ARGV[10]) end
  end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
local n = redis.call('HINCRBY', KEYS[2], ARGV[2], 1)
redis.call('HSET', KEYS[3], ARGV[2], ARGV[3])
redis.call('SADD', KEYS[4], ARGV[5])
redis.call('SADD', KEYS[5], ARGV[4])
local first = 0
if n == 1 then
  first = 1
  redis.call('PUBLISH', ARGV[6], '- ' .. ARGV[7] .. ARGV[3] .. ARGV[8])
end
return {first, redis.call('HVALS', KEYS[3])}
"""

# KEYS: sockets, users, info, node set, channels set; ARGV: sid, channel, node entry, the bus channel, presence:leaving's
# JSON before and after its member. A user's last socket announces presence:leaving in the same script: a leave that
# fails (Redis away, no pooled connection) is retried later (``pending``) and announces then, never half done.
_LEAVE = """
redis.call('SREM', KEYS[4], ARGV[3])
local user = redis.call('HGET', KEYS[1], ARGV[1])
if not user then return {0, false} end
redis.call('HDEL', KEYS[1], ARGV[1])
local info = redis.call('HGET', KEYS[3], user)
local n = redis.call('HINCRBY', KEYS[2], user, -1)
if n <= 0 then
  redis.call('HDEL', KEYS[2], user)
  redis.call('HDEL', KEYS[3], user)
  if redis.call('HLEN', KEYS[2]) == 0 then redis.call('SREM', KEYS[5], ARGV[2]) end
  if info then redis.call('PUBLISH', ARGV[4], '- ' .. ARGV[5] .. info .. ARGV[6]) end
  return {1, info}
end
return {0, info}
"""


def _member(raw: bytes | str | None) -> Member | None:
    if raw is None:
        return None
    try:
        doc = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(doc, dict) or "user_id" not in doc:
        return None
    return Member(user_id=doc["user_id"], user_info=doc.get("user_info"))


def _members(values: list[bytes] | list[bytes | str]) -> list[Member]:
    """Members from their stored JSON: one parse of them all (a presence channel's ``here`` list is read on every
    join); one by one, skipping what is not a member, only when that parse fails."""
    try:
        docs = json.loads(b"[" + b",".join(v if isinstance(v, bytes) else v.encode() for v in values) + b"]")
    except ValueError:
        return [m for m in (_member(v) for v in values) if m is not None]
    return [
        Member(user_id=doc["user_id"], user_info=doc.get("user_info"))
        for doc in docs
        if isinstance(doc, dict) and "user_id" in doc
    ]


def _announcement(channel: str, event: str, sid: str) -> tuple[str, str]:
    """The bus message announcing a member of ``channel`` (to everyone but ``sid``), as the text around the member."""
    return encode_around(Message(channel, event, None, sid, None, time.time(), source="presence"))


class RedisPresence:
    """:class:`~realtime_sio.publish.presence.PresenceStore` over Redis, for every node of a cluster: its scripts
    announce ``presence:joining``/``presence:leaving`` on the cluster bus themselves."""

    def __init__(self, client: aioredis.Redis, prefix: str, node_id: str, calls: ScriptCalls) -> None:
        """``calls``: the node's batched script calls (shared with the bus's publishes)."""
        self._redis = client
        self._calls = calls
        self._prefix = prefix
        self._events = events_channel(prefix)
        self.node_id = node_id
        self._join = self._calls.register(_JOIN)
        self._leave = self._calls.register(_LEAVE)
        # leaves that failed while Redis was away; Nodes.run retries them (the script announces presence:leaving)
        self.pending: set[tuple[str, str]] = set()

    def _keys(self, channel: str, node_id: str) -> list[str]:
        base = f"{self._prefix}:ps:{channel}"
        return [f"{base}:sockets", f"{base}:users", f"{base}:info", self.node_key(node_id), f"{self._prefix}:ps:channels"]

    def node_key(self, node_id: str) -> str:
        return f"{self._prefix}:node:{node_id}:presence"

    async def join(self, channel: str, sid: str, member: Member) -> JoinResult:
        member_json = json.dumps(member.wire(), separators=(",", ":"))
        first, values = await self._calls.call(
            self._join,
            self._keys(channel, self.node_id),
            [
                sid, str(member.user_id), member_json, channel, f"{channel}\n{sid}", self._events,
                *_announcement(channel, JOINING, sid), *_announcement(channel, LEAVING, sid),
            ],
        )
        return JoinResult(first_for_user=bool(first), members=_members(values))

    async def leave(self, channel: str, sid: str) -> LeaveResult:
        try:
            return await self.leave_for(self.node_id, channel, sid)
        except RedisError as exc:
            log.warning("presence_leave_deferred", channel=channel, error=type(exc).__name__)
            self.pending.add((channel, sid))
            return LeaveResult(last_for_user=False, member=None)

    async def leave_for(self, node_id: str, channel: str, sid: str) -> LeaveResult:
        """Remove ``sid`` from ``channel`` on behalf of ``node_id`` (itself, or a dead node being reaped)."""
        last, info = await self._calls.call(
            self._leave,
            self._keys(channel, node_id),
            [sid, channel, f"{channel}\n{sid}", self._events, *_announcement(channel, LEAVING, sid)],
        )
        return LeaveResult(last_for_user=bool(last), member=_member(info) if info else None)

    async def members(self, channel: str) -> list[Member]:
        return _members(await self._redis.hvals(f"{self._prefix}:ps:{channel}:info"))

    async def channels(self) -> Mapping[str, int]:
        names = texts(await self._redis.smembers(f"{self._prefix}:ps:channels"))
        if not names:
            return {}
        async with self._redis.pipeline(transaction=False) as pipe:
            for name in names:
                pipe.hlen(f"{self._prefix}:ps:{name}:users")
            counts: list[Any] = await pipe.execute()
        return {name: int(count) for name, count in zip(names, counts) if count}

    async def held_by(self, node_id: str) -> list[tuple[str, str]]:
        """The (channel, sid) presence entries a node holds."""
        raw = await self._redis.smembers(self.node_key(node_id))
        pairs = []
        for item in texts(raw):
            channel, _, sid = item.partition("\n")
            pairs.append((channel, sid))
        return pairs
