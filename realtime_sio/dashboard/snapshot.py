"""Build the dashboard's JSON snapshot, pure: counters sampled from the metrics registry plus the live socket state.

Rates and the delivery-latency quantiles are differences between the newest :class:`Sample` and an older one (the
oldest still inside the window), so they describe "the last few seconds", not the process lifetime. Nothing here
does I/O or reads a clock: the caller (``dashboard/feed.py``) passes samples, times and state in.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypedDict

from realtime_sio.channels import kind_of
from realtime_sio.histograms import quantile, share_over

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric
    from prometheus_client.samples import Sample as PromSample

    from realtime_sio.sio.namespace import Connection

RATE_WINDOW = 5.0  # seconds: connect/disconnect/delivery rates
LATENCY_WINDOW = 10.0  # seconds: delivery latency quantiles
FELT_TARGET = 0.05  # seconds: the migration plan's "< 50 ms" delivery target (a bucket bound of metrics.DELIVERY_BUCKETS)
ERROR_WINDOW = 60.0  # seconds: "recent" error counts
MAX_CHANNEL_ROWS = 100
MAX_CONNECTION_ROWS = 25
SERIES_POINTS = 60  # sparkline points (one per sample, ~1 s apart)

@dataclass(frozen=True)
class Sample:
    """Cumulative counters read from the registry at monotonic time ``at``."""

    at: float
    connects: float = 0.0
    refused: float = 0.0
    disconnects: float = 0.0
    deliveries: float = 0.0
    events: float = 0.0
    latency_buckets: tuple[tuple[float, float], ...] = ()  # (upper bound, cumulative count), ascending, +Inf last
    # delivery latency as users feel it (issue 15), every source and protocol summed, same shape as latency_buckets
    felt_buckets: tuple[tuple[float, float], ...] = ()  # the estimate: written + half the round trip
    acked_buckets: tuple[tuple[float, float], ...] = ()  # sampled acknowledgements (an upper bound)
    errors: Mapping[tuple[str, str], float] = field(default_factory=dict)  # (category, reason) → total
    redis_up: float = 1.0
    rss_bytes: float | None = None
    connections: float = 0.0  # open connections (a gauge), for the sparkline


@dataclass(frozen=True)
class Live:
    """The state that is not a metric: sockets, presence, health; passed in by the feed."""

    version: str
    generated_at: float  # wall-clock seconds
    uptime_seconds: float
    draining: bool
    redis_state: str  # "disabled" | "up" | "down"
    connections: Mapping[str, Connection]  # sid → Connection (the namespace's live dict)
    transport_of: Callable[[str], str]  # sid → "websocket" | "polling" | "unknown"
    presence: Mapping[str, int] | None  # presence channel → distinct users; None when the store did not answer
    pusher_connections: int = 0  # open Pusher protocol connections (/app/{key}); ``connections`` is Socket.IO's


class ConnectionsPanel(TypedDict):
    open: int  # both protocols
    authenticated: int  # Socket.IO sockets with a verified JWT
    websocket: int  # Socket.IO over WebSocket
    polling: int  # Socket.IO over long-polling
    pusher: int  # Pusher protocol (pusher-js, Echo's reverb/pusher broadcasters)
    connects_per_second: float | None
    disconnects_per_second: float | None
    refused_per_second: float | None
    connects_total: float
    disconnects_total: float


class DeliveriesPanel(TypedDict):
    per_second: float | None
    events_per_second: float | None
    total: float
    latency_p50_ms: float | None
    latency_p99_ms: float | None
    latency_window_seconds: float | None  # None = since the process started
    # as users feel it (issue 15), over the same window: the estimate for every delivery, and the acknowledged sample
    felt_p50_ms: float | None
    felt_p99_ms: float | None
    felt_over_target_share: float | None  # share of deliveries estimated over FELT_TARGET seconds (0-1)
    acked_p50_ms: float | None
    acked_p99_ms: float | None
    acked_count: float  # acknowledgements in the window


class ChannelRow(TypedDict):
    name: str
    kind: str
    subscribers: int
    presence_members: int | None


class ConnectionRow(TypedDict):
    sid: str
    user_id: str | None
    transport: str
    channels: list[str]


class ErrorRow(TypedDict):
    category: str
    reason: str
    recent: float
    total: float


class Series(TypedDict):
    connections: list[float]
    deliveries_per_second: list[float]


class Snapshot(TypedDict):
    version: str
    generated_at: float
    uptime_seconds: float
    draining: bool
    redis: dict[str, Any]
    process: dict[str, Any]
    connections: ConnectionsPanel
    deliveries: DeliveriesPanel
    channels: dict[str, Any]
    recent_connections: list[ConnectionRow]
    errors: dict[str, Any]
    series: Series


# -- reading the registry -----------------------------------------------------------------------------------------
@dataclass
class _Fold:
    """Accumulates one registry walk; ``_FOLDS`` says what each metric family contributes."""

    values: dict[str, float] = field(default_factory=dict)
    buckets: list[tuple[float, float]] = field(default_factory=list)
    # histograms[key][upper bound] = cumulative count, summed over every label set
    histograms: dict[str, dict[float, float]] = field(default_factory=dict)
    errors: dict[tuple[str, str], float] = field(default_factory=dict)

    def add(self, key: str, value: float) -> None:
        self.values[key] = self.values.get(key, 0.0) + value

    def error(self, category: str, reason: str, value: float) -> None:
        if value:
            self.errors[(category, reason)] = self.errors.get((category, reason), 0.0) + value


def _counter(key: str) -> Callable[[_Fold, PromSample], None]:
    def fold(acc: _Fold, s: PromSample) -> None:
        if s.name.endswith("_total"):
            acc.add(key, s.value)

    return fold


def _connects(acc: _Fold, s: PromSample) -> None:
    if s.name.endswith("_total"):
        acc.add("connects" if s.labels.get("outcome") == "accepted" else "refused", s.value)


def _latency(acc: _Fold, s: PromSample) -> None:
    if s.name.endswith("_bucket"):
        acc.buckets.append((float(s.labels["le"]), s.value))


def _histogram(key: str) -> Callable[[_Fold, PromSample], None]:
    def fold(acc: _Fold, s: PromSample) -> None:
        if s.name.endswith("_bucket"):
            bounds = acc.histograms.setdefault(key, {})
            bound = float(s.labels["le"])
            bounds[bound] = bounds.get(bound, 0.0) + s.value

    return fold


def _errors(category: str) -> Callable[[_Fold, PromSample], None]:
    def fold(acc: _Fold, s: PromSample) -> None:
        if s.name.endswith("_total"):
            acc.error(category, s.labels.get("reason", "buffer_full"), s.value)

    return fold


def _api_errors(acc: _Fold, s: PromSample) -> None:
    status = s.labels.get("status", "")
    if s.name.endswith("_total") and status.isdigit() and int(status) >= 400:
        acc.error("api", f"{s.labels.get('route', '?')} {status}", s.value)


def _gauge(key: str) -> Callable[[_Fold, PromSample], None]:
    def fold(acc: _Fold, s: PromSample) -> None:
        acc.values[key] = s.value

    return fold


# metric family name → what it adds to a sample (the error families are the dashboard's "Errors" table)
_FOLDS: dict[str, Callable[[_Fold, PromSample], None]] = {
    "realtime_sio_connects": _connects,
    "realtime_sio_disconnects": _counter("disconnects"),
    "realtime_sio_messages_delivered": _counter("deliveries"),
    "realtime_sio_events_received": _counter("events"),
    "realtime_sio_delivery_latency_seconds": _latency,
    "realtime_sio_delivery_estimated_seconds": _histogram("felt"),
    "realtime_sio_delivery_acknowledged_seconds": _histogram("acked"),
    "realtime_sio_auth_failures": _errors("auth"),
    "realtime_sio_bad_input": _errors("bad_input"),
    "realtime_sio_redis_messages_rejected": _errors("redis"),
    "realtime_sio_slow_consumer_disconnects": _errors("slow_consumer"),
    "realtime_sio_api_requests": _api_errors,
    "realtime_sio_redis_up": _gauge("redis_up"),
    "process_resident_memory_bytes": _gauge("rss_bytes"),
    "websocket_connections_total": _gauge("connections"),  # a gauge despite the name (the migration plan's)
}


def read_sample(families: Iterable[Metric], at: float) -> Sample:
    """Fold the registry's collected families into one :class:`Sample`."""
    acc = _Fold()
    for family in families:
        fold = _FOLDS.get(family.name)
        if fold is not None:
            for s in family.samples:
                fold(acc, s)
    v = acc.values
    return Sample(
        at=at,
        connects=v.get("connects", 0.0),
        refused=v.get("refused", 0.0),
        disconnects=v.get("disconnects", 0.0),
        deliveries=v.get("deliveries", 0.0),
        events=v.get("events", 0.0),
        latency_buckets=tuple(sorted(acc.buckets)),
        felt_buckets=tuple(sorted(acc.histograms.get("felt", {}).items())),
        acked_buckets=tuple(sorted(acc.histograms.get("acked", {}).items())),
        errors=acc.errors,
        redis_up=v.get("redis_up", 1.0),
        rss_bytes=v.get("rss_bytes"),
        connections=v.get("connections", 0.0),
    )


