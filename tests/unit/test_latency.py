"""Pure parts of the delivery latency measurement (issue 15): half-RTT cells, bulk histogram, stamps, sampled acks."""

from __future__ import annotations

import random
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, generate_latest

from realtime_sio.cluster import bus
from realtime_sio.engine import round_trip
from realtime_sio.latency.acks import (
    ACK_INVALID,
    ACK_UNKNOWN,
    WINDOW,
    AckSampler,
    parse_ack,
)
from realtime_sio.latency.estimate import Estimator
from realtime_sio.metrics import DELIVERY_BUCKETS, DeliveryHistogram, delivery_label
from realtime_sio.publish.broadcaster import Message


@dataclass
class Sock:
    rtt: float = -1.0
    rtt_cell: int = 0
    ack_countdown: int = 0
    upgraded: bool = True
    closed: bool = False
    pending: int = 0

    def unsent(self) -> int | None:
        return None if self.closed else self.pending  # as LeanSocket and PusherSession: None once gone

    def __hash__(self) -> int:
        return id(self)


def test_half_rtt_cells_stand_within_ten_percent_of_the_value() -> None:
    """Every half round trip from 1 ms to 30 s maps to a cell whose value is within ±10 % of it; tiny ones to 0."""
    assert round_trip.cell_of(0.0) == 0 and round_trip.HALF_RTT[0] == 0.0
    value = 0.001
    while value < 30:
        cell = round_trip.cell_of(value)
        assert abs(round_trip.HALF_RTT[cell] - value) <= 0.1 * value
        value *= 1.07
    assert round_trip.cell_of(1e6) == len(round_trip.HALF_RTT) - 1


def test_record_keeps_the_round_trip_and_ignores_negative_ones() -> None:
    """record() sets rtt and the cell of its half; a negative figure (a clock step) changes nothing."""
    sock = Sock()
    round_trip.record(sock, 0.2)
    assert sock.rtt == 0.2 and abs(round_trip.HALF_RTT[sock.rtt_cell] - 0.1) < 0.011
    round_trip.record(sock, -1.0)
    assert sock.rtt == 0.2


def test_histogram_adds_in_bulk_and_exposes_cumulative_buckets() -> None:
    """add(label, value, count) lands in the first bucket whose bound is >= value; only used labels are exposed."""
    reg = CollectorRegistry()
    hist = DeliveryHistogram("t_seconds", "test", reg)
    hist.add(delivery_label("http", "websocket"), 0.05, 3)  # exactly on a bound: that bucket (le)
    hist.add(delivery_label("http", "websocket"), 0.2, 1)
    hist.add(delivery_label("nonsense", "polling"), 20.0, 2)
    text = generate_latest(reg).decode()
    assert 't_seconds_bucket{le="0.03",protocol="websocket",source="http"} 0.0' in text
    assert 't_seconds_bucket{le="0.05",protocol="websocket",source="http"} 3.0' in text
    assert 't_seconds_bucket{le="0.25",protocol="websocket",source="http"} 4.0' in text
    assert 't_seconds_count{protocol="websocket",source="http"} 4.0' in text
    assert 't_seconds_sum{protocol="websocket",source="http"} 0.35' in text
    assert 't_seconds_bucket{le="+Inf",protocol="polling",source="unknown"} 2.0' in text
    assert 'protocol="polling",source="whisper"' not in text  # unobserved pairs beyond websocket stay out
    assert hist.total() == 6 and len(hist.counts[0]) == len(DELIVERY_BUCKETS) + 1


def test_stamp_adds_one_entry_per_cell_after_the_fanout() -> None:
    """Recipients written at once count in their cell; finish() adds base + half RTT once per non-empty cell."""
    reg = CollectorRegistry()
    hist = DeliveryHistogram("e_seconds", "test", reg)
    now = [1000.0]
    est = Estimator(hist, AckSampler(0.0, hist), clock=lambda: now[0])
    stamp = est.stamp(999.99, "redis", ("ch", {}))
    assert stamp is not None and est.stamp(0.0, "redis", ()) is None  # unknown acceptance time: not measured
    near, far = round_trip.cell_of(0.001), round_trip.cell_of(0.1)
    stamp.cells[near] += 9_999
    stamp.cells[far] += 1
    stamp.finish()
    label = delivery_label("redis", "websocket")
    assert sum(hist.counts[label]) == 10_000
    assert abs(hist.sums[label] - (9_999 * (0.01 + round_trip.HALF_RTT[near]) + 0.01 + round_trip.HALF_RTT[far])) < 1e-6


