"""Composition root: builds every part from :class:`Settings` and owns the lifecycle. The only module that knows all others.

Start: the lifecycle's parts in order (Redis client, cluster bus, node heartbeat, Laravel auth session, Laravel Redis
listener, dashboard sampler, loop watch, certificate reloader; lifecycle.py) → HTTP site. Stop (SIGTERM/SIGINT), each
step bounded by the shutdown timeout: ``/ready`` turns 503 and new connections are refused → connected clients are told
to reconnect, spread over ``drain_seconds`` → the parts stop newest first (tasks, then resources: Redis last) → the
HTTP site closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import socketio
from aiohttp import web
from prometheus_client import CollectorRegistry

from realtime_sio import __version__, client_assets, logs, request_bodies, runtime_watch
from realtime_sio import metrics as metrics_module
from realtime_sio.admission import Admission
from realtime_sio.auth.laravel import LaravelAuthorizer
from realtime_sio.auth.rules import ChannelRules
from realtime_sio.auth.tokens import TokenVerifier
from realtime_sio.cluster import bus as bus_module
from realtime_sio.cluster.bus import RedisBus
from realtime_sio.cluster.claim import IngestClaim
from realtime_sio.cluster.directory import ClusterChannelDirectory
from realtime_sio.cluster.heartbeat import Heartbeat
from realtime_sio.cluster.nodes import Nodes
from realtime_sio.cluster.presence import RedisPresence
from realtime_sio.cluster.redis_pool import shared_client
from realtime_sio.cluster.script_calls import ScriptCalls
from realtime_sio.dashboard import feed as dashboard_feed
from realtime_sio.dashboard.routes import routes as dashboard_routes
from realtime_sio.dashboard.stream import Streams
from realtime_sio.engine import upstream
from realtime_sio.engine.upgrade_router import Reply, Upgrades
from realtime_sio.engine.upstream import RoutedSite
from realtime_sio.latency.acks import AckSampler
from realtime_sio.latency.estimate import Estimator
from realtime_sio.lifecycle import Lifecycle
from realtime_sio.members import Member
from realtime_sio.metrics import Metrics
from realtime_sio.probes import Health
from realtime_sio.probes import routes as probe_routes
from realtime_sio.publish import redis_listener
from realtime_sio.publish.broadcaster import Broadcaster, LocalTransport
from realtime_sio.publish.channel_directory import (
    ChannelDirectory,
    LocalChannelDirectory,
)
from realtime_sio.publish.delivery import LocalDelivery
from realtime_sio.publish.events_api import (
    EVENTS_PATH,
    EventsEndpoint,
    lean_route,
    once_key_maker,
)
from realtime_sio.publish.events_api import routes as events_routes
from realtime_sio.publish.history import MemoryHistory
from realtime_sio.publish.presence import Announce, LocalPresence, PresenceStore
from realtime_sio.publish.pusher_api import PusherApi
from realtime_sio.publish.terminations import CHANNEL as TERMINATIONS
from realtime_sio.publish.terminations import UserTerminations
from realtime_sio.pusher.hub import Hub
from realtime_sio.pusher.server import PusherServer
from realtime_sio.refusals import CONNECT_TIMEOUT, MALFORMED_PACKET, Refusals
from realtime_sio.settings import ChannelRule, Settings
from realtime_sio.sio import server as sio_server
from realtime_sio.sio.fanout import LeanManager
from realtime_sio.sio.namespace import EchoNamespace
from realtime_sio.sio.recovery import Recovery
from realtime_sio.tls import CertificateReloader

log = logs.get(__name__)

APP_KEY: web.AppKey[Realtime] = web.AppKey("realtime", object)  # type: ignore[arg-type]

ENGINEIO_PATH = "/socket.io/"  # sio.attach's default path

# With REALTIME_SIO_LARAVEL_AUTH_URL set and LARAVEL_AUTH_DEFAULT true, private-/presence- channels that no
# configured rule matches are asked of Laravel (laravel-echo-server's behaviour) instead of being denied.
LARAVEL_FALLBACK_RULES = (ChannelRule("private-*", "laravel"), ChannelRule("presence-*", "laravel"))


@dataclass
class Realtime:
    """Everything one server instance is made of."""

    settings: Settings
    metrics: Metrics
    health: Health
    sio: socketio.AsyncServer
    manager: LeanManager
    namespace: EchoNamespace
    broadcaster: Broadcaster
    web_app: web.Application
    lifecycle: Lifecycle  # every background part, started in order when the app starts, stopped in reverse
    upgrades: Upgrades | None = None  # serve() listens through an UpgradeRouter (head deadline and limits, lean WebSockets)
    tls: CertificateReloader | None = None  # TLS_CERT_FILE set: serve() listens with its context
    pusher: PusherServer | None = None  # the Pusher protocol on /app/{key} (PUSHER_APPS set, PUSHER_WEBSOCKET on)


def build(settings: Settings, registry: CollectorRegistry | None = None) -> Realtime:
    """Wire every part for ``settings``; no I/O happens until the aiohttp app starts."""
    upstream.hide_versions()
    metrics = metrics_module.create(registry)
    health = Health()
    admission = Admission(health, metrics, settings.admission.max_lag, settings.admission.fd_reserve)
    def slow_consumer(eio_sid: str) -> None:
        """A Socket.IO socket dropped by fan-out as a slow reader (sio/fanout.py drops it)."""
        metrics.slow_consumer_disconnects.inc()
        log.warning("slow_consumer_disconnected", eio_sid=eio_sid)

    manager = LeanManager(settings.engine.max_buffered_bytes, on_slow_consumer=slow_consumer)
    acks = AckSampler(settings.latency.ack_sample_rate, metrics.delivery_acknowledged)
    estimator = Estimator(metrics.delivery_estimated, acks) if settings.latency.estimate else None
    sio = sio_server.create(settings, manager)

    refusals = Refusals(metrics)
    # a flood of garbage packets is one log line per minute, with how many went unlogged (refusals.py)
    sio.on_malformed = lambda eio_sid, error: refusals(MALFORMED_PACKET, f"{error} (eio_sid {eio_sid})")
    sio.on_connect_timeout = lambda eio_sid: refusals(CONNECT_TIMEOUT, f"no namespace connected after {settings.limits.connect_timeout:g} s")

    lifecycle = Lifecycle()
    presence: PresenceStore
    directory: ChannelDirectory
    once_key: redis_listener.OnceKey = redis_listener.no_once_key
    hub = _pusher_hub(settings, metrics, estimator)

    def local_counts() -> dict[str, int]:
        """This node's channel → subscribers, Socket.IO and Pusher together (the directory, the node's counts)."""
        counts = manager.channel_counts()
        if hub is not None:
            for channel, n in hub.channel_counts().items():
                counts[channel] = counts.get(channel, 0) + n
        return counts

    terminations = UserTerminations()  # terminate_connections: every node closes the user's connections, both protocols
    delivery = LocalDelivery(
        manager,
        metrics,
        hub.deliver if hub is not None else None,
        controls={TERMINATIONS: terminations.received},
        estimator=estimator,
        also_serves=hub.serves if hub is not None else None,
    )
    if settings.redis.url:
        broadcaster, presence, directory, once_key = _cluster(settings, delivery, metrics, health, lifecycle, local_counts)
    else:
        history = MemoryHistory(settings.cluster.history_size, settings.cluster.history_seconds) if settings.cluster.history_size else None
        broadcaster = Broadcaster(metrics, LocalTransport(history, delivery.deliver, once_seconds=settings.cluster.history_seconds))
        presence = LocalPresence(_announcer(broadcaster))
        directory = LocalChannelDirectory(local_counts, presence)
    authorizer = _laravel_authorizer(settings)
    rules = settings.channel_rules
    if authorizer is not None and settings.laravel.auth_default:
        rules += LARAVEL_FALLBACK_RULES
    namespace = EchoNamespace(
        settings=settings,
        verifier=TokenVerifier(settings.jwt),
        rules=ChannelRules(rules),
        presence=presence,
        broadcaster=broadcaster,
        recovery=Recovery(broadcaster, delivery, metrics),
        metrics=metrics,
        is_draining=lambda: health.draining,
        authorizer=authorizer,
        acks=acks if estimator is not None else None,
    )
    sio.register_namespace(namespace)
    terminations.add("socketio", lambda app_id, user_id: namespace.terminate_user(user_id))  # sockets belong to no app
    manager.on_connected = namespace.after_connect

    bodies = request_bodies.middleware(
        settings.limits.body_timeout,
        lambda request: settings.engine.max_message_bytes if request.path.startswith(ENGINEIO_PATH) else settings.api_max_body_bytes,
        refusals,
    )
    web_app = web.Application(
        middlewares=[bodies, _admission_middleware(admission)],
        client_max_size=max(settings.engine.max_message_bytes, settings.api_max_body_bytes),
    )
    sio.attach(web_app)
    web_app.add_routes(probe_routes(health, metrics))
    web_app.add_routes(client_assets.routes())
    events = EventsEndpoint(
        broadcaster,
        metrics,
        settings.api_key,
        settings.api_max_body_bytes,
        settings.max_channel_name_length,
        once_key=once_key_maker(settings.cluster.prefix),
    )
    web_app.add_routes(events_routes(events))
    pusher = PusherApi(
        settings.pusher.apps,
        broadcaster,
        directory,
        metrics,
        max_body=settings.api_max_body_bytes,
        max_channel_length=settings.max_channel_name_length,
        timestamp_window=settings.pusher.timestamp_window,
        max_batch=settings.pusher.max_batch_events,
        terminations=terminations,
    )
    web_app.add_routes(pusher.routes())
    if authorizer is not None:
        lifecycle.add("laravel_auth", start=authorizer.start, stop=authorizer.close)
    if settings.redis.url and settings.redis.ingest:
        # The bus's own pub/sub channels share the Redis server: with an empty Laravel prefix the listener's `*`
        # pattern would see them, so they are skipped by prefix.
        _laravel_listener(
            settings, broadcaster, metrics, health, lifecycle, once_key=once_key, ignore=(settings.cluster.prefix + ":",)
        )
    if settings.dashboard.token:  # unset: no route, so /dashboard answers 404
        feed = dashboard_feed.Feed(
            metrics.registry, namespace.connections, presence, health, dashboard_feed.transport_lookup(sio), __version__,
            pusher_connections=(lambda: len(hub.sessions)) if hub is not None else (lambda: 0),
        )
        streams = Streams(feed, settings.dashboard.max_streams)
        web_app.add_routes(dashboard_routes(settings.dashboard.token, feed, streams))
        # sampled for the server's whole life; live streams end before the runner waits for open handlers
        lifecycle.add("dashboard", run=feed.sample_forever, stop=streams.close)
    lifecycle.add("event_loop_watch", run=lambda: runtime_watch.watch_loop_lag(metrics, admission.observe_lag))
    tls = None
    if settings.tls.cert_file and settings.tls.key_file:  # loaded now: a pair that cannot be served stops start-up
        tls = CertificateReloader(settings.tls.cert_file, settings.tls.key_file, metrics, settings.tls.reload_interval)
        lifecycle.add("tls_reloader", run=tls.run)
    # Every connection's request head is read by the router (deadline, size, WebSocket version); it serves Engine.IO
    # upgrades itself only with the lean WebSocket, which speaks no extensions.
    pusher_ws: PusherServer | None = None
    if hub is not None:
        pusher_ws = PusherServer(
            settings, settings.pusher.apps, hub, broadcaster, presence, metrics, refusals, admission.refuse, lambda: health.draining
        )
        terminations.add("pusher", _async_count(pusher_ws.terminate_user))
        _protocol_gauges(metrics, lambda: len(namespace.connections), lambda: len(hub.sessions), manager, hub)
    upgrades = Upgrades(
        path=ENGINEIO_PATH,
        max_message_bytes=settings.engine.max_message_bytes,
        handle=sio.eio.handle_request,
        admit=lambda environ: _admission_reply(admission, environ),
        head_timeout=settings.limits.head_timeout,
        body_timeout=settings.limits.body_timeout,
        keepalive_timeout=settings.limits.keepalive_timeout,
        max_head_bytes=settings.limits.max_head_bytes,
        lean=settings.engine.lean_websocket and not settings.engine.ws_compression,
        refused=refusals,
        scheme="https" if tls is not None else "http",
        pusher=pusher_ws.open if pusher_ws is not None else None,
        pusher_max_message_bytes=settings.pusher.max_message_bytes,
        posts={EVENTS_PATH: lean_route(events)},
        post_max_body=settings.api_max_body_bytes,
    )
    realtime = Realtime(
        settings, metrics, health, sio, manager, namespace, broadcaster, web_app, lifecycle, upgrades, tls, pusher_ws
    )
    if hub is not None:
        lifecycle.add("pusher_sweep", stop=_async(hub.close))
    web_app[APP_KEY] = realtime
    web_app.on_startup.append(_start_lifecycle)
    return realtime


def _announcer(broadcaster: Broadcaster) -> Announce:
    """How in-memory presence announces a member's arrival or departure: an ephemeral signal to the channel."""

    async def announce(channel: str, event: str, member: Member, except_sid: str) -> None:
        await broadcaster.signal(channel, event, member.wire(), except_sid=except_sid)

    return announce


