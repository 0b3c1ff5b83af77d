"""Dashboard snapshot: registry sampling, rates, histogram quantiles, error windows, channel and connection rows."""

from __future__ import annotations

import math

import pytest
from prometheus_client import CollectorRegistry

from realtime_sio import metrics as metrics_module
from realtime_sio.auth.tokens import Identity
from realtime_sio.dashboard import snapshot
from realtime_sio.sio.namespace import Connection


def conn(user: str | None, *channels: str) -> Connection:
    return Connection(identity=Identity(user_id=user), cookie=None, positions={}, channels=set(channels))


def live(connections: dict[str, Connection], presence: dict[str, int] | None = None, **kw: object) -> snapshot.Live:
    defaults: dict[str, object] = {
        "version": "t",
        "generated_at": 0.0,
        "uptime_seconds": 1.0,
        "draining": False,
        "redis_state": "disabled",
        "connections": connections,
        "transport_of": lambda sid: "websocket" if sid.startswith("w") else "polling",
        "presence": presence if presence is not None else {},
    }
    defaults.update(kw)
    return snapshot.Live(**defaults)  # type: ignore[arg-type]


def test_read_sample_folds_the_registry() -> None:
    """Counters, the latency histogram and error families are read from a real registry."""
    m = metrics_module.create(CollectorRegistry(), process=False)
    m.connects.labels(outcome="accepted").inc(3)
    m.connects.labels(outcome="refused").inc()
    m.disconnects.labels(reason="client").inc(2)
    m.messages_delivered.inc(10)
    m.delivery_latency.observe(0.002)
    m.auth_failures.labels(reason="token_expired").inc()
    m.bad_input.labels(reason="payload_invalid").inc(2)
    m.redis_messages_rejected.labels(reason="not_json").inc()
    m.api_requests.labels(route="events", status="401").inc()
    m.api_requests.labels(route="events", status="200").inc(5)
    m.connections.inc(2)
    s = snapshot.read_sample(m.registry.collect(), at=5.0)
    assert s.connections == 2
    assert (s.connects, s.refused, s.disconnects, s.deliveries) == (3, 1, 2, 10)
    assert s.latency_buckets[-1] == (math.inf, 1.0)
    assert s.errors == {
        ("auth", "token_expired"): 1,
        ("bad_input", "payload_invalid"): 2,
        ("redis", "not_json"): 1,
        ("api", "events 401"): 1,
    }


def test_baseline_is_the_oldest_sample_inside_the_window() -> None:
    """Rates compare the newest sample with the oldest one no older than the window."""
    samples = [snapshot.Sample(at=t) for t in (0.0, 3.0, 6.0, 9.0, 10.0)]
    chosen = snapshot.baseline(samples, 5.0)
    assert chosen is not None and chosen.at == 6.0
    assert snapshot.baseline(samples[:1], 5.0) is None
    assert snapshot.baseline([snapshot.Sample(at=0.0), snapshot.Sample(at=10.0)], 5.0) is None


def test_rate_is_per_second_and_never_negative() -> None:
    """A counter's increase divided by elapsed time; a counter reset reads as 0."""
    assert snapshot.rate(snapshot.Sample(at=4.0, connects=10), snapshot.Sample(at=2.0, connects=4), "connects") == 3.0
    assert snapshot.rate(snapshot.Sample(at=4.0, connects=1), snapshot.Sample(at=2.0, connects=4), "connects") == 0.0
    assert snapshot.rate(snapshot.Sample(at=4.0), None, "connects") is None


def test_quantile_interpolates_inside_buckets() -> None:
    """p50 and p99 follow Prometheus' histogram_quantile over the observations between two histograms."""
    then = ((0.001, 0.0), (0.01, 0.0), (math.inf, 0.0))
    now = ((0.001, 50.0), (0.01, 100.0), (math.inf, 100.0))
    assert snapshot.quantile(0.5, now, then) == pytest.approx(0.001)
    assert snapshot.quantile(0.99, now, then) == pytest.approx(0.001 + 0.009 * 49 / 50)
    assert snapshot.quantile(0.5, now, now) is None


def test_quantile_beyond_largest_bucket_reports_its_bound() -> None:
    """Observations in +Inf are reported as the largest finite bound."""
    now = ((0.5, 0.0), (2.5, 0.0), (math.inf, 4.0))
    assert snapshot.quantile(0.99, now) == 2.5


def test_error_rows_count_recent_and_total() -> None:
    """Each reason shows its count inside the window and since start, busiest recent first."""
    then = snapshot.Sample(at=0.0, errors={("auth", "token_expired"): 5})
    now = snapshot.Sample(at=60.0, errors={("auth", "token_expired"): 6, ("bad_input", "channel_invalid"): 3, ("redis", "x"): 0})
    assert snapshot.error_rows(now, then) == [
        {"category": "bad_input", "reason": "channel_invalid", "recent": 3, "total": 3},
        {"category": "auth", "reason": "token_expired", "recent": 1, "total": 6},
    ]