def test_queued_deliveries_are_measured_when_they_leave() -> None:
    """A queued delivery counts when it leaves the queue, under its socket's protocol, late by the time it waited."""
    reg = CollectorRegistry()
    hist = DeliveryHistogram("q_seconds", "test", reg)
    now = [100.0]
    est = Estimator(hist, AckSampler(0.0, hist), clock=lambda: now[0])
    stamp = est.stamp(100.0, "http", ("ch", {}))
    assert stamp is not None
    now[0] = 103.0
    stamp.left_queue(Sock(upgraded=False))
    label = delivery_label("http", "polling")
    assert sum(hist.counts[label]) == 1 and hist.sums[label] == 3.0


async def test_held_deliveries_count_once_the_socket_sent_its_bytes() -> None:
    """A delivery written behind unsent bytes is measured at the sweep that finds them sent, or when the socket closed."""
    reg = CollectorRegistry()
    hist = DeliveryHistogram("h_seconds", "test", reg)
    now = [0.0]
    est = Estimator(hist, AckSampler(0.0, hist), clock=lambda: now[0])
    slow, gone = Sock(pending=5000), Sock(pending=5000)
    for sock in (slow, gone):
        stamp = est.stamp(0.5, "http", ())
        assert stamp is not None
        stamp.buffered(sock)
    now[0] = 2.0
    gone.closed = True
    est.sweep()
    label = delivery_label("http", "websocket")
    assert sum(hist.counts[label]) == 1 and hist.sums[label] == 1.5  # the closed one, at least 1.5 s late
    assert est.held() == 1
    slow.pending = 0
    now[0] = 3.0
    est.sweep()
    assert sum(hist.counts[label]) == 2 and hist.sums[label] == 1.5 + 2.5
    assert est.held() == 0
    est.close()


def test_parse_ack_accepts_only_safe_positive_integers() -> None:
    """Ids are positive integers a JavaScript client can send exactly; bools, floats, strings, huge numbers are not."""
    assert parse_ack(7) == 7
    for junk in (0, -1, 2**53, True, 1.0, "7", None, [7], {"ack": 7}):
        assert parse_ack(junk) is None


def test_acknowledgement_counts_once_for_the_socket_it_was_asked_of() -> None:
    """An ack counts once, for the sid asked, within the window; repeats, other sids and late ones are dropped."""
    reg = CollectorRegistry()
    hist = DeliveryHistogram("a_seconds", "test", reg)
    wall, mono = [50.0], [0.0]
    acks = AckSampler(0.5, hist, clock=lambda: wall[0], monotonic=lambda: mono[0])
    ack_id = acks.ask(49.8, 0, 0, "sid-a", 0)
    assert acks.ask(49.8, 0, ack_id, "sid-b", 1) == ack_id  # the same fan-out: the same id
    assert acks.acknowledge("sid-c", ack_id) == ACK_UNKNOWN
    assert acks.acknowledge("sid-a", "x") == ACK_INVALID
    assert acks.acknowledge("sid-a", ack_id) is None
    assert acks.acknowledge("sid-a", ack_id) == ACK_UNKNOWN
    assert abs(hist.sums[delivery_label("http", "websocket")] - 0.2) < 1e-9
    mono[0] = WINDOW + 1
    assert acks.acknowledge("sid-b", ack_id) == ACK_UNKNOWN


def test_countdown_samples_each_delivery_at_the_rate() -> None:
    """The geometric countdown picks deliveries at the configured rate (mean gap 1/rate); 0 turns sampling off."""
    hist = DeliveryHistogram("c_seconds", "test", CollectorRegistry())
    acks = AckSampler(0.01, hist, rng=random.Random(15))
    gaps = [acks.countdown() for _ in range(20_000)]
    assert min(gaps) >= 1
    assert 95 <= sum(gaps) / len(gaps) <= 105
    assert AckSampler(0.0, hist).countdown() == 0 and AckSampler(1.0, hist).countdown() == 1


def test_bus_carries_the_source_and_still_decodes_older_messages() -> None:
    """The source travels over the cluster bus; a message from a node that predates it decodes with source ""."""
    message = Message("ch", "E", {"a": 1}, None, None, 12.5, source="pusher")
    decoded = bus.decode("- " + bus.encode(message))
    assert decoded is not None and decoded.source == "pusher" and decoded.accepted_at == 12.5
    old = bus.decode('- {"c":"ch","e":"E","d":1,"x":null,"t":3.0}')
    assert old is not None and old.source == ""