def _pusher_hub(settings: Settings, metrics: Metrics, estimator: Estimator | None) -> Hub | None:
    """This node's Pusher subscribers, when the Pusher WebSocket is served (an app is configured and it is on)."""
    if not (settings.pusher.websocket and settings.pusher.apps):
        return None
    p = settings.pusher
    return Hub(
        settings.engine.max_buffered_bytes,
        p.activity_timeout,
        p.pong_timeout,
        p.cache_channels,
        on_slow_consumer=lambda session: _pusher_slow_consumer(metrics, session.socket_id),
        estimator=estimator,
    )


def _pusher_slow_consumer(metrics: Metrics, socket_id: str) -> None:
    """A Pusher connection dropped by the hub as a slow reader (pusher/hub.py drops it)."""
    metrics.slow_consumer_disconnects.inc()
    log.warning("slow_consumer_disconnected", socket_id=socket_id, protocol="pusher")


def _protocol_gauges(
    metrics: Metrics, socketio_connections: Callable[[], int], pusher_connections: Callable[[], int], manager: LeanManager, hub: Hub
) -> None:
    """``realtime_sio_connections{protocol}`` and ``realtime_sio_channel_subscriptions{protocol}``, read at scrape time."""
    metrics.protocol_connections.labels(protocol="socketio").set_function(socketio_connections)
    metrics.protocol_connections.labels(protocol="pusher").set_function(pusher_connections)
    metrics.protocol_subscriptions.labels(protocol="socketio").set_function(lambda: sum(manager.channel_counts().values()))
    metrics.protocol_subscriptions.labels(protocol="pusher").set_function(lambda: sum(len(m) for m in hub.channels.values()))