def test_channel_rows_count_subscribers_and_presence_members() -> None:
    """Subscribers are local sockets per channel; presence channels also show distinct members."""
    connections = {
        "w1": conn("42", "private-user.42", "presence-chat.lobby"),
        "p2": conn("42", "presence-chat.lobby"),
        "w3": conn(None, "orders"),
    }
    total, rows = snapshot.channel_rows(connections, {"presence-chat.lobby": 1})
    assert total == 3
    assert rows[0] == {"name": "presence-chat.lobby", "kind": "presence", "subscribers": 2, "presence_members": 1}
    assert {r["name"]: r["presence_members"] for r in rows[1:]} == {"orders": None, "private-user.42": None}


def test_channel_rows_are_capped() -> None:
    """Only the busiest channels are listed; the total still counts every channel."""
    connections = {f"w{i}": conn(None, f"c{i}") for i in range(10)}
    total, rows = snapshot.channel_rows(connections, None, limit=3)
    assert total == 10 and len(rows) == 3


def test_build_reports_connections_transports_and_newest_first() -> None:
    """The snapshot counts transports and signed-in users and lists the newest connections first."""
    connections = {"w1": conn("1", "a"), "p2": conn(None), "w3": conn("3")}
    samples = [snapshot.Sample(at=0.0, connects=0), snapshot.Sample(at=2.0, connects=4, deliveries=10)]
    snap = snapshot.build(samples, live(connections, draining=True, redis_state="up"))
    c = snap["connections"]
    assert (c["open"], c["websocket"], c["polling"], c["authenticated"]) == (3, 2, 1, 2)
    assert c["connects_per_second"] == 2.0
    assert snap["deliveries"]["per_second"] == 5.0
    assert [r["sid"] for r in snap["recent_connections"]] == ["w3", "p2", "w1"]
    assert snap["draining"] is True and snap["redis"]["state"] == "up"


def test_build_without_history_has_no_rates() -> None:
    """With a single sample, rates are unknown (null) and latency covers the whole process life."""
    snap = snapshot.build([snapshot.Sample(at=1.0)], live({}))
    assert snap["connections"]["connects_per_second"] is None
    assert snap["deliveries"]["latency_window_seconds"] is None
    assert snap["errors"]["window_seconds"] is None


def test_series_feed_the_sparklines() -> None:
    """Series hold the open-connection gauge per sample and deliveries/s between neighbouring samples."""
    samples = [snapshot.Sample(at=float(t), deliveries=10.0 * t, connections=float(t % 3)) for t in range(100)]
    result = snapshot.series(samples, points=60)
    assert len(result["connections"]) == 60 and result["connections"][-1] == 99 % 3
    assert result["deliveries_per_second"] == [10.0] * 60
    assert snapshot.series(samples[:1]) == {"connections": [0.0], "deliveries_per_second": []}


def test_felt_latency_is_summed_over_labels_with_its_share_over_the_target() -> None:
    """The estimated and acknowledged histograms are read summed over source/protocol; the share over 50 ms and the
    quantiles come from the deliveries between two samples (issue 15)."""
    from realtime_sio.metrics import delivery_label

    m = metrics_module.create(CollectorRegistry(), process=False)
    m.delivery_estimated.add(delivery_label("http", "websocket"), 0.01, 50)
    then = snapshot.read_sample(m.registry.collect(), at=0.0)
    m.delivery_estimated.add(delivery_label("http", "websocket"), 0.02, 90)
    m.delivery_estimated.add(delivery_label("redis", "polling"), 0.2, 10)
    m.delivery_acknowledged.add(delivery_label("http", "websocket"), 0.04, 3)
    now = snapshot.read_sample(m.registry.collect(), at=5.0)
    assert snapshot.share_over(snapshot.FELT_TARGET, now.felt_buckets, then.felt_buckets) == pytest.approx(0.1)
    p99 = snapshot.quantile(0.99, now.felt_buckets, then.felt_buckets)
    assert p99 is not None and 0.15 < p99 <= 0.25
    assert snapshot.quantile(0.5, now.acked_buckets, then.acked_buckets) is not None
    assert snapshot.share_over(snapshot.FELT_TARGET, then.felt_buckets, then.felt_buckets) is None


def test_pusher_connections_are_counted_beside_socketio_ones() -> None:
    """Open connections count both protocols; the Pusher ones are also shown on their own."""
    connections = {"w1": conn("1", "a")}
    samples = [snapshot.Sample(at=0.0), snapshot.Sample(at=1.0)]
    c = snapshot.build(samples, live(connections, pusher_connections=4))["connections"]
    assert (c["open"], c["websocket"], c["pusher"]) == (5, 1, 4)