# -- windows, rates, quantiles ------------------------------------------------------------------------------------
def baseline(samples: Sequence[Sample], window: float) -> Sample | None:
    """The oldest sample at most ``window`` seconds older than the newest one; ``None`` if there is none."""
    if len(samples) < 2:
        return None
    newest = samples[-1]
    for s in samples[:-1]:
        if newest.at - s.at <= window:
            return s if s.at < newest.at else None
    return None


def rate(now: Sample, then: Sample | None, attr: str) -> float | None:
    """Per-second increase of a counter between two samples (``None`` without a baseline)."""
    if then is None or now.at <= then.at:
        return None
    increase = float(getattr(now, attr)) - float(getattr(then, attr))
    return max(0.0, increase / (now.at - then.at))


def _count(now: Sequence[tuple[float, float]], then: Sequence[tuple[float, float]] = ()) -> float:
    return (now[-1][1] if now else 0.0) - (dict(then).get(math.inf, 0.0))


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000.0, 3)


def _round(value: float | None, digits: int = 2) -> float | None:
    return None if value is None else round(value, digits)


# -- panels -------------------------------------------------------------------------------------------------------
def error_rows(now: Sample, then: Sample | None) -> list[ErrorRow]:
    """Every (category, reason) seen so far, with its count inside the window; most recent first."""
    rows: list[ErrorRow] = []
    for (category, reason), total in now.errors.items():
        if total <= 0:
            continue
        recent = total - (then.errors.get((category, reason), 0.0) if then is not None else 0.0)
        rows.append({"category": category, "reason": reason, "recent": max(0.0, recent), "total": total})
    rows.sort(key=lambda r: (-r["recent"], -r["total"], r["category"], r["reason"]))
    return rows