def _async(close: Callable[[], None]) -> Callable[[], Awaitable[None]]:
    async def closer() -> None:
        close()

    return closer


def _async_count(close: Callable[[str, str], int]) -> Callable[[str, str], Awaitable[int]]:
    async def closer(app_id: str, user_id: str) -> int:
        return close(app_id, user_id)

    return closer


def _laravel_authorizer(settings: Settings) -> LaravelAuthorizer | None:
    if not settings.laravel.auth_url:
        return None
    return LaravelAuthorizer(
        settings.laravel.auth_url,
        timeout=settings.laravel.auth_timeout,
        cache_ttl=settings.laravel.auth_cache_ttl,
        max_connections=settings.laravel.auth_max_connections,
    )


def _laravel_listener(
    settings: Settings,
    broadcaster: Broadcaster,
    metrics: Metrics,
    health: Health,
    lifecycle: Lifecycle,
    once_key: redis_listener.OnceKey = redis_listener.no_once_key,
    ignore: tuple[str, ...] = (),
) -> None:
    """Laravel's Redis broadcaster → broadcaster, as a background service; /ready is redis_down until it subscribed.

    With several nodes pass ``once_key`` so exactly one node publishes each Laravel message (cluster/claim.py).
    """
    assert settings.redis.url is not None
    listener = redis_listener.RedisListener(
        redis_listener.client(settings.redis.url),
        prefix=settings.redis.prefix,
        broadcaster=broadcaster,
        metrics=metrics,
        health=health,
        max_bytes=settings.redis.max_message_bytes,
        max_channel_length=settings.max_channel_name_length,
        backoff=redis_listener.Backoff(cap=settings.redis.reconnect_max),
        once_key=once_key,
        ignore=ignore,
    )
    health.link(redis_listener.LINK, up=False)
    metrics.redis_up.set(0)
    lifecycle.add("laravel_redis_listener", run=listener.run, stop=listener.close)


