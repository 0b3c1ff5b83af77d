"""Every Prometheus collector of realtime_sio, built on an injected registry.

Label values come from closed sets only (channel kind, outcome, reason codes from ``errors``), never user ids or
channel names, so cardinality stays bounded whatever clients send.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator
from dataclasses import dataclass

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
)
from prometheus_client.core import HistogramMetricFamily
from prometheus_client.registry import Collector

CHANNEL_KINDS = ("public", "private", "presence")
EVENT_SOURCES = ("http", "pusher", "redis", "whisper", "cluster")
STALL_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
RECOVERY_OUTCOMES = ("replayed", "reset", "retried", "deferred")
ADMISSION_REASONS = ("draining", "descriptors", "overloaded")
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
# Delivery latency as users feel it (issue 15). Sources: where the event was accepted (http = the sidecar route,
# pusher = the Pusher HTTP API, redis = Laravel's Redis broadcaster, whisper, presence = join/leave announcements,
# unknown = a message from a node that predates the field). Protocols: Socket.IO over a WebSocket or long-polling;
# pusher is reserved for Pusher protocol connections (realtime_sio/pusher/), which feed the same per-connection RTT.
DELIVERY_SOURCES = ("http", "pusher", "redis", "whisper", "presence", "unknown")
DELIVERY_PROTOCOLS = ("websocket", "polling", "pusher")
DELIVERY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def delivery_label(source: str, protocol: str) -> int:
    """The index of a (source, protocol) pair in a :class:`DeliveryHistogram`; unknown sources count as "unknown"."""
    src = DELIVERY_SOURCES.index(source) if source in DELIVERY_SOURCES else DELIVERY_SOURCES.index("unknown")
    return src * len(DELIVERY_PROTOCOLS) + DELIVERY_PROTOCOLS.index(protocol)


class DeliveryHistogram(Collector):
    """A histogram labelled (source, protocol) that takes observations in bulk.

    ``prometheus_client.Histogram.observe`` takes a lock and walks the buckets once per observation; a fan-out to
    10,000 sockets adds its deliveries here as a few (value, count) pairs instead (``realtime_sio.latency``). Label
    pairs are indexes (:func:`delivery_label`). Every source over "websocket" is exposed from the start (zeros, so
    ``rate()`` sees the first deliveries); other pairs once they saw an observation.
    """

    def __init__(self, name: str, documentation: str, registry: CollectorRegistry) -> None:
        self.name = name
        self.documentation = documentation
        pairs = len(DELIVERY_SOURCES) * len(DELIVERY_PROTOCOLS)
        # counts[label][i] = observations in bucket i (not cumulative); the last slot is +Inf
        self.counts = [[0] * (len(DELIVERY_BUCKETS) + 1) for _ in range(pairs)]
        self.sums = [0.0] * pairs
        registry.register(self)

    def add(self, label: int, value: float, count: int = 1) -> None:
        """Record ``count`` observations of ``value`` seconds under ``label``."""
        self.counts[label][bisect_left(DELIVERY_BUCKETS, value)] += count
        self.sums[label] += value * count

    def total(self) -> int:
        """Observations so far, every label together."""
        return sum(sum(counts) for counts in self.counts)

    def _family(self) -> HistogramMetricFamily:
        return HistogramMetricFamily(self.name, self.documentation, labels=["source", "protocol"])

    def describe(self) -> Iterator[HistogramMetricFamily]:
        yield self._family()

    def collect(self) -> Iterator[HistogramMetricFamily]:
        family = self._family()
        websocket = DELIVERY_PROTOCOLS.index("websocket")
        for label, counts in enumerate(self.counts):
            if label % len(DELIVERY_PROTOCOLS) != websocket and not any(counts):
                continue
            source = DELIVERY_SOURCES[label // len(DELIVERY_PROTOCOLS)]
            protocol = DELIVERY_PROTOCOLS[label % len(DELIVERY_PROTOCOLS)]
            cumulative = 0
            buckets: list[tuple[str, float]] = []
            for bound, count in zip((*map(str, DELIVERY_BUCKETS), "+Inf"), counts, strict=True):
                cumulative += count
                buckets.append((bound, cumulative))
            family.add_metric([source, protocol], buckets, self.sums[label])
        yield family


@dataclass(frozen=True)
class Metrics:
    """The collectors; one instance per server, registered on ``registry``."""

    registry: CollectorRegistry
    connections: Gauge
    connects: Counter
    disconnects: Counter
    subscriptions: Gauge
    subscribe_requests: Counter
    auth_failures: Counter
    bad_input: Counter
    events_received: Counter
    messages_delivered: Counter
    delivery_latency: Histogram
    delivery_estimated: DeliveryHistogram
    delivery_acknowledged: DeliveryHistogram
    redis_up: Gauge
    redis_messages_rejected: Counter
    api_requests: Counter
    draining: Gauge
    slow_consumer_disconnects: Counter
    presence_members: Gauge
    event_loop_lag: Histogram
    gc_pause: Histogram
    recoveries: Counter
    admission_refused: Counter
    redis_pool_exhausted: Counter
    redis_pool_wait: Histogram
    heartbeats: Counter
    nodes_reaped: Counter
    tls_certificate_expiry: Gauge
    tls_reloads: Counter
    protocol_connections: Gauge
    protocol_subscriptions: Gauge

    def exposition(self) -> bytes:
        """Prometheus text format of everything in the registry."""
        from prometheus_client import generate_latest

        return generate_latest(self.registry)


def create(registry: CollectorRegistry | None = None, *, process: bool = True) -> Metrics:
    """Build and register every collector on ``registry`` (a fresh one by default)."""
    disable_created_metrics()  # type: ignore[no-untyped-call]  # *_created series double the exposition for no operational value
    reg = registry if registry is not None else CollectorRegistry(auto_describe=True)
    if process:
        ProcessCollector(registry=reg)
        PlatformCollector(registry=reg)
    metrics = Metrics(
        registry=reg,
        # The migration plan's health check reads this exact name: it is the number of open connections now.
        connections=Gauge(
            "websocket_connections_total",
            "Open connections on this instance: Socket.IO (all transports) and Pusher (/app/{key})",
            registry=reg,
        ),
        connects=Counter(
            "realtime_sio_connects_total", "Connection attempts by outcome", ["outcome"], registry=reg
        ),
        disconnects=Counter(
            "realtime_sio_disconnects_total", "Disconnections by reason", ["reason"], registry=reg
        ),
        subscriptions=Gauge(
            "realtime_sio_subscriptions", "Current channel subscriptions by channel kind", ["kind"], registry=reg
        ),
        subscribe_requests=Counter(
            "realtime_sio_subscribe_requests_total",
            "Subscribe requests by channel kind and outcome",
            ["kind", "outcome"],
            registry=reg,
        ),
        auth_failures=Counter(
            "realtime_sio_auth_failures_total", "Refused connections and subscriptions by reason code", ["reason"], registry=reg
        ),
        bad_input=Counter(
            "realtime_sio_bad_input_total", "Malformed client or publisher input dropped, by reason code", ["reason"], registry=reg
        ),
        events_received=Counter(
            "realtime_sio_events_received_total", "Events accepted for broadcast, by source", ["source"], registry=reg
        ),
        messages_delivered=Counter(
            "realtime_sio_messages_delivered_total", "Event deliveries to sockets (one per recipient)", registry=reg
        ),
        delivery_latency=Histogram(
            "realtime_sio_delivery_latency_seconds",
            "Time from an event's acceptance to its hand-off to every local recipient",
            buckets=LATENCY_BUCKETS,
            registry=reg,
        ),
        delivery_estimated=DeliveryHistogram(
            "realtime_sio_delivery_estimated_seconds",
            "Estimated delivery latency as the user feels it: acceptance to the write to that socket, plus half its "
            "last measured round trip (every delivery of a broadcast event)",
            reg,
        ),
        delivery_acknowledged=DeliveryHistogram(
            "realtime_sio_delivery_acknowledged_seconds",
            "Acceptance to the client's acknowledgement, on the server's clock (sampled deliveries to clients that "
            "opted in; an upper bound: includes the way back)",
            reg,
        ),
        redis_up=Gauge("realtime_sio_redis_up", "1 while Redis is reachable (always 1 without Redis)", registry=reg),
        redis_messages_rejected=Counter(
            "realtime_sio_redis_messages_rejected_total",
            "Laravel Redis broadcast messages skipped, by reason",
            ["reason"],
            registry=reg,
        ),
        api_requests=Counter(
            "realtime_sio_api_requests_total", "HTTP publish/query API requests by route and status", ["route", "status"], registry=reg
        ),
        draining=Gauge("realtime_sio_draining", "1 while the instance is draining for shutdown", registry=reg),
        slow_consumer_disconnects=Counter(
            "realtime_sio_slow_consumer_disconnects_total",
            "Connections dropped because their outgoing buffer was full",
            registry=reg,
        ),
        presence_members=Gauge(
            "realtime_sio_presence_members", "Distinct presence members over all presence channels (local view)", registry=reg
        ),
        event_loop_lag=Histogram(
            "realtime_sio_event_loop_lag_seconds",
            "How late a 50 ms timer fired: time the event loop could run nothing else",
            buckets=STALL_BUCKETS,
            registry=reg,
        ),
        gc_pause=Histogram(
            "realtime_sio_gc_pause_seconds",
            "Duration of CPython cyclic garbage collections, by generation",
            ["generation"],
            buckets=STALL_BUCKETS,
            registry=reg,
        ),
        recoveries=Counter(
            "realtime_sio_recoveries_total",
            "Missed-message recoveries by outcome (replayed, reset, retried = a read tried again, deferred = client told to reconnect) and reason",
            ["outcome", "reason"],
            registry=reg,
        ),
        admission_refused=Counter(
            "realtime_sio_admission_refused_total",
            "New connections refused with a retryable 503, by reason (draining, descriptors, overloaded)",
            ["reason"],
            registry=reg,
        ),
        redis_pool_exhausted=Counter(
            "realtime_sio_redis_pool_exhausted_total",
            "Redis commands that found no free pooled connection within REDIS_POOL_TIMEOUT",
            registry=reg,
        ),
        redis_pool_wait=Histogram(
            "realtime_sio_redis_pool_wait_seconds",
            "Time a Redis command waited for a pooled connection (only waits that had to queue)",
            buckets=STALL_BUCKETS,
            registry=reg,
        ),
        heartbeats=Counter(
            "realtime_sio_node_heartbeats_total",
            "This node's lease renewals by outcome (ok, failed, withheld = event loop silent too long)",
            ["outcome"],
            registry=reg,
        ),
        nodes_reaped=Counter("realtime_sio_nodes_reaped_total", "Dead nodes whose presence this node removed", registry=reg),
        # 0 while the server does not terminate TLS itself (the expiry alert ignores 0).
        tls_certificate_expiry=Gauge(
            "realtime_sio_tls_certificate_expiry_timestamp_seconds",
            "notAfter of the TLS certificate served to new connections, unix seconds (0 = TLS is not served here)",
            registry=reg,
        ),
        tls_reloads=Counter(
            "realtime_sio_tls_reloads_total",
            "Renewed TLS certificate/key pairs seen on disk, by outcome (loaded, refused = the old pair keeps serving)",
            ["outcome"],
            registry=reg,
        ),
        protocol_connections=Gauge(
            "realtime_sio_connections",
            "Open connections by protocol (socketio: Socket.IO sessions, pusher: /app/{key} WebSockets)",
            ["protocol"],
            registry=reg,
        ),
        protocol_subscriptions=Gauge(
            "realtime_sio_channel_subscriptions", "Channel subscriptions on this instance by protocol", ["protocol"], registry=reg
        ),
    )
    metrics.redis_up.set(1)
    for reason in ADMISSION_REASONS:
        metrics.admission_refused.labels(reason=reason)
    for outcome in ("ok", "failed", "withheld"):
        metrics.heartbeats.labels(outcome=outcome)
    for outcome in ("loaded", "refused"):
        metrics.tls_reloads.labels(outcome=outcome)
    for kind in CHANNEL_KINDS:
        metrics.subscriptions.labels(kind=kind)
    for source in EVENT_SOURCES:
        metrics.events_received.labels(source=source)
    return metrics

