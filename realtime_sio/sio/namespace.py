"""The Laravel Echo socket protocol on namespace ``/``: connect, subscribe, unsubscribe, client event, ping.

Handlers parse (``sio/payloads.py``), decide (``auth.rules`` / ``auth.laravel``, pure or delegated) and act
(rooms, presence, the broadcaster). Every refusal is a documented catalogue code: ``connect_error`` data at connect,
``subscription_error(channel, status, {code, message})`` on subscribe; nothing a client sends can raise out of here.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, NoReturn

import socketio

from realtime_sio import errors, logs
from realtime_sio.auth.delegation import Authorizer, DelegatedAnswer
from realtime_sio.auth.rules import ChannelRules
from realtime_sio.auth.tokens import ANONYMOUS, Identity, TokenVerifier
from realtime_sio.channels import kind_of
from realtime_sio.errors import ErrorCode, RealtimeError
from realtime_sio.latency.acks import AckSampler
from realtime_sio.members import Member
from realtime_sio.metrics import CHANNEL_KINDS, Metrics
from realtime_sio.publish.broadcaster import Broadcaster, Message
from realtime_sio.publish.history import Cursor
from realtime_sio.publish.presence import JoinResult, PresenceStore
from realtime_sio.settings import Settings
from realtime_sio.sio import payloads
from realtime_sio.sio.recovery import Recovery, RecoveryDeferred

log = logs.get(__name__)

_NOT_OUR_TOKEN = (errors.TOKEN_MALFORMED, errors.TOKENS_DISABLED, errors.TOKEN_BAD_ALGORITHM)


@dataclass
class Connection:
    """Per-socket state. ``channels`` holds every channel joined through subscribe or auto-join."""

    identity: Identity
    cookie: str | None
    positions: dict[str, Cursor]  # recovery positions presented at connect, consumed on join
    channels: set[str] = field(default_factory=set)
    # the user ids it joined presence channels as (delegated auth): an empty tuple until it first joins one (most
    # sockets never do, and an empty set per connection is 216 bytes)
    member_ids: set[str] | tuple[()] = ()
    # settling[i] = (channel, cursor, gate) joined in the connect handler, brought up to date after CONNECT is sent
    settling: list[tuple[str, Cursor | None, list[Message]]] = field(default_factory=list)
    tokens: float = 0.0
    refilled: float = 0.0


class EchoNamespace(socketio.AsyncNamespace):  # type: ignore[misc]
    """Laravel Echo's socket.io connector protocol, as laravel-echo-server speaks it."""

    def __init__(
        self,
        settings: Settings,
        verifier: TokenVerifier,
        rules: ChannelRules,
        presence: PresenceStore,
        broadcaster: Broadcaster,
        recovery: Recovery,
        metrics: Metrics,
        is_draining: Callable[[], bool],
        authorizer: Authorizer | None = None,
        acks: AckSampler | None = None,
    ) -> None:
        super().__init__("/")
        self._settings = settings
        self._verifier = verifier
        self._rules = rules
        self._presence = presence
        self._broadcaster = broadcaster
        self._recovery = recovery
        self._metrics = metrics
        self._is_draining = is_draining
        self._authorizer = authorizer
        self._acks = acks  # sampled delivery acknowledgements (latency/acks.py); None = latency not measured
        self.connections: dict[str, Connection] = {}
        # Metric children of the per-connection paths, bound once: labels() costs a lock and a dict lookup per call,
        # a tenth of a disconnect's CPU when 10,000 sockets leave together (issue 14).
        self._accepted = metrics.connects.labels(outcome="accepted")
        self._subscribed = {kind: metrics.subscriptions.labels(kind=kind) for kind in CHANNEL_KINDS}
        self._joined = {kind: metrics.subscribe_requests.labels(kind=kind, outcome="joined") for kind in CHANNEL_KINDS}
        self._disconnects = {reason: metrics.disconnects.labels(reason=reason) for reason in payloads.DISCONNECT_REASONS}
        self._handlers: dict[str, Callable[..., Any]] = {
            "subscribe": self.on_subscribe,
            "unsubscribe": self.on_unsubscribe,
            "client event": self.on_client_event,
            "ping": self.on_ping,
            "latency:ack": self.on_latency_ack,
        }

    # -- dispatch ----------------------------------------------------------------------------------------------
    async def trigger_event(self, event: str, *args: Any) -> Any:
        if event in ("connect", "disconnect"):
            return await super().trigger_event(event, *args)
        handler = self._handlers.get(event)
        if handler is None:
            self._drop(args[0] if args else None, "unknown_event", event_name=str(event)[:64])
            return None
        try:
            return await handler(*args)
        except Exception:
            log.exception("handler_failed", handler_event=event, sid=args[0] if args else None)
            return None

    def _drop(self, sid: str | None, reason: str, **context: Any) -> None:
        # ``context`` must not hold ``event``: structlog's first positional is the event name (issue 11, item 1).
        self._metrics.bad_input.labels(reason=reason).inc()
        log.info("client_input_dropped", reason=reason, sid=sid, **context)

    # -- connect / disconnect ----------------------------------------------------------------------------------
    async def on_connect(self, sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        if self._is_draining():
            self._refuse(errors.SERVER_DRAINING, "draining")
        try:
            token = payloads.token_from(auth, environ)
            identity = self._identity(token, payloads.token_is_echo_header(auth))
            positions = payloads.connect_positions(auth, self._settings.max_subscriptions_per_socket)
        except RealtimeError as exc:
            self._refuse(exc.error, exc.error.code, exc.detail)
        conn = Connection(
            identity=identity,
            cookie=payloads.handshake_cookie(environ, any_origin="*" in self._settings.cors_origins),
            positions=positions,
            tokens=float(self._settings.subscribe_burst),
            refilled=time.monotonic(),
        )
        self.connections[sid] = conn
        self._accepted.inc()
        self._metrics.connections.inc()
        log.debug("client_connected", sid=sid, user_id=identity.user_id, transport=payloads.transport_of(environ))
        if self._acks is not None and payloads.wants_acks(auth):
            self._ask_acks(sid)
        if identity.authenticated and self._settings.auto_join:
            for channel in payloads.auto_rooms(self._settings, identity):
                await self._join(sid, conn, channel, since=conn.positions.pop(channel, None), at_connect=True)

    async def after_connect(self, sid: str, namespace: str) -> None:
        """The CONNECT packet is out: replay or announce positions for the rooms joined at connect."""
        conn = self.connections.get(sid) if namespace == self.namespace else None
        if conn is None:
            return
        settling, conn.settling = conn.settling, []
        try:
            for channel, since, gate in settling:
                if (await self._settle(sid, channel, since, gate)).get("ok") is not True:
                    return  # deferred: the transport is closing (its disconnect drops the other gates)
        except Exception:  # a bug of ours, not client input: keep the traceback, never fail python-socketio's connect
            log.exception("after_connect_failed", sid=sid)
            self._recovery.forget(sid)

    def _identity(self, token: str | None, from_echo_headers: bool) -> Identity:
        """Verify the connect token. With delegated auth, a bearer in Echo's auth.headers that is plainly not one of
        our JWTs (not a JWT, other algorithm, or no JWT key configured) is Laravel's credential: anonymous at connect,
        forwarded to /broadcasting/auth on subscribe. A JWT that looks like ours but fails is still refused."""
        try:
            return self._verifier.verify(token)
        except RealtimeError as exc:
            if from_echo_headers and self._authorizer is not None and exc.error in _NOT_OUR_TOKEN:
                log.debug("echo_bearer_left_to_laravel", reason=exc.error.code)
                return ANONYMOUS
            raise

    def _refuse(self, error: ErrorCode, reason: str, detail: str | None = None) -> NoReturn:
        self._metrics.connects.labels(outcome="refused").inc()
        if error is not errors.SERVER_DRAINING:
            self._metrics.auth_failures.labels(reason=reason).inc()
        log.info("connection_refused", reason=reason)
        raise socketio.exceptions.ConnectionRefusedError(error.message, error.payload(detail))

    async def on_disconnect(self, sid: str, reason: Any = None) -> None:
        conn = self.connections.pop(sid, None)
        if conn is None:
            return
        self._metrics.connections.dec()
        self._disconnects[payloads.disconnect_reason(reason)].inc()
        self._recovery.forget(sid)
        for channel in list(conn.channels):
            await self._leave(sid, conn, channel, in_room=False)
        log.debug("client_disconnected", sid=sid, user_id=conn.identity.user_id, reason=str(reason))

    # -- subscribe / unsubscribe -------------------------------------------------------------------------------
    async def on_subscribe(self, sid: str, data: Any = None, *_: Any) -> dict[str, Any]:
        """Join a channel; the return value is the ack for clients that ask for one (Echo does not)."""
        conn = self.connections.get(sid)
        if conn is None:
            return {"ok": False}
        channel_hint = payloads.channel_hint(data)
        try:
            request = payloads.subscribe_request(data, self._settings.max_channel_name_length)
            self._refuse_sid_room(request.channel)
            self._check_limits(conn, request.channel)
        except RealtimeError as exc:
            return await self._subscription_error(sid, channel_hint, exc.error, exc.detail)
        channel = request.channel
        if channel in conn.channels:
            return {"ok": True, "channel": channel}  # subscribing twice is a no-op (Echo resends after reconnects)
        kind = kind_of(channel)
        decision = self._rules.decide(conn.identity, channel)
        member: Member | None = None
        if decision == "laravel":
            answer = await self._delegate(sid, conn, channel, request.headers)
            if answer.status != 200:
                error = errors.AUTH_UNAVAILABLE if answer.status == 0 else errors.CHANNEL_FORBIDDEN
                return await self._subscription_error(sid, channel, error, status=answer.status)
            member = answer.member
        elif decision == "deny":
            return await self._subscription_error(sid, channel, errors.CHANNEL_FORBIDDEN)
        elif kind == "presence":
            member = Member(user_id=conn.identity.info["id"], user_info=dict(conn.identity.info))
        if sid not in self.connections or channel in conn.channels:
            return {"ok": False}  # disconnected, or joined meanwhile, while the delegated decision was pending
        since = request.since if request.since is not None else conn.positions.pop(channel, None)
        return await self._join(sid, conn, channel, member=member, since=since)

    def _is_sid_room(self, channel: str) -> bool:
        """True when ``channel`` is a connected socket's own room (python-socketio names it after the sid).

        Sids are valid channel names and not secret (``toOthers`` payloads, X-Socket-Id): joining one would deliver
        that socket's private emits (presence lists, subscription errors, recovery replays) to the joiner.
        """
        return bool(self.server.manager.is_sid_room(self.namespace, channel))

    def _refuse_sid_room(self, channel: str) -> None:
        if self._is_sid_room(channel):
            raise RealtimeError(errors.CHANNEL_INVALID, "a socket id is not a channel")

    def _check_limits(self, conn: Connection, channel: str) -> None:
        s = self._settings
        now = time.monotonic()
        conn.tokens = min(float(s.subscribe_burst), conn.tokens + (now - conn.refilled) * s.subscribe_rate)
        conn.refilled = now
        if conn.tokens < 1.0:
            raise RealtimeError(errors.RATE_LIMITED)
        conn.tokens -= 1.0
        if channel not in conn.channels and len(conn.channels) >= s.max_subscriptions_per_socket:
            raise RealtimeError(errors.TOO_MANY_SUBSCRIPTIONS)

    async def _delegate(self, sid: str, conn: Connection, channel: str, headers: Mapping[str, str]) -> DelegatedAnswer:
        if self._authorizer is None:
            log.warning("laravel_auth_not_configured", channel=channel)
            return DelegatedAnswer(status=403)
        return await self._authorizer.authorize(channel, sid, headers, conn.cookie, conn.identity)

    async def _join(
        self,
        sid: str,
        conn: Connection,
        channel: str,
        member: Member | None = None,
        since: Cursor | None = None,
        at_connect: bool = False,
    ) -> dict[str, Any]:
        kind = kind_of(channel)
        joined: JoinResult | None = None
        if member is not None:
            try:
                joined = await self._presence.join(channel, sid, member)
            except Exception as exc:  # noqa: BLE001 - the store (Redis) is away: refuse, the client may retry
                log.warning("presence_join_failed", sid=sid, channel=channel, error=type(exc).__name__)
                return await self._subscription_error(sid, channel, errors.PRESENCE_UNAVAILABLE)
            if sid not in self.connections:
                await self._presence.leave(channel, sid)  # it disconnected while we were writing
                return {"ok": False}
        if self._is_sid_room(channel):  # checked again: a delegated or presence decision awaited since subscribe
            if joined is not None:
                await self._presence.leave(channel, sid)
            return await self._subscription_error(sid, channel, errors.CHANNEL_INVALID, "a socket id is not a channel")
        gate = self._recovery.open_gate(sid, channel)
        await self.enter_room(sid, channel)
        conn.channels.add(channel)
        self._subscribed[kind].inc()
        self._joined[kind].inc()
        log.debug("channel_joined", sid=sid, channel=channel, user_id=conn.identity.user_id)
        if member is not None and joined is not None:
            if not isinstance(conn.member_ids, set):
                conn.member_ids = set()
            conn.member_ids.add(str(member.user_id))
            await self.emit("presence:subscribed", (channel, [m.wire() for m in joined.members]), to=sid)
        if at_connect:
            conn.settling.append((channel, since, gate))  # after the CONNECT packet (after_connect)
            return {"ok": True, "channel": channel}
        return await self._settle(sid, channel, since, gate)

    async def _settle(self, sid: str, channel: str, since: Cursor | None, gate: list[Message]) -> dict[str, Any]:
        try:
            position = await self._recovery.settle(sid, channel, since, gate)
        except RecoveryDeferred as exc:
            self._reconnect_later(sid, channel, str(exc))
            return {"ok": False, "channel": channel, "code": "recovery_deferred", "retryable": True}
        ack: dict[str, Any] = {"ok": True, "channel": channel}
        if position is not None:
            ack["position"] = position
        return ack

    def _reconnect_later(self, sid: str, channel: str, error: str) -> None:
        """History could not be read now: end the socket's transport, so the client reconnects (socket.io-client
        and Echo do so by themselves) and presents the same positions, instead of being told to reset."""
        log.warning("recovery_deferred", sid=sid, channel=channel, error=error)
        eio_sid = self.server.manager.eio_sid_from_sid(sid, self.namespace)
        sock = self.server.eio.sockets.get(eio_sid) if eio_sid is not None else None
        if sock is None or sock.closed:
            return
        sock.drop_soon()  # the transport too, even a stuck writer

    async def on_unsubscribe(self, sid: str, data: Any = None, *_: Any) -> None:
        conn = self.connections.get(sid)
        channel = payloads.channel_hint(data)
        if conn is None or channel is None or channel not in conn.channels:
            return
        await self._leave(sid, conn, channel, in_room=True)

    async def _leave(self, sid: str, conn: Connection, channel: str, *, in_room: bool) -> None:
        conn.channels.discard(channel)
        kind = kind_of(channel)
        self._subscribed[kind].dec()
        if in_room:
            await self.leave_room(sid, channel)
        if kind == "presence":
            await self._presence.leave(channel, sid)  # the store announces presence:leaving

    async def _subscription_error(
        self, sid: str, channel: str | None, error: ErrorCode, detail: str | None = None, status: int | None = None
    ) -> dict[str, Any]:
        code_status = error.status if status is None else status
        kind = kind_of(channel) if channel else "public"
        outcome = "denied" if error in (errors.CHANNEL_FORBIDDEN, errors.AUTH_UNAVAILABLE) else "invalid"
        self._metrics.subscribe_requests.labels(kind=kind, outcome=outcome).inc()
        if outcome == "denied":
            self._metrics.auth_failures.labels(reason=error.code).inc()
        else:
            self._metrics.bad_input.labels(reason=error.code).inc()
        log.info("subscription_denied", sid=sid, channel=channel, code=error.code, status=code_status)
        payload = error.payload(detail)
        await self.emit("subscription_error", (channel, code_status, payload), to=sid)
        return {"ok": False, "channel": channel, "status": code_status, **payload}

    # -- operations ------------------------------------------------------------------------------------------
    async def terminate_user(self, user_id: str) -> int:
        """Disconnect every socket of ``user_id`` on this node (its JWT identity, or a presence member as that user):
        a server-side disconnect, which socket.io-client and Echo do not reconnect from. Returns how many."""
        sids = [sid for sid, conn in self.connections.items() if conn.identity.user_id == user_id or user_id in conn.member_ids]
        for sid in sids:
            await self.disconnect(sid)
        return len(sids)

    # -- whispers and ping -------------------------------------------------------------------------------------
    async def on_client_event(self, sid: str, data: Any = None, *_: Any) -> None:
        conn = self.connections.get(sid)
        if conn is None:
            return
        whisper = payloads.client_event(data, self._settings.max_channel_name_length)
        if whisper is None:
            self._drop(sid, "client_event_invalid")
            return
        if kind_of(whisper.channel) == "public":
            self._drop(sid, "client_event_public_channel", channel=whisper.channel)
            return
        if whisper.channel not in conn.channels:
            self._drop(sid, "client_event_not_member", channel=whisper.channel)
            return
        await self._broadcaster.signal(whisper.channel, whisper.event, whisper.data, except_sid=sid, source="whisper")

    def _ask_acks(self, sid: str) -> None:
        """The client opted in to acknowledging sampled deliveries: start its countdown (latency/acks.py)."""
        assert self._acks is not None
        countdown = self._acks.countdown()
        eio_sid = self.server.manager.eio_sid_from_sid(sid, self.namespace)
        sock = self.server.eio.sockets.get(eio_sid) if eio_sid is not None else None
        if countdown and sock is not None:
            sock.ack_countdown = countdown

    async def on_latency_ack(self, sid: str, data: Any = None, *_: Any) -> None:
        """A sampled delivery's acknowledgement (``latency:ack``, id): the exact accepted → acknowledged figure."""
        if self._acks is None:
            self._drop(sid, "unknown_event", event_name="latency:ack")
            return
        reason = self._acks.acknowledge(sid, data)
        if reason is not None:
            self._drop(sid, reason)

    async def on_ping(self, sid: str, *_: Any) -> str:
        """The migration plan's Artillery ``ping``: the return value is the ack when the client asked for one."""
        return "pong"