def _cluster(
    settings: Settings,
    delivery: LocalDelivery,
    metrics: Metrics,
    health: Health,
    lifecycle: Lifecycle,
    local_counts: Callable[[], dict[str, int]],
) -> tuple[Broadcaster, PresenceStore, ChannelDirectory, redis_listener.OnceKey]:
    """Redis-backed transport, history, presence, channel directory and ingestion claim, with this node's
    heartbeat (docs/scaling.md)."""
    assert settings.redis.url is not None
    client = shared_client(settings.redis.url, settings.redis.pool_size, settings.redis.pool_timeout, metrics)
    # a loop iteration's publishes and presence scripts share one pipeline, on a connection of their own
    calls = ScriptCalls(settings.redis.url, settings.redis.pool_timeout)
    node_id = uuid.uuid4().hex[:12]
    prefix = settings.cluster.prefix
    health.link(bus_module.LINK, up=False)  # until the bus has subscribed
    bus = RedisBus(
        client,
        prefix,
        settings.cluster.history_size,
        settings.cluster.history_seconds,
        settings.cluster.history_position_seconds,
        deliver=delivery.deliver_all,
        serves=delivery.serves,
        local_channels=lambda: local_counts().keys(),
        health=health,
        metrics=metrics,
        url=settings.redis.url,
        calls=calls,
    )
    broadcaster = Broadcaster(metrics, bus)
    presence = RedisPresence(client, prefix, node_id, calls)  # its scripts announce joins and leaves on the bus
    lease = settings.cluster.node_lease_seconds
    heartbeat = Heartbeat(settings.redis.url, f"{prefix}:nodes", node_id, lease / 3, max_loop_silence=lease, metrics=metrics)
    nodes = Nodes(client, prefix, node_id, lease, presence, local_counts, heartbeat=heartbeat, metrics=metrics)
    lifecycle.add("redis", stop=client.aclose)  # closed last: the parts below use it until they stopped
    lifecycle.add("redis_scripts", stop=calls.aclose)
    lifecycle.add("cluster_bus", run=bus.run)
    lifecycle.add("cluster_nodes", run=nodes.run, stop=nodes.leave)
    log.info("cluster_node", node=node_id, prefix=prefix)
    directory = ClusterChannelDirectory(nodes, local_counts, presence)
    return broadcaster, presence, directory, IngestClaim(prefix)