def channel_rows(
    connections: Mapping[str, Connection], presence: Mapping[str, int] | None, limit: int = MAX_CHANNEL_ROWS
) -> tuple[int, list[ChannelRow]]:
    """(number of channels with a local subscriber, the ``limit`` busiest of them)."""
    counts: dict[str, int] = {}  # counts[channel] = local sockets subscribed
    for conn in list(connections.values()):
        for channel in list(conn.channels):
            counts[channel] = counts.get(channel, 0) + 1
    busiest = sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:limit]
    rows: list[ChannelRow] = []
    for name, subscribers in busiest:
        kind = kind_of(name)
        members = presence.get(name, 0) if presence is not None and kind == "presence" else None
        rows.append({"name": name, "kind": kind, "subscribers": subscribers, "presence_members": members})
    return len(counts), rows


def connection_rows(
    connections: Mapping[str, Connection], transport_of: Callable[[str], str], limit: int = MAX_CONNECTION_ROWS
) -> list[ConnectionRow]:
    """The ``limit`` newest connections (dict order is connect order), newest first."""
    newest = list(connections.items())[-limit:]
    newest.reverse()
    return [
        {"sid": sid, "user_id": conn.identity.user_id, "transport": transport_of(sid), "channels": sorted(conn.channels)}
        for sid, conn in newest
    ]


