"""This node's Pusher subscribers by channel, and delivery to them of every event the broadcaster delivers.

:meth:`Hub.deliver` is given to :class:`~realtime_sio.publish.broadcaster.Broadcaster` at construction, so whatever
reaches the broadcaster's local delivery (sidecar, Pusher HTTP API, Laravel Redis, whispers of either protocol,
presence announcements; from this node or, through the cluster bus, from any other) reaches Pusher subscribers once,
in the order it reaches Socket.IO ones. Each event is translated (:func:`translate`) and encoded ONCE into one
WebSocket text frame that is written to every recipient's transport; the sender of ``toOthers`` / a whisper is
skipped by socket id. A transport whose write buffer would pass ``max_buffered_bytes`` is a slow reader and is
dropped, as in Socket.IO fan-out (``sio/fanout.py``).

``cache-`` channels (``private-cache-``, ``presence-cache-`` too) keep their last event's frame, per node, for replay
on subscribe (Reverb's cache channels); every node sees every event, so any node can replay it.

Liveness: one timer for all sessions. A session silent for ``activity_timeout`` gets ``pusher:ping``; silent
``pong_timeout`` more, it is closed with 4201, as Pusher defines (pusher-js itself pings after the same silence).
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from realtime_sio.engine.sink import BUFFERED, DELIVERED, SLOW
from realtime_sio.latency.estimate import PUSHER, Estimator
from realtime_sio.publish.broadcaster import Message
from realtime_sio.publish.presence import JOINING, LEAVING
from realtime_sio.pusher import messages
from realtime_sio.pusher.session import PusherSession


def is_cache_channel(channel: str) -> bool:
    return channel.startswith(("cache-", "private-cache-", "private-encrypted-cache-", "presence-cache-"))


def translate(message: Message) -> str | None:
    """The Pusher message for an internal event, or None when Pusher clients have no such event.

    Presence announcements become ``pusher_internal:member_added`` / ``member_removed``; whispers (``client-*``) keep
    their data as sent and carry the sender's ``user_id`` on presence channels; every other event is a server event
    with its data JSON-encoded (recovery positions are Socket.IO's alone).
    """
    event, channel, data = message.event, message.channel, message.data
    if event.startswith("presence:"):
        if not isinstance(data, dict) or "user_id" not in data:
            return None
        if event == JOINING:
            return messages.member_added(channel, data["user_id"], data.get("user_info"))
        if event == LEAVING:
            return messages.member_removed(channel, data["user_id"])
        return None
    if event.startswith("client-"):
        return messages.client_event(event, channel, data, message.user_id)
    return messages.event(event, channel, data)


class Hub:
    """Channel membership of this node's Pusher sessions; delivery, cache replay and the liveness sweep."""

    def __init__(
        self,
        max_buffered_bytes: int,
        activity_timeout: float,
        pong_timeout: float,
        cache_channels: int,
        on_slow_consumer: Callable[[PusherSession], None] = lambda session: None,
        estimator: Estimator | None = None,
    ) -> None:
        self.max_buffered_bytes = max_buffered_bytes
        self._estimator = estimator  # delivery latency as users feel it (latency/estimate.py); None = not measured
        self.activity_timeout = activity_timeout
        self.pong_timeout = pong_timeout
        self._on_slow_consumer = on_slow_consumer
        self.sessions: dict[str, PusherSession] = {}  # sessions[socket_id]
        self.channels: dict[str, dict[PusherSession, None]] = {}  # channels[name] = its sessions, in join order
        self._last: OrderedDict[str, bytes] = OrderedDict()  # _last[cache channel] = frame of its last event
        self._cache_limit = cache_channels
        self._sweeper: asyncio.TimerHandle | None = None
        self.delivered = 0  # frames written by deliver(), for tests and the bench

    # -- membership ---------------------------------------------------------------------------------------------
    def add(self, session: PusherSession) -> None:
        self.sessions[session.socket_id] = session
        if self._sweeper is None:
            self._schedule_sweep()

    def remove(self, session: PusherSession) -> None:
        """Forget a session that ended, and its channels (presence leaves are the server's)."""
        if self.sessions.get(session.socket_id) is session:
            del self.sessions[session.socket_id]
        for channel in session.channels:
            self._unlist(session, channel)

    def join(self, session: PusherSession, channel: str, user_id: str | None) -> None:
        session.channels[channel] = user_id
        self.channels.setdefault(channel, {})[session] = None

    def leave(self, session: PusherSession, channel: str) -> None:
        if session.channels.pop(channel, 0) != 0:
            self._unlist(session, channel)

    def _unlist(self, session: PusherSession, channel: str) -> None:
        members = self.channels.get(channel)
        if members is not None:
            members.pop(session, None)
            if not members:
                del self.channels[channel]

    def serves(self, channel: str) -> bool:
        """Whether a Pusher connection on this node subscribes ``channel``."""
        return bool(self.channels.get(channel))

    def channel_counts(self) -> dict[str, int]:
        """Channel → this node's Pusher subscriber count."""
        return {channel: len(members) for channel, members in self.channels.items()}

    # -- delivery -----------------------------------------------------------------------------------------------
    def deliver(self, message: Message) -> int:
        """Write ``message`` to this node's Pusher subscribers of its channel; returns how many got it.

        With an estimator (latency/estimate.py), each delivery counts for the latency estimate at the session's half
        round trip; one written behind bytes the session has not sent yet is measured once they are out."""
        channel = message.channel
        members = self.channels.get(channel)
        cache = is_cache_channel(channel)
        if not members and not cache:
            return 0
        text = translate(message)
        if text is None:
            return 0
        data = messages.text_frame(text)
        if cache and not message.event.startswith("presence:"):
            self._remember(channel, data)
        if not members:
            return 0
        limit = self.max_buffered_bytes
        skip = message.except_sid
        delivered = 0
        estimator = self._estimator
        stamp = estimator.stamp(message.accepted_at, message.source, ()) if estimator is not None else None
        # Nothing here removes a session synchronously (a dropped session leaves from its own task), so the
        # channel's dict is iterated as is, without a copy per event.
        for session in members:
            if session.socket_id == skip:
                continue
            # engine/sink.py FrameSink: the same prebuilt frame for every recipient
            outcome = session.connection.offer(data, limit)
            if outcome == DELIVERED:
                delivered += 1
                if stamp is not None:
                    stamp.cells[session.rtt_cell] += 1
            elif outcome == BUFFERED:
                delivered += 1
                if stamp is not None:
                    stamp.buffered(session, PUSHER)
            elif outcome == SLOW:
                self._on_slow_consumer(session)  # counted and logged by the app
                session.connection.abort()  # unsent data included; the session's end runs the server's leave
        if stamp is not None:
            stamp.finish(PUSHER)
        self.delivered += delivered
        return delivered

    def _remember(self, channel: str, data: bytes) -> None:
        last = self._last
        last[channel] = data
        last.move_to_end(channel)
        if len(last) > self._cache_limit:
            last.popitem(last=False)

    def replay_last(self, session: PusherSession, channel: str) -> None:
        """A cache channel's last event for a new subscriber, or ``pusher:cache_miss``."""
        data = self._last.get(channel)
        if data is None:
            session.send(messages.cache_miss(channel))
        else:
            session.connection.write(data)

    # -- liveness -----------------------------------------------------------------------------------------------
    def _schedule_sweep(self) -> None:
        interval = max(0.1, min(self.activity_timeout, self.pong_timeout) / 4)
        self._sweeper = asyncio.get_running_loop().call_later(interval, self.sweep)

    def sweep(self) -> None:
        """Ping sessions silent for ``activity_timeout``; close those silent ``pong_timeout`` after the ping."""
        self._sweeper = None
        now = asyncio.get_running_loop().time()
        idle_after, dead_after = self.activity_timeout, self.activity_timeout + self.pong_timeout
        for session in list(self.sessions.values()):
            silent = now - session.last_seen
            if session.pinged:
                if silent >= dead_after:
                    session.fail(messages.PONG_TIMEOUT)
            elif silent >= idle_after:
                session.pinged = True
                session.ping_sent = now  # its pusher:pong gives the round trip (engine/round_trip.py)
                session.send(messages.PING)
        if self.sessions:
            self._schedule_sweep()

    def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None

    def sessions_of(self, predicate: Callable[[PusherSession], Any]) -> list[PusherSession]:
        return [s for s in self.sessions.values() if predicate(s)]