async def _start_lifecycle(web_app: web.Application) -> None:
    await web_app[APP_KEY].lifecycle.start()


RETRY_AFTER_SECONDS = "2"


def _admission_reply(admission: Admission, environ: dict[str, Any]) -> Reply | None:
    """The lean WebSocket router's answer to a new Engine.IO session that admission control refuses."""
    if "sid=" in environ.get("QUERY_STRING", ""):
        return None  # an existing session upgrading its transport
    error = admission.refuse()
    if error is None:
        return None
    body = json.dumps(error.payload()).encode()
    headers = [("Content-Type", "application/json"), ("Retry-After", RETRY_AFTER_SECONDS)]
    return Reply(f"{error.status} Service Unavailable", headers, body)


def _admission_middleware(admission: Admission) -> Any:
    """New Engine.IO sessions (handshakes without ``sid``) pass admission control (admission.py)."""

    @web.middleware
    async def middleware(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
        if request.path.startswith("/socket.io") and "sid" not in request.query:
            error = admission.refuse()
            if error is not None:
                return web.json_response(error.payload(), status=error.status, headers={"Retry-After": RETRY_AFTER_SECONDS})
        return await handler(request)

    return middleware


async def drain(realtime: Realtime) -> None:
    """Refuse new connections and close the open ones over ``drain_seconds`` so clients reconnect elsewhere.

    Sockets are closed at the transport level ("transport close"), which socket.io-client and python-socketio treat
    as a reason to reconnect, unlike a Socket.IO server disconnect.
    """
    realtime.health.draining = True
    realtime.metrics.draining.set(1)
    sockets = list(realtime.sio.eio.sockets)
    pusher = realtime.pusher
    sessions = list(pusher.hub.sessions.values()) if pusher is not None else []
    log.info("drain_started", connections=len(sockets), pusher_connections=len(sessions), seconds=realtime.settings.drain_seconds)
    total = len(sockets) + len(sessions)
    if not total:
        return
    steps = max(1, min(total, int(realtime.settings.drain_seconds * 20)))
    pause = realtime.settings.drain_seconds / steps
    per_socket, per_session = -(-len(sockets) // steps), -(-len(sessions) // steps)
    for step in range(steps):
        batch = sockets[step * per_socket : (step + 1) * per_socket]
        if pusher is not None:  # Pusher clients get 4200: pusher-js reconnects at once (to another node)
            pusher.reconnect_all(sessions[step * per_session : (step + 1) * per_session])
        await asyncio.gather(*(_close_eio(realtime, s) for s in batch), return_exceptions=True)
        if step + 1 < steps and (step + 1) * max(per_socket, per_session) < max(len(sockets), len(sessions)):
            await asyncio.sleep(pause)
    log.info("drain_finished", connections=len(sockets), pusher_connections=len(sessions))


async def _close_eio(realtime: Realtime, eio_sid: str) -> None:
    sock = realtime.sio.eio.sockets.get(eio_sid)
    if sock is not None and not sock.closed:
        # abort: no Engine.IO CLOSE packet (python clients treat that as final); the socket then ends its transport
        # (engine/upstream.py), so every client library sees a dropped transport and reconnects.
        await sock.close(wait=False, abort=True)


async def shutdown(realtime: Realtime, runner: web.AppRunner) -> None:
    """Ordered, bounded shutdown: drain → the lifecycle's parts stop (tasks, then resources, newest first) → close
    the site."""
    timeout = realtime.settings.shutdown_timeout
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout

    async def step(name: str, coro: Awaitable[Any]) -> None:
        remaining = max(0.1, deadline - loop.time())
        try:
            await asyncio.wait_for(coro, remaining)
        except (TimeoutError, Exception) as exc:  # noqa: BLE001 - shutdown continues whatever one step does
            log.warning("shutdown_step_failed", step=name, error=type(exc).__name__)

    await step("drain", drain(realtime))
    await realtime.lifecycle.stop(max(0.1, deadline - loop.time()))
    await step("http", runner.cleanup())


async def serve(settings: Settings, ready: Callable[[int], None] | None = None) -> None:
    """Run until SIGTERM/SIGINT, then shut down in order."""
    realtime = build(settings)
    runtime_watch.install_gc_timing(realtime.metrics)
    runner = web.AppRunner(
        realtime.web_app,
        access_log=None,
        handle_signals=False,
        shutdown_timeout=1.0,
        keepalive_timeout=settings.limits.keepalive_timeout,  # also the deadline for each later request head
        # After an answer given before the body was read (413, 408, 401...), aiohttp reads and drops the rest of the
        # body for this long so the answer is not lost to a TCP reset; a slow client gets no more than BODY_TIMEOUT.
        lingering_time=min(10.0, settings.limits.body_timeout),
    )
    await runner.setup()
    assert realtime.upgrades is not None  # build() always makes it
    ssl_context = realtime.tls.context if realtime.tls is not None else None
    site = RoutedSite(runner, settings.host, settings.port, realtime.upgrades, backlog=4096, ssl_context=ssl_context)
    await site.start()
    port = runner.addresses[0][1] if runner.addresses else settings.port
    loop_kind = type(asyncio.get_running_loop()).__module__.partition(".")[0]  # "uvloop" or "asyncio"
    log.info(
        "server_started", host=settings.host, port=port, redis=bool(settings.redis.url), tls=ssl_context is not None, loop=loop_kind
    )
    if ssl_context is not None and loop_kind != "uvloop":
        # asyncio's SSLProtocol zero-fills a 256 KiB read buffer per connection: 227 KiB per idle TLS connection
        # measured, against 24 KiB on uvloop (docs/performance.md, TLS).
        log.warning("tls_without_uvloop", kib_per_connection=227)
    if ready is not None:
        ready(port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("shutdown_started")
    await shutdown(realtime, runner)
    log.info("shutdown_finished")