def series(samples: Sequence[Sample], points: int = SERIES_POINTS) -> Series:
    """The last ``points`` samples as sparkline series: open connections, and deliveries/s between neighbours."""
    recent = list(samples)[-(points + 1) :]
    pairs = list(itertools.pairwise(recent))
    return {
        "connections": [s.connections for s in recent[-points:]],
        "deliveries_per_second": [round(rate(b, a, "deliveries") or 0.0, 2) for a, b in pairs],
    }


def build(samples: Sequence[Sample], live: Live) -> Snapshot:
    """The whole snapshot for the newest sample; ``samples`` is oldest-first and must not be empty."""
    now = samples[-1]
    rate_base = baseline(samples, RATE_WINDOW)
    latency_base = baseline(samples, LATENCY_WINDOW)
    error_base = baseline(samples, ERROR_WINDOW)
    then_buckets = latency_base.latency_buckets if latency_base is not None else ()
    then_felt = latency_base.felt_buckets if latency_base is not None else ()
    then_acked = latency_base.acked_buckets if latency_base is not None else ()
    transports = {"websocket": 0, "polling": 0}
    authenticated = 0
    for sid, conn in list(live.connections.items()):
        transport = live.transport_of(sid)
        if transport in transports:
            transports[transport] += 1
        authenticated += conn.identity.authenticated
    channels_total, channels = channel_rows(live.connections, live.presence)
    return {
        "version": live.version,
        "generated_at": live.generated_at,
        "uptime_seconds": round(live.uptime_seconds, 1),
        "draining": live.draining,
        "redis": {"state": live.redis_state, "up": now.redis_up >= 1.0},
        "process": {"rss_bytes": now.rss_bytes},
        "connections": {
            "open": len(live.connections) + live.pusher_connections,
            "authenticated": authenticated,
            "websocket": transports["websocket"],
            "polling": transports["polling"],
            "pusher": live.pusher_connections,
            "connects_per_second": _round(rate(now, rate_base, "connects")),
            "disconnects_per_second": _round(rate(now, rate_base, "disconnects")),
            "refused_per_second": _round(rate(now, rate_base, "refused")),
            "connects_total": now.connects,
            "disconnects_total": now.disconnects,
        },
        "deliveries": {
            "per_second": _round(rate(now, rate_base, "deliveries")),
            "events_per_second": _round(rate(now, rate_base, "events")),
            "total": now.deliveries,
            "latency_p50_ms": _ms(quantile(0.5, now.latency_buckets, then_buckets)),
            "latency_p99_ms": _ms(quantile(0.99, now.latency_buckets, then_buckets)),
            "latency_window_seconds": _round(now.at - latency_base.at, 1) if latency_base is not None else None,
            "felt_p50_ms": _ms(quantile(0.5, now.felt_buckets, then_felt)),
            "felt_p99_ms": _ms(quantile(0.99, now.felt_buckets, then_felt)),
            "felt_over_target_share": _round(share_over(FELT_TARGET, now.felt_buckets, then_felt), 4),
            "acked_p50_ms": _ms(quantile(0.5, now.acked_buckets, then_acked)),
            "acked_p99_ms": _ms(quantile(0.99, now.acked_buckets, then_acked)),
            "acked_count": _count(now.acked_buckets, then_acked),
        },
        "channels": {
            "total": channels_total,
            "rows": channels,
            "presence_available": live.presence is not None,
        },
        "recent_connections": connection_rows(live.connections, live.transport_of),
        "errors": {
            "window_seconds": _round(now.at - error_base.at, 1) if error_base is not None else None,
            "rows": error_rows(now, error_base),
        },
        "series": series(samples),
    }
