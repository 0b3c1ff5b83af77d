"""The Pusher Channels protocol 7 on ``GET /app/{key}``: handshake, subscribe, unsubscribe, client events, leave.

The upgrade router (:mod:`realtime_sio.engine.upgrade_router`) hands every valid WebSocket upgrade to ``/app/...`` to
:meth:`PusherServer.open`. Handlers parse (:mod:`realtime_sio.pusher.messages`), decide (channel names as Socket.IO
decides them, signatures with :mod:`realtime_sio.auth.pusher_signature`) and act through the parts Socket.IO uses:
the same :class:`~realtime_sio.publish.presence.PresenceStore` (keyed by the Pusher socket id, so a user's Socket.IO tab
and Pusher tab are one member) and the same :class:`~realtime_sio.publish.broadcaster.Broadcaster` (whispers and
presence announcements reach both protocols on every node). Every refusal is a documented Pusher code, counted and
logged at most once a minute per reason (:mod:`realtime_sio.refusals`); nothing a client sends raises out of here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from realtime_sio import logs
from realtime_sio.auth.pusher_signature import channel_auth_valid, user_auth_valid
from realtime_sio.channels import is_valid_name, kind_of
from realtime_sio.engine.connection import WebSocketConnection
from realtime_sio.errors import ErrorCode
from realtime_sio.members import Member
from realtime_sio.metrics import Metrics
from realtime_sio.publish.broadcaster import Broadcaster
from realtime_sio.publish.presence import JoinResult, PresenceStore
from realtime_sio.pusher import handshake, messages
from realtime_sio.pusher.hub import Hub, is_cache_channel
from realtime_sio.pusher.messages import Inbound, PusherError
from realtime_sio.pusher.session import MAX_PENDING, PusherSession
from realtime_sio.settings import PusherApp, Settings

log = logs.get(__name__)

SERVER_TO_USER = "#server-to-user-"  # pusher-js subscribes to #server-to-user-<id> after a successful signin

YIELD_EVERY = 32  # messages handled in a row before a session's task lets other work run


class PusherServer:
    """Serves Pusher connections for the configured apps (keys) on this node."""

    def __init__(
        self,
        settings: Settings,
        apps: Iterable[PusherApp],
        hub: Hub,
        broadcaster: Broadcaster,
        presence: PresenceStore,
        metrics: Metrics,
        refused: Callable[[str, str], None],
        admit: Callable[[], ErrorCode | None],
        is_draining: Callable[[], bool],
    ) -> None:
        self._settings = settings
        self._apps: Mapping[str, PusherApp] = {app.key: app for app in apps}
        self.hub = hub
        self._broadcaster = broadcaster
        self._presence = presence
        self._metrics = metrics
        self._refused = refused
        self._admit = admit
        self._is_draining = is_draining
        self._handlers = {
            "pusher:subscribe": self._subscribe,
            "pusher:unsubscribe": self._unsubscribe,
            "pusher:ping": self._ping,
            "pusher:signin": self._signin,
        }
        self._run = self._drain_pending  # one bound method shared by every session

    # -- connections --------------------------------------------------------------------------------------------
    def open(self, connection: WebSocketConnection, environ: dict[str, Any]) -> None:
        """Answer the upgrade, then either establish a session or send ``pusher:error`` and close with its code."""
        connection.accept(environ["HTTP_SEC_WEBSOCKET_KEY"])
        if connection.ended:
            return
        refusal = self._admit()
        checked = handshake.check(environ, self._apps, self._settings.cors_origins)
        if refusal is not None or isinstance(checked, PusherError):
            error = checked if isinstance(checked, PusherError) else None
            if refusal is not None:
                error = messages.RECONNECT if self._is_draining() else messages.OVER_CAPACITY
            assert error is not None
            self._metrics.connects.labels(outcome="refused").inc()
            self._refused(error.reason, f"{error.code}: {error.message}")
            connection.write_message(messages.error(error))
            connection.end(error.code)
            return
        s = self._settings
        now = asyncio.get_running_loop().time()
        session = PusherSession(connection, checked, now, float(s.subscribe_burst), s.pusher.client_event_rate, self._run)
        self.hub.add(session)
        self._metrics.connects.labels(outcome="accepted").inc()
        self._metrics.connections.inc()  # websocket_connections_total: the watchdog's traffic check counts both
        connection.write_message(messages.connection_established(session.socket_id, s.pusher.activity_timeout))
        connection.deliver_to(session.received, session.closed)
        log.debug("pusher_connected", socket_id=session.socket_id, app=checked.id)

    async def _drain_pending(self, session: PusherSession) -> None:
        """Handle a session's pending messages in order; once it ended, leave its channels. Never raises."""
        try:
            handled = 0
            while session.pending:
                inbound = session.pending.popleft()
                if len(session.pending) == MAX_PENDING // 2:  # reading paused at MAX_PENDING resumes at half
                    session.connection.resume_reading()
                await self._handle(session, inbound)
                handled += 1
                if handled % YIELD_EVERY == 0:
                    await asyncio.sleep(0)
            session.pending = None
            if session.ended:
                await self._end(session)
        except Exception:  # a bug of ours, not client input: keep the traceback, drop the connection
            log.exception("pusher_handler_failed", socket_id=session.socket_id)
            session.pending = None
            session.connection.abort()
            await self._end(session)
        finally:
            session.task = None
            if session.pending or (session.ended and session.socket_id in self.hub.sessions):
                session.task = asyncio.get_running_loop().create_task(self._run(session))

    async def _handle(self, session: PusherSession, inbound: Inbound) -> None:
        if session.ended:
            return  # the connection is gone: nothing it asked for matters now
        handler = self._handlers.get(inbound.event)
        if handler is not None:
            await handler(session, inbound)
        elif inbound.event.startswith("client-"):
            await self._client_event(session, inbound)
        else:
            self._error(session, messages.INVALID_MESSAGE, inbound.event[:64] or "not a JSON object with an event")

    async def _end(self, session: PusherSession) -> None:
        """The connection ended: leave every channel (announcing presence leaves) and forget it."""
        if session.socket_id not in self.hub.sessions:
            return
        channels = list(session.channels.items())
        self.hub.remove(session)
        self._metrics.connections.dec()
        for channel, user_id in channels:
            self._metrics.subscriptions.labels(kind=kind_of(channel)).dec()
            if user_id is not None:
                await self._leave_presence(session, channel)
        log.debug("pusher_disconnected", socket_id=session.socket_id)

    def _error(self, session: PusherSession, error: PusherError, detail: str, channel: str | None = None, status: int = 0) -> None:
        """Refuse one request: ``pusher:error`` (and ``pusher:subscription_error`` for a channel), counted and logged."""
        self._refused(error.reason, detail)
        session.send(messages.error(error))
        if channel is not None:
            session.send(messages.subscription_error(channel, status, error.message))

    # -- handlers -----------------------------------------------------------------------------------------------
    async def _ping(self, session: PusherSession, inbound: Inbound) -> None:
        session.send(messages.PONG)

    async def _subscribe(self, session: PusherSession, inbound: Inbound) -> None:
        request = messages.subscribe(inbound.data)
        if request is None:
            self._error(session, messages.INVALID_MESSAGE, "pusher:subscribe needs data {channel, auth?, channel_data?}")
            return
        channel = request.channel
        s = self._settings
        if session.user_id is not None and channel == SERVER_TO_USER + session.user_id:
            # pusher-js's own channel for events sent to the signed-in user: acknowledged so the client does not
            # wait on it; nothing is published there (sendToUser is not served).
            session.send(messages.subscription_succeeded(channel))
            return
        if not is_valid_name(channel, s.max_channel_name_length):
            self._error(session, messages.INVALID_CHANNEL, channel[:80], channel[:200], 400)
            return
        kind = kind_of(channel)
        if channel in session.channels and kind != "presence":
            session.send(messages.subscription_succeeded(channel))  # pusher-js resubscribes only after reconnects
            return
        limit_error = self._over_limits(session, channel)
        if limit_error is not None:
            self._error(session, limit_error, channel[:80], channel, 429)
            return
        app = session.app
        channel_data = request.channel_data if kind == "presence" else None
        if kind != "public" and not channel_auth_valid(app.key, app.secret, session.socket_id, channel, request.auth, channel_data):
            self._metrics.subscribe_requests.labels(kind=kind, outcome="denied").inc()
            self._metrics.auth_failures.labels(reason=messages.UNAUTHORIZED.reason).inc()
            self._error(session, messages.UNAUTHORIZED, f"bad or missing auth for {channel[:80]}", channel, 401)
            return
        if kind == "presence":
            await self._join_presence(session, channel, channel_data)
            return
        self._join(session, channel, None)
        session.send(messages.subscription_succeeded(channel))
        if is_cache_channel(channel):
            self.hub.replay_last(session, channel)

    def _over_limits(self, session: PusherSession, channel: str) -> PusherError | None:
        """The subscribe rate and channel count limits Socket.IO sockets have (SUBSCRIBE_RATE/BURST, MAX_SUBSCRIPTIONS)."""
        s = self._settings
        now = asyncio.get_running_loop().time()
        self._refill(session, now)
        if session.subscribe_tokens < 1.0:
            return messages.RATE_LIMITED
        session.subscribe_tokens -= 1.0
        if channel not in session.channels and len(session.channels) >= s.max_subscriptions_per_socket:
            return messages.TOO_MANY_CHANNELS
        return None

    def _refill(self, session: PusherSession, now: float) -> None:
        s = self._settings
        elapsed = now - session.refilled
        session.refilled = now
        session.subscribe_tokens = min(float(s.subscribe_burst), session.subscribe_tokens + elapsed * s.subscribe_rate)
        rate = s.pusher.client_event_rate
        session.event_tokens = min(rate, session.event_tokens + elapsed * rate)

    def _join(self, session: PusherSession, channel: str, user_id: str | None) -> None:
        kind = kind_of(channel)
        if channel not in session.channels:
            self._metrics.subscriptions.labels(kind=kind).inc()
        self._metrics.subscribe_requests.labels(kind=kind, outcome="joined").inc()
        self.hub.join(session, channel, user_id)

    async def _join_presence(self, session: PusherSession, channel: str, channel_data: str | None) -> None:
        data = messages.presence_data(channel_data)
        if data is None:
            self._error(session, messages.BAD_CHANNEL_DATA, channel[:80], channel, 400)
            return
        member = Member(user_id=data.user_id, user_info=data.user_info)
        try:
            joined: JoinResult = await self._presence.join(channel, session.socket_id, member)
        except Exception as exc:  # noqa: BLE001 - the store (Redis) is away: refuse, the client may retry
            log.warning("presence_join_failed", socket_id=session.socket_id, channel=channel, error=type(exc).__name__)
            self._error(session, messages.UNAVAILABLE, channel[:80], channel, 503)
            return
        if session.ended:
            await self._presence.leave(channel, session.socket_id)
            return
        self._join(session, channel, str(data.user_id))
        members = [(m.user_id, m.user_info) for m in joined.members]
        session.send(messages.subscription_succeeded(channel, members))
        if is_cache_channel(channel):
            self.hub.replay_last(session, channel)

    async def _signin(self, session: PusherSession, inbound: Inbound) -> None:
        """User authentication: a ``user_data`` signed by the app (Laravel's ``/broadcasting/user-auth``) names the
        connection's user, whom ``terminate_connections`` can then reach (as on Pusher)."""
        request = messages.signin(inbound.data)
        app = session.app
        if request is None or not user_auth_valid(app.key, app.secret, session.socket_id, request.user_data, request.auth):
            self._metrics.auth_failures.labels(reason=messages.BAD_SIGNIN.reason).inc()
            self._error(session, messages.BAD_SIGNIN, "pusher:signin with a bad signature or user_data")
            return
        session.user_id = request.user_id
        session.send(messages.signin_success(request.user_data))
        log.debug("pusher_signed_in", socket_id=session.socket_id, user_id=request.user_id)

    async def _unsubscribe(self, session: PusherSession, inbound: Inbound) -> None:
        request = messages.subscribe(inbound.data)
        if request is None:
            self._error(session, messages.INVALID_MESSAGE, "pusher:unsubscribe needs data {channel}")
            return
        channel = request.channel
        if channel not in session.channels:
            return
        user_id = session.channels[channel]
        self.hub.leave(session, channel)
        self._metrics.subscriptions.labels(kind=kind_of(channel)).dec()
        if user_id is not None:
            await self._leave_presence(session, channel)

    async def _leave_presence(self, session: PusherSession, channel: str) -> None:
        try:
            await self._presence.leave(channel, session.socket_id)  # the store announces presence:leaving
        except Exception as exc:  # noqa: BLE001 - Redis away: the cluster store retries leaves itself (pending)
            log.warning("presence_leave_failed", socket_id=session.socket_id, channel=channel, error=type(exc).__name__)

    async def _client_event(self, session: PusherSession, inbound: Inbound) -> None:
        """A whisper: private/presence channels the sender joined only, rate-limited, never echoed to the sender."""
        channel = inbound.channel
        if channel is None or not is_valid_name(channel, self._settings.max_channel_name_length):
            self._error(session, messages.INVALID_MESSAGE, "a client event needs a valid channel")
            return
        if kind_of(channel) == "public":
            self._error(session, messages.CLIENT_EVENTS_PRIVATE_ONLY, channel[:80])
            return
        if channel not in session.channels:
            self._error(session, messages.NOT_A_MEMBER, channel[:80])
            return
        self._refill(session, asyncio.get_running_loop().time())
        if session.event_tokens < 1.0:
            self._error(session, messages.RATE_LIMITED, f"more than {self._settings.pusher.client_event_rate:g} client events/s")
            return
        session.event_tokens -= 1.0
        await self._broadcaster.signal(
            channel, inbound.event, inbound.data, except_sid=session.socket_id, source="whisper", user_id=session.channels[channel]
        )

    # -- operations ---------------------------------------------------------------------------------------------
    def reconnect_all(self, sessions: Iterable[PusherSession]) -> None:
        """Tell sessions to reconnect elsewhere (4200, pusher-js reconnects at once): the drain."""
        for session in sessions:
            if not session.connection.ended:
                session.fail(messages.RECONNECT)

    def terminate_user(self, app_id: str, user_id: str) -> int:
        """Close every connection of ``user_id`` to app ``app_id`` on this node: signed in as that user, or a member of
        a presence channel as that user. ``pusher:error`` 4009, then close 4009 (pusher-js does not reconnect);
        returns how many were closed."""
        closed = 0
        for session in self.hub.sessions_of(lambda s: s.app.id == app_id and _is_user(s, user_id)):
            if not session.connection.ended:
                session.fail(messages.TERMINATED)
                closed += 1
        return closed


def _is_user(session: PusherSession, user_id: str) -> bool:
    """True when ``session`` signed in as ``user_id`` or joined a presence channel as that user."""
    return session.user_id == user_id or user_id in session.channels.values()
