"""Settings read once from ``REALTIME_SIO_*`` environment variables (and an optional TOML file) into frozen objects.

Nothing else in the package reads ``os.environ``. Every option is declared once in ``OPTIONS``: that table drives
parsing, ``realtime-sio serve --help`` and the test that keeps ``docs/configuration.md`` in step with the code.
A bad value raises :class:`SettingsError` whose message names the variable and what it accepts.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from realtime_sio import config_file

PREFIX = "REALTIME_SIO_"

LogFormat = Literal["auto", "json", "console"]
RuleKind = Literal["public", "authenticated", "user", "role", "roles", "laravel", "deny"]
RULE_KINDS: tuple[RuleKind, ...] = ("public", "authenticated", "user", "role", "roles", "laravel", "deny")


class SettingsError(ValueError):
    """A configuration value is invalid; the message names the variable and what it accepts."""


@dataclass(frozen=True)
class ChannelRule:
    """One declarative channel rule: ``pattern`` (``{param}`` = one dot-free segment, ``*`` = anything) → ``allow``."""

    pattern: str
    allow: RuleKind
    param: str | None = None  # which ``{param}`` holds the user id / role (default: the first one)
    roles: tuple[str, ...] = ()  # for allow = "roles": the identity needs one of these


DEFAULT_CHANNEL_RULES: tuple[ChannelRule, ...] = (
    ChannelRule("private-user.{id}", "user"),
    ChannelRule("private-App.Models.User.{id}", "user"),
    ChannelRule("private-role.{role}", "role"),
    ChannelRule("presence-chat.{room}", "authenticated"),
)


@dataclass(frozen=True)
class PusherApp:
    """One Pusher HTTP API app (Reverb's ``apps``): requests name ``id`` in the path and sign with ``key``/``secret``."""

    id: str
    key: str
    secret: str = field(repr=False)
    # Reverb's per-app allowed_origins for /app/{key} ([[apps]] in the config file); () = CORS_ORIGINS decides
    allowed_origins: tuple[str, ...] = ()


@dataclass(frozen=True)
class JwtSettings:
    """How connect-time JWTs are verified and which claims carry identity."""

    secret: str | None = field(default=None, repr=False)
    public_key: str | None = field(default=None, repr=False)  # PEM text (RS256/ES256)
    jwks: str | None = field(default=None, repr=False)  # JWKS document text
    algorithms: tuple[str, ...] = ("HS256",)
    issuer: str | None = None
    audience: str | None = None
    leeway_seconds: float = 30.0
    user_claim: str = "sub"
    roles_claim: str = "roles"
    info_claims: tuple[str, ...] = ("name",)
    max_token_bytes: int = 8192
    default_ttl_seconds: int = 3600

    @property
    def enabled(self) -> bool:
        """True when some verification key is configured."""
        return bool(self.secret or self.public_key or self.jwks)


@dataclass(frozen=True)
class Limits:
    """Deadlines and sizes for what a client sends before it is authenticated (docs/security.md, issue 11 item 8).

    Every byte a connection sends before its request is handled is under one of these deadlines: the first request
    head (``head_timeout``), each later head on a kept-alive connection (``keepalive_timeout``, counted from the end
    of the previous response), and every request body (``body_timeout``). A head over ``max_head_bytes`` is answered
    431 as soon as that many bytes have arrived. An Engine.IO session must connect a Socket.IO namespace (where the
    token is checked) within ``connect_timeout``, or it is closed, as socket.io's ``connectTimeout`` does.
    """

    head_timeout: float = 30.0
    max_head_bytes: int = 16_384
    body_timeout: float = 30.0
    keepalive_timeout: float = 75.0  # above the usual load balancer idle timeout (60 s), which must be the shorter
    connect_timeout: float = 45.0  # socket.io's connectTimeout default


@dataclass(frozen=True)
class EngineSettings:
    """How sockets are served: Engine.IO transports and timing, message and buffer sizes, the WebSocket flavour."""

    transports: tuple[str, ...] = ("websocket", "polling")
    ping_interval: float = 25.0
    ping_timeout: float = 20.0
    max_message_bytes: int = 100_000
    ws_compression: bool = False
    lean_websocket: bool = True
    max_buffered_bytes: int = 1_048_576


@dataclass(frozen=True)
class LatencySettings:
    """Delivery latency as users feel it (issue 15, realtime_sio/latency/): the estimate and the sampled acknowledgements."""

    estimate: bool = True  # realtime_sio_delivery_estimated_seconds for every delivery
    ack_sample_rate: float = 0.01  # share of deliveries to opted-in clients that ask for an acknowledgement


@dataclass(frozen=True)
class RedisSettings:
    """Redis for Laravel's broadcaster (ingestion) and for the cluster: where, how many connections, how patient."""

    url: str | None = field(default=None, repr=False)
    prefix: str = "laravel_database_"
    ingest: bool = True
    max_message_bytes: int = 100_000
    reconnect_max: float = 5.0  # cap of the listener's exponential reconnect backoff, seconds
    pool_size: int = 64  # pooled connections for history, position and presence reads (heartbeats, scripts: their own)
    pool_timeout: float = 10.0  # seconds a command waits for a pooled connection; also a script call's reply deadline


@dataclass(frozen=True)
class PusherSettings:
    """Pusher apps (the Pusher HTTP API and the Pusher protocol on /app/{key}) and their limits."""

    apps: tuple[PusherApp, ...] = field(default=(), repr=False)
    timestamp_window: int = 600  # seconds; 0 = auth_timestamp not checked
    max_batch_events: int = 10
    # The Pusher protocol 7 WebSocket on GET /app/{key} (pusher-js, Echo's reverb/pusher broadcasters; issue 12).
    # Defaults are Reverb's (activity_timeout 30 s, max_message_size 10,000 bytes) and Pusher's (10 client events/s).
    websocket: bool = True
    activity_timeout: float = 30.0  # sent in connection_established; the server pings a connection silent this long
    pong_timeout: float = 30.0  # after the server's ping, silence for this long closes the connection with 4201
    max_message_bytes: int = 10_000
    client_event_rate: float = 10.0  # client events per second per connection (burst: the same number)
    cache_channels: int = 10_000  # cache- channels whose last event is remembered per node (least recent forgotten)


@dataclass(frozen=True)
class LaravelSettings:
    """Delegating channel decisions to Laravel's ``/broadcasting/auth``."""

    auth_url: str | None = None
    auth_timeout: float = 5.0
    auth_cache_ttl: float = 0.0  # seconds positive answers are reused; 0 = off
    auth_default: bool = True  # delegate private-/presence- channels no rule matches (when the URL is set)
    auth_max_connections: int = 100


@dataclass(frozen=True)
class DashboardSettings:
    """The operator dashboard: its credential (unset = off, 404) and stream limit."""

    token: str | None = field(default=None, repr=False)  # None = /dashboard answers 404
    max_streams: int = 8


@dataclass(frozen=True)
class TlsSettings:
    """Serving HTTPS/WSS directly (tls.py): the PEM pair and how often it is checked for a renewal."""

    cert_file: str | None = None  # PEM chain, leaf first: the port serves HTTPS/WSS (tls.py)
    key_file: str | None = None
    reload_interval: float = 5.0  # seconds between looks at the two files for a renewed pair


@dataclass(frozen=True)
class ClusterSettings:
    """Several nodes sharing Redis: key prefix, node lease, and the recovery history every node keeps."""

    prefix: str = "rsio"
    node_lease_seconds: float = 10.0
    history_size: int = 1000
    history_seconds: float = 120.0
    history_position_seconds: float = 86_400.0  # how long a channel's newest position is remembered after its last event


@dataclass(frozen=True)
class AdmissionSettings:
    """When new connections are refused with a retryable 503 (admission.py)."""

    max_lag: float = 2.0  # refuse new connections while the event loop runs this late (0 = never)
    fd_reserve: int = 256  # descriptors kept free: new connections are refused closer to RLIMIT_NOFILE


@dataclass(frozen=True)
class Settings:
    """Everything the server needs, validated."""

    host: str = "127.0.0.1"
    port: int = 6001
    log_format: LogFormat = "auto"
    log_level: str = "info"
    log_throttle_lines: int = 20  # lines of one event name per log_throttle_seconds before the rest are counted
    log_throttle_seconds: float = 10.0
    cors_origins: tuple[str, ...] = ()  # () = same origin only; ("*",) = any
    api_key: str | None = field(default=None, repr=False)
    jwt: JwtSettings = field(default_factory=JwtSettings)
    limits: Limits = field(default_factory=Limits)
    engine: EngineSettings = field(default_factory=EngineSettings)
    latency: LatencySettings = field(default_factory=LatencySettings)
    redis: RedisSettings = field(default_factory=RedisSettings)
    pusher: PusherSettings = field(default_factory=PusherSettings)
    laravel: LaravelSettings = field(default_factory=LaravelSettings)
    dashboard: DashboardSettings = field(default_factory=DashboardSettings)
    tls: TlsSettings = field(default_factory=TlsSettings)
    cluster: ClusterSettings = field(default_factory=ClusterSettings)
    admission: AdmissionSettings = field(default_factory=AdmissionSettings)
    channel_rules: tuple[ChannelRule, ...] = DEFAULT_CHANNEL_RULES
    auto_join: bool = True
    user_room: str = "private-user.{id}"
    role_room: str = "private-role.{role}"
    api_max_body_bytes: int = 100_000
    max_channel_name_length: int = 200
    max_subscriptions_per_socket: int = 100
    subscribe_rate: float = 20.0  # subscribes per second, sustained, per socket
    subscribe_burst: int = 50
    gc_tuning: bool = True
    drain_seconds: float = 5.0
    shutdown_timeout: float = 20.0
    config_file: str | None = None


@dataclass(frozen=True)
class Option:
    """One environment variable: its setting, parser, help text."""

    name: str  # suffix after REALTIME_SIO_
    attr: str  # "host" or "jwt.secret"
    parse: Callable[[str, str], Any]
    help: str
    accepts: str
    secret: bool = False

    @property
    def env(self) -> str:
        return PREFIX + self.name

    @property
    def flag(self) -> str:
        return "--" + self.name.lower().replace("_", "-")


def _str(var: str, raw: str) -> str:
    return raw


def _opt_str(var: str, raw: str) -> str | None:
    return raw or None


# Kubernetes injects REALTIME_SIO_SERVICE_HOST, REALTIME_SIO_PORT_6001_TCP... for a Service named realtime-sio.
_SERVICE_LINK = re.compile(re.escape(PREFIX) + r"(SERVICE_[A-Z0-9_]+|PORT_\d+_TCP[A-Z_]*)")


def _int(lo: int, hi: int) -> Callable[[str, str], int]:
    def parse(var: str, raw: str) -> int:
        if raw.startswith("tcp://"):
            raise SettingsError(
                f"{var}={raw!r}: this is a Kubernetes service link, not a port; set enableServiceLinks: false "
                "on the pod (the Helm chart does) or name the Service differently"
            )
        try:
            value = int(raw)
        except ValueError:
            raise SettingsError(f"{var}={raw!r}: expected an integer from {lo} to {hi}") from None
        if not lo <= value <= hi:
            raise SettingsError(f"{var}={raw!r}: expected an integer from {lo} to {hi}")
        return value

    return parse


def _float(lo: float, hi: float) -> Callable[[str, str], float]:
    def parse(var: str, raw: str) -> float:
        try:
            value = float(raw)
        except ValueError:
            raise SettingsError(f"{var}={raw!r}: expected a number from {lo:g} to {hi:g}") from None
        if not lo <= value <= hi:
            raise SettingsError(f"{var}={raw!r}: expected a number from {lo:g} to {hi:g}")
        return value

    return parse


def _bool(var: str, raw: str) -> bool:
    low = raw.strip().lower()
    if low in ("1", "true", "yes", "on"):
        return True
    if low in ("0", "false", "no", "off"):
        return False
    raise SettingsError(f"{var}={raw!r}: expected true/false (1/0, yes/no, on/off)")


def _choice(*choices: str) -> Callable[[str, str], str]:
    def parse(var: str, raw: str) -> str:
        if raw not in choices:
            raise SettingsError(f"{var}={raw!r}: expected one of {', '.join(choices)}")
        return raw

    return parse


def _csv(var: str, raw: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in raw.split(",") if part.strip())


_ALGORITHMS = ("HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "ES256", "ES384", "PS256")


def _algorithms(var: str, raw: str) -> tuple[str, ...]:
    algs = _csv(var, raw)
    bad = [a for a in algs if a not in _ALGORITHMS]
    if bad or not algs:
        raise SettingsError(f"{var}={raw!r}: expected a comma-separated list of {', '.join(_ALGORITHMS)}")
    return algs


def _transports(var: str, raw: str) -> tuple[str, ...]:
    values = _csv(var, raw)
    if not values or any(v not in ("websocket", "polling") for v in values):
        raise SettingsError(f"{var}={raw!r}: expected websocket, polling or websocket,polling")
    return values


def _file_text(var: str, raw: str) -> str | None:
    if not raw:
        return None
    try:
        return Path(raw).read_text()
    except OSError as exc:
        raise SettingsError(f"{var}={raw!r}: expected a readable file ({exc.strerror})") from None


def _origins(var: str, raw: str) -> tuple[str, ...]:
    values = _csv(var, raw)
    for v in values:
        if v != "*" and not v.startswith(("http://", "https://")):
            raise SettingsError(f"{var}={raw!r}: expected '*' or comma-separated origins like https://app.example")
    return values


def _redis_url(var: str, raw: str) -> str | None:
    if not raw:
        return None
    if not raw.startswith(("redis://", "rediss://", "unix://")):
        raise SettingsError(f"{var}: expected a redis://, rediss:// or unix:// URL")
    return raw


_APP_ID = re.compile(r"[A-Za-z0-9_.-]{1,64}")
MIN_SECRET_CHARS = 16  # API key, dashboard token and Pusher app secrets
MIN_PUSHER_SECRET = MIN_SECRET_CHARS


def pusher_app(where: str, app_id: object, key: object, secret: object) -> PusherApp:
    if not isinstance(app_id, (str, int)) or isinstance(app_id, bool) or not _APP_ID.fullmatch(str(app_id)):
        raise SettingsError(f"{where}: app id: expected 1-64 characters of A-Z a-z 0-9 _ . -")
    if not isinstance(key, str) or not _APP_ID.fullmatch(key):
        raise SettingsError(f"{where}: app key: expected 1-64 characters of A-Z a-z 0-9 _ . -")
    if not isinstance(secret, str) or len(secret) < MIN_PUSHER_SECRET or "," in secret:
        raise SettingsError(f"{where}: app secret: expected at least {MIN_PUSHER_SECRET} characters, no comma")
    return PusherApp(id=str(app_id), key=key, secret=secret)


def _pusher_apps(var: str, raw: str) -> tuple[PusherApp, ...]:
    apps = []
    for i, part in enumerate(p.strip() for p in raw.split(",") if p.strip()):
        pieces = part.split(":", 2)  # the secret may itself contain ':'
        if len(pieces) != 3:
            raise SettingsError(f"{var}: entry {i + 1}: expected id:key:secret[,id:key:secret...]")
        apps.append(pusher_app(f"{var}: entry {i + 1}", *pieces))
    return tuple(apps)


def _http_url(var: str, raw: str) -> str | None:
    if not raw:
        return None
    if not raw.startswith(("http://", "https://")) or len(raw) < 10:
        raise SettingsError(f"{var}={raw!r}: expected an http:// or https:// URL like https://app.example/broadcasting/auth")
    return raw


OPTIONS: tuple[Option, ...] = (
    Option("HOST", "host", _str, "address to listen on", "an IP address or host name"),
    Option("PORT", "port", _int(0, 65535), "TCP port to listen on", "an integer 0-65535"),
    Option("LOG_FORMAT", "log_format", _choice("auto", "json", "console"), "log renderer (auto = console on a tty, JSON otherwise)", "auto, json, console"),
    Option("LOG_LEVEL", "log_level", _choice("debug", "info", "warning", "error"), "minimum log level (debug adds a line per connect, join and disconnect)", "debug, info, warning, error"),
    Option("LOG_THROTTLE_LINES", "log_throttle_lines", _int(0, 1_000_000), "info/warning/error lines of one event name written per LOG_THROTTLE_SECONDS; the rest are counted into one log_lines_suppressed line (0 = no limit)", "an integer 0-1000000"),
    Option("LOG_THROTTLE_SECONDS", "log_throttle_seconds", _float(0.1, 3600), "window of LOG_THROTTLE_LINES, seconds", "seconds 0.1-3600"),
    Option("CORS_ORIGINS", "cors_origins", _origins, "origins allowed to open sockets (empty = same origin only; '*' = any origin without credentials: no Access-Control-Allow-Credentials, and a cross-origin browser's handshake cookie is not forwarded to Laravel)", "'*' or comma-separated origins"),
    Option("API_KEY", "api_key", _opt_str, "bearer key for POST /api/v1/events (unset = route refuses every request)", "a string of at least 16 characters", secret=True),
    Option("JWT_SECRET", "jwt.secret", _opt_str, "HMAC secret for HS256/384/512 tokens", "any string", secret=True),
    Option("JWT_PUBLIC_KEY_FILE", "jwt.public_key", _file_text, "PEM public key file for RS*/ES* tokens", "a readable file path"),
    Option("JWT_JWKS_FILE", "jwt.jwks", _file_text, "JWKS file (keys chosen by kid)", "a readable file path"),
    Option("JWT_ALGORITHMS", "jwt.algorithms", _algorithms, "accepted JWT algorithms", ", ".join(_ALGORITHMS)),
    Option("JWT_ISSUER", "jwt.issuer", _opt_str, "required iss claim (unset = not checked)", "any string"),
    Option("JWT_AUDIENCE", "jwt.audience", _opt_str, "required aud claim (unset = not checked)", "any string"),
    Option("JWT_LEEWAY", "jwt.leeway_seconds", _float(0, 300), "clock skew allowed for exp/nbf/iat, seconds", "a number 0-300"),
    Option("JWT_USER_CLAIM", "jwt.user_claim", _str, "claim holding the user id", "a claim name"),
    Option("JWT_ROLES_CLAIM", "jwt.roles_claim", _str, "claim holding the roles (list or comma string)", "a claim name"),
    Option("JWT_INFO_CLAIMS", "jwt.info_claims", _csv, "claims copied into presence user_info", "comma-separated claim names"),
    Option("JWT_MAX_BYTES", "jwt.max_token_bytes", _int(256, 65536), "longest token accepted", "an integer 256-65536"),
    Option("JWT_TTL", "jwt.default_ttl_seconds", _int(1, 31_536_000), "lifetime of tokens minted by `realtime-sio token`", "seconds"),
    Option("AUTO_JOIN", "auto_join", _bool, "authenticated sockets join their user and role rooms at connect", "true/false"),
    Option("USER_ROOM", "user_room", _str, "room template joined automatically for the user", "a channel name with {id}"),
    Option("ROLE_ROOM", "role_room", _str, "room template joined automatically for each role", "a channel name with {role}"),
    Option("TRANSPORTS", "engine.transports", _transports, "Engine.IO transports served", "websocket,polling"),
    Option("PING_INTERVAL", "engine.ping_interval", _float(1, 300), "Engine.IO ping interval, seconds", "a number 1-300"),
    Option("PING_TIMEOUT", "engine.ping_timeout", _float(1, 300), "Engine.IO ping timeout, seconds", "a number 1-300"),
    Option("MAX_MESSAGE_BYTES", "engine.max_message_bytes", _int(1024, 64_000_000), "largest inbound Socket.IO message", "bytes 1024-64000000"),
    Option("API_MAX_BODY_BYTES", "api_max_body_bytes", _int(1024, 64_000_000), "largest HTTP publish body (413 above)", "bytes 1024-64000000"),
    Option("MAX_CHANNEL_NAME_LENGTH", "max_channel_name_length", _int(8, 1000), "longest channel name accepted", "an integer 8-1000"),
    Option("MAX_SUBSCRIPTIONS", "max_subscriptions_per_socket", _int(1, 100_000), "channels one socket may join", "an integer"),
    Option("SUBSCRIBE_RATE", "subscribe_rate", _float(0.1, 100_000), "sustained subscribes per second per socket", "a number"),
    Option("SUBSCRIBE_BURST", "subscribe_burst", _int(1, 100_000), "subscribe burst per socket", "an integer"),
    Option("WS_COMPRESSION", "engine.ws_compression", _bool, "negotiate permessage-deflate (costs ~100 KB per connection)", "true/false"),
    Option("LEAN_WEBSOCKET", "engine.lean_websocket", _bool, "serve Engine.IO WebSockets on the raw connection instead of aiohttp's WebSocket (about a third of the memory per connection, no task per idle socket; off when WS_COMPRESSION is on)", "true/false"),
    Option("TLS_CERT_FILE", "tls.cert_file", _opt_str, "PEM certificate chain (leaf first): the port serves HTTPS and WSS, TLS 1.2+; a renewed file is picked up without a restart (unset = plain HTTP)", "a readable file path"),
    Option("TLS_KEY_FILE", "tls.key_file", _opt_str, "PEM private key (unencrypted) of TLS_CERT_FILE", "a readable file path"),
    Option("TLS_RELOAD_INTERVAL", "tls.reload_interval", _float(0.1, 3600), "seconds between checks of the TLS files for a renewed pair (a change is loaded once it held still for one check)", "seconds 0.1-3600"),
    Option("HEAD_TIMEOUT", "limits.head_timeout", _float(0.1, 3600), "seconds a new connection has to send its whole first request head before it is closed", "seconds 0.1-3600"),
    Option("MAX_HEAD_BYTES", "limits.max_head_bytes", _int(4096, 1_048_576), "largest request head (request line and headers); larger ones are answered 431 and closed", "bytes 4096-1048576"),
    Option("BODY_TIMEOUT", "limits.body_timeout", _float(0.1, 3600), "seconds a request body has to arrive in full (else 408 and the connection is closed)", "seconds 0.1-3600"),
    Option("CONNECT_TIMEOUT", "limits.connect_timeout", _float(1, 3600), "seconds an Engine.IO session has to connect a Socket.IO namespace (where its token is checked) before it is closed", "seconds 1-3600"),
    Option("KEEPALIVE_TIMEOUT", "limits.keepalive_timeout", _float(1, 3600), "seconds a kept-alive HTTP connection has to send its next whole request head before it is closed; keep it above a load balancer's idle timeout", "seconds 1-3600"),
    Option("GC_TUNING", "gc_tuning", _bool, "freeze start-up objects and collect young garbage less often (avoids 0.5 s+ full-GC pauses at 10k connections)", "true/false"),
    Option("MAX_BUFFERED_BYTES", "engine.max_buffered_bytes", _int(4096, 1 << 30), "outgoing bytes buffered per connection before it is dropped as a slow reader", "bytes"),
    Option("DELIVERY_ESTIMATE", "latency.estimate", _bool, "estimate every delivery's latency as users feel it (accepted → written to the socket + half its measured round trip; realtime_sio_delivery_estimated_seconds)", "true/false"),
    Option("DELIVERY_ACK_SAMPLE_RATE", "latency.ack_sample_rate", _float(0, 1), "share of deliveries to clients that opted in (the served /client/recovery.mjs) that ask for an acknowledgement: the exact accepted → acknowledged figure (realtime_sio_delivery_acknowledged_seconds; 0 = off)", "a number 0-1"),
    Option("REDIS_URL", "redis.url", _redis_url, "Redis for Laravel ingestion and multi-node (unset = single in-memory node)", "redis://, rediss://, unix:// URL", secret=True),
    Option("REDIS_PREFIX", "redis.prefix", _str, "Laravel Redis key prefix stripped from broadcast channels", "any string, may be empty"),
    Option("REDIS_INGEST", "redis.ingest", _bool, "subscribe to Laravel's Redis broadcaster when REDIS_URL is set", "true/false"),
    Option("REDIS_MAX_MESSAGE_BYTES", "redis.max_message_bytes", _int(1024, 64_000_000), "largest Laravel Redis broadcast message accepted (larger ones are skipped)", "bytes 1024-64000000"),
    Option("REDIS_RECONNECT_MAX", "redis.reconnect_max", _float(0.1, 300), "longest pause between Redis reconnect attempts (backoff doubles from 0.1 s)", "seconds 0.1-300"),
    Option("REDIS_POOL_SIZE", "redis.pool_size", _int(2, 10_000), "Redis connections pooled for history, position and presence reads (commands queue for a free one; heartbeats and the Lua script calls of publishes and presence changes use their own)", "an integer 2-10000"),
    Option("REDIS_POOL_TIMEOUT", "redis.pool_timeout", _float(0.1, 300), "longest wait for a free pooled Redis connection, and for the reply to a Lua script call (then the publish answers 503, a recovery asks the client to reconnect, a presence leave is retried later)", "seconds 0.1-300"),
    Option("PUSHER_APPS", "pusher.apps", _pusher_apps, "Pusher HTTP API apps (/apps/{id}/...), also [[apps]] in the config file", "id:key:secret[,id:key:secret...]", secret=True),
    Option("PUSHER_TIMESTAMP_WINDOW", "pusher.timestamp_window", _int(0, 86_400), "largest |now - auth_timestamp| accepted on the Pusher API (0 = not checked)", "seconds 0-86400"),
    Option("PUSHER_MAX_BATCH_EVENTS", "pusher.max_batch_events", _int(1, 1000), "events allowed in one POST /apps/{id}/batch_events", "an integer 1-1000"),
    Option("PUSHER_WEBSOCKET", "pusher.websocket", _bool, "serve the Pusher protocol 7 WebSocket on /app/{key} (pusher-js, Echo's reverb/pusher broadcasters) for the PUSHER_APPS keys", "true/false"),
    Option("PUSHER_ACTIVITY_TIMEOUT", "pusher.activity_timeout", _float(1, 3600), "activity_timeout sent to Pusher clients; the server pings a Pusher connection silent this long", "seconds 1-3600"),
    Option("PUSHER_PONG_TIMEOUT", "pusher.pong_timeout", _float(1, 3600), "silence after the server's pusher:ping before the connection is closed with 4201", "seconds 1-3600"),
    Option("PUSHER_MAX_MESSAGE_BYTES", "pusher.max_message_bytes", _int(1024, 64_000_000), "largest inbound Pusher WebSocket message (larger: close 1009, as Reverb)", "bytes 1024-64000000"),
    Option("PUSHER_CLIENT_EVENT_RATE", "pusher.client_event_rate", _float(0.1, 100_000), "client events (whispers) per second per Pusher connection; more are refused with pusher:error 4301", "a number"),
    Option("PUSHER_CACHE_CHANNELS", "pusher.cache_channels", _int(1, 10_000_000), "cache- channels whose last event each node remembers for replay on subscribe", "an integer"),
    Option("LARAVEL_AUTH_URL", "laravel.auth_url", _http_url, "Laravel /broadcasting/auth URL for delegated channel decisions (unset = none)", "an http(s) URL"),
    Option("LARAVEL_AUTH_TIMEOUT", "laravel.auth_timeout", _float(0.1, 60), "longest wait for Laravel's answer (then subscription_error status 0)", "seconds 0.1-60"),
    Option("LARAVEL_AUTH_CACHE_TTL", "laravel.auth_cache_ttl", _float(0, 86_400), "reuse positive Laravel answers per user and channel for this long (0 = off)", "seconds 0-86400"),
    Option("LARAVEL_AUTH_DEFAULT", "laravel.auth_default", _bool, "with LARAVEL_AUTH_URL set, delegate private-/presence- channels no rule matches", "true/false"),
    Option("LARAVEL_AUTH_MAX_CONNECTIONS", "laravel.auth_max_connections", _int(1, 10_000), "concurrent connections to Laravel's auth endpoint", "an integer 1-10000"),
    Option("CLUSTER_PREFIX", "cluster.prefix", _str, "prefix of every key and channel realtime_sio itself keeps in Redis", "a string"),
    Option("NODE_LEASE_SECONDS", "cluster.node_lease_seconds", _float(0.5, 300), "a node silent this long is dead: its presence members leave", "a number 0.5-300"),
    Option("HISTORY_SIZE", "cluster.history_size", _int(0, 1_000_000), "events kept per channel for missed-message recovery (0 = off)", "an integer 0-1000000"),
    Option("HISTORY_SECONDS", "cluster.history_seconds", _float(1, 86_400), "oldest event kept for recovery, seconds", "a number 1-86400"),
    Option("HISTORY_POSITION_SECONDS", "cluster.history_position_seconds", _float(1, 31_536_000), "how long a channel's newest position is remembered after its last event: a client back within it is recovered (or told nothing was missed) instead of reset", "seconds 1-31536000"),
    Option("ADMISSION_MAX_LAG", "admission.max_lag", _float(0, 60), "refuse new connections with a retryable 503 (server_busy) while the event loop lags more than this (0 = never)", "seconds 0-60"),
    Option("ADMISSION_FD_RESERVE", "admission.fd_reserve", _int(0, 1_000_000), "file descriptors kept free: new connections are refused (server_busy) when fewer remain below RLIMIT_NOFILE", "an integer"),
    Option("DRAIN_SECONDS", "drain_seconds", _float(0, 600), "window over which clients are told to reconnect on SIGTERM", "a number 0-600"),
    Option("SHUTDOWN_TIMEOUT", "shutdown_timeout", _float(1, 3600), "hard limit for the whole shutdown, seconds", "a number 1-3600"),
    Option("CONFIG_FILE", "config_file", _opt_str, "TOML file with [[channels]] rules and [[apps]] Pusher apps", "a file path"),
    Option("DASHBOARD_TOKEN", "dashboard.token", _opt_str, "admin credential for /dashboard (unset = dashboard off, 404)", "a string of at least 16 characters", secret=True),
    Option("DASHBOARD_MAX_STREAMS", "dashboard.max_streams", _int(1, 1000), "concurrent live dashboard streams (503 above)", "an integer 1-1000"),
)

OPTIONS_BY_ENV: dict[str, Option] = {o.env: o for o in OPTIONS}
# GROUPS[prefix] = the frozen dataclass an Option attr "prefix.name" belongs to (a field of Settings named prefix)
GROUPS: dict[str, type[Any]] = {"jwt": JwtSettings, "limits": Limits, "engine": EngineSettings, "latency": LatencySettings, "redis": RedisSettings, "pusher": PusherSettings, "laravel": LaravelSettings, "dashboard": DashboardSettings, "tls": TlsSettings, "cluster": ClusterSettings, "admission": AdmissionSettings}


def load(env: Mapping[str, str]) -> Settings:
    """Build :class:`Settings` from an environment mapping; raises :class:`SettingsError`."""
    top: dict[str, Any] = {}
    groups: dict[str, dict[str, Any]] = {name: {} for name in GROUPS}
    for option in OPTIONS:
        raw = env.get(option.env)
        if raw is None:
            continue
        value = option.parse(option.env, raw)
        target, _, attr = option.attr.rpartition(".")
        (groups[target] if target else top)[attr] = value
    for var in env:
        if var.startswith(PREFIX) and var not in OPTIONS_BY_ENV and not _SERVICE_LINK.fullmatch(var):
            raise SettingsError(f"{var}: unknown setting (see `realtime-sio serve --help`)")
    if top.get("config_file"):
        rules, apps = load_config_file(top["config_file"])
        if rules is not None:
            top["channel_rules"] = rules
        groups["pusher"]["apps"] = groups["pusher"].get("apps", ()) + apps
    settings = Settings(**{name: GROUPS[name](**values) for name, values in groups.items()}, **top)
    _check(settings)
    return settings


def _check(settings: Settings) -> None:
    jwt = settings.jwt
    hmac_algs = [a for a in jwt.algorithms if a.startswith("HS")]
    asym_algs = [a for a in jwt.algorithms if not a.startswith("HS")]
    if hmac_algs and asym_algs:
        raise SettingsError(
            f"{PREFIX}JWT_ALGORITHMS={','.join(jwt.algorithms)}: mix of HMAC and public-key algorithms is refused "
            "(it enables key-confusion attacks); choose one family"
        )
    if asym_algs and jwt.enabled and not (jwt.public_key or jwt.jwks):
        raise SettingsError(f"{PREFIX}JWT_ALGORITHMS: {asym_algs[0]} needs {PREFIX}JWT_PUBLIC_KEY_FILE or {PREFIX}JWT_JWKS_FILE")
    if hmac_algs and (jwt.public_key or jwt.jwks) and not jwt.secret:
        raise SettingsError(f"{PREFIX}JWT_ALGORITHMS: a public key is configured; set RS256/ES256 algorithms")
    needed = max((int(a[2:]) // 8 for a in hmac_algs), default=0)
    if jwt.secret is not None and len(jwt.secret.encode()) < needed:
        raise SettingsError(
            f"{PREFIX}JWT_SECRET: expected at least {needed} bytes for {','.join(hmac_algs)} (RFC 7518 §3.2)"
        )
    if bool(settings.tls.cert_file) != bool(settings.tls.key_file):
        given, missing = ("TLS_CERT_FILE", "TLS_KEY_FILE") if settings.tls.cert_file else ("TLS_KEY_FILE", "TLS_CERT_FILE")
        raise SettingsError(f"{PREFIX}{missing}: expected a file path too when {PREFIX}{given} is set (TLS needs both)")
    if "{id}" not in settings.user_room:
        raise SettingsError(f"{PREFIX}USER_ROOM={settings.user_room!r}: expected a template containing {{id}}")
    if settings.dashboard.token is not None and len(settings.dashboard.token) < MIN_SECRET_CHARS:
        raise SettingsError(f"{PREFIX}DASHBOARD_TOKEN: expected at least {MIN_SECRET_CHARS} characters")
    if settings.api_key is not None and len(settings.api_key) < MIN_SECRET_CHARS:
        raise SettingsError(f"{PREFIX}API_KEY: expected at least {MIN_SECRET_CHARS} characters")
    if "{role}" not in settings.role_room:
        raise SettingsError(f"{PREFIX}ROLE_ROOM={settings.role_room!r}: expected a template containing {{role}}")
    for attr in ("id", "key"):
        seen: set[str] = set()
        for app in settings.pusher.apps:
            value = getattr(app, attr)
            if value in seen:
                raise SettingsError(f"{PREFIX}PUSHER_APPS / [[apps]]: app {attr} {value!r} is configured twice")
            seen.add(value)


def load_config_file(path: str) -> tuple[tuple[ChannelRule, ...] | None, tuple[PusherApp, ...]]:
    """The ``[[channels]]`` rules (None: the file has none, the defaults stay) and ``[[apps]]`` of the TOML file
    (config_file.py reads it); raises :class:`SettingsError` naming the file and the entry."""
    var = f"{PREFIX}CONFIG_FILE={path!r}"
    try:
        tables = config_file.read(path)
    except config_file.ConfigFileError as exc:
        raise SettingsError(f"{var}: {exc}") from None
    rules = None
    if tables.channels is not None:
        rules = tuple(parse_rule(entry, f"{var} channels[{i}]") for i, entry in enumerate(tables.channels))
    return rules, tuple(_parse_app(entry, f"{var} apps[{i}]") for i, entry in enumerate(tables.apps))


def _parse_app(entry: Any, where: str) -> PusherApp:
    if not isinstance(entry, dict) or not {"id", "key", "secret"} <= set(entry) <= {"id", "key", "secret", "allowed_origins"}:
        raise SettingsError(f"{where}: expected a table with id, key, secret and optionally allowed_origins")
    app = pusher_app(where, entry["id"], entry["key"], entry["secret"])
    origins = entry.get("allowed_origins", [])
    if not isinstance(origins, list) or not all(isinstance(o, str) and o.strip() for o in origins):
        raise SettingsError(f"{where}: allowed_origins: expected a list of origins or host patterns, e.g. [\"https://app.example.com\"]")
    return replace(app, allowed_origins=tuple(o.strip() for o in origins))


def load_rules_file(path: str) -> tuple[ChannelRule, ...]:
    """Read ``[[channels]]`` rules from a TOML file (none → ``()``); raises :class:`SettingsError`."""
    return load_config_file(path)[0] or ()


def parse_rule(entry: Any, where: str) -> ChannelRule:
    """Validate one rule mapping ``{pattern, allow, param?, roles?}``."""
    if not isinstance(entry, dict):
        raise SettingsError(f"{where}: expected a table with pattern and allow")
    pattern, allow = entry.get("pattern"), entry.get("allow")
    if not isinstance(pattern, str) or not pattern:
        raise SettingsError(f"{where}: expected pattern = \"private-user.{{id}}\"-style string")
    if allow not in RULE_KINDS:
        raise SettingsError(f"{where}: allow={allow!r}: expected one of {', '.join(RULE_KINDS)}")
    param = entry.get("param")
    if param is not None and (not isinstance(param, str) or "{" + param + "}" not in pattern):
        raise SettingsError(f"{where}: param={param!r}: expected the name of a {{placeholder}} in the pattern")
    roles = entry.get("roles", [])
    if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
        raise SettingsError(f"{where}: roles: expected a list of strings")
    if allow in ("user", "role") and "{" not in pattern:
        raise SettingsError(f"{where}: allow={allow!r} needs a {{placeholder}} in the pattern")
    if allow == "roles" and not roles:
        raise SettingsError(f"{where}: allow='roles' needs roles = [\"admin\", ...]")
    if allow == "public" and pattern.startswith(("private-", "presence-")):
        raise SettingsError(f"{where}: private-/presence- channels cannot be public")
    unknown = set(entry) - {"pattern", "allow", "param", "roles"}
    if unknown:
        raise SettingsError(f"{where}: unknown keys {sorted(unknown)}")
    return ChannelRule(pattern=pattern, allow=allow, param=param, roles=tuple(roles))
