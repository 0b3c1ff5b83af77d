"""LocalDelivery (publish/delivery.py): which channels this node serves (the cluster bus skips the others), and replay
floors that keep a late live copy of a replayed event from reaching a socket twice."""

from __future__ import annotations

import time
from typing import Any

from prometheus_client import CollectorRegistry

from realtime_sio import metrics as metrics_module
from realtime_sio.publish import delivery as delivery_module
from realtime_sio.publish.broadcaster import Message
from realtime_sio.publish.delivery import LocalDelivery


class Rooms:
    """A fan-out with fixed occupied rooms, recording what it was asked to deliver."""

    def __init__(self, occupied: set[str]) -> None:
        self.occupied = occupied
        self.delivered: list[Any] = []
        self.skipped: list[set[str]] = []

    def fanout(self, event: str, data: Any, namespace: str, room: Any, skip_sid: Any, stamp: Any = None) -> int:
        self.delivered.append(room)
        self.skipped.append({s for s in (skip_sid if isinstance(skip_sid, list) else [skip_sid]) if s})
        return 1 if room in self.occupied else 0

    def prepare(self, event: str, data: Any, namespace: str, room: Any, skip_sid: Any, stamp: Any = None) -> Any:
        return (event, data, namespace, room, skip_sid, stamp)

    def send(self, prepared: Any) -> int:
        return self.fanout(*prepared)

    def has_members(self, namespace: str, room: str) -> bool:
        return room in self.occupied


def delivery(occupied: set[str], pusher: set[str] | None = None, rooms: Rooms | None = None) -> LocalDelivery:
    return LocalDelivery(
        rooms or Rooms(occupied),
        metrics_module.create(CollectorRegistry()),
        also=(lambda m: 0) if pusher is not None else None,
        controls={"#signals": lambda m: None},
        also_serves=pusher.__contains__ if pusher is not None else None,
    )


def test_serves_channels_with_a_socket_a_pusher_subscriber_or_a_control_handler() -> None:
    """A room with a local socket, a Pusher subscription and a control channel are served; other channels are not."""
    local = delivery({"orders"}, pusher={"private-chat.1"})
    assert local.serves("orders")
    assert local.serves("private-chat.1")
    assert local.serves("#signals")
    assert not local.serves("private-user.7")


def test_a_socket_at_its_recovery_gate_makes_the_channel_served() -> None:
    """A socket that opened its gate but has not entered the room yet must still get the channel's live events."""
    local = delivery(set())
    held = local.hold("news", "sid-1")
    assert local.serves("news")
    local.deliver(Message("news", "E", 1, position="1-0"))
    assert [m.data for m in held] == [1]
    local.release("news", "sid-1")
    assert not local.serves("news")


def test_a_late_live_copy_at_or_below_a_replay_floor_skips_that_socket_only() -> None:
    """After a replay up to 5-0, a live copy of 4-0 or 5-0 skips that socket (it has it), not the others; 6-0 reaches
    it and ends the floor, so a later 5-0 (never sent again by the bus) would not be filtered any more."""
    rooms = Rooms({"news"})
    local = delivery(set(), rooms=rooms)
    local.hold("news", "sid-1")
    local.release("news", "sid-1", floor=(5, 0))
    local.deliver(Message("news", "E", 4, position="4-0@ep"))
    local.deliver(Message("news", "E", 5, position="5-0@ep", except_sid="sid-9"))
    local.deliver(Message("news", "E", 6, position="6-0@ep"))
    local.deliver(Message("news", "E", 7, position="7-0@ep"))
    assert rooms.skipped == [{"sid-1"}, {"sid-1", "sid-9"}, set(), set()]


def test_a_socket_that_goes_away_leaves_no_floor() -> None:
    """forget(sid) drops the floors of a disconnected socket: a new socket with the same id is not filtered."""
    rooms = Rooms({"news"})
    local = delivery(set(), rooms=rooms)
    local.release("news", "sid-1", floor=(5, 0))
    local.forget("sid-1")
    local.deliver(Message("news", "E", 4, position="4-0@ep"))
    assert rooms.skipped == [set()]


def test_an_expired_floor_filters_nothing(monkeypatch: Any) -> None:
    """A floor no live event passed within FLOOR_SECONDS ends (positions after a Redis data loss may start lower)."""
    rooms = Rooms({"news"})
    local = delivery(set(), rooms=rooms)
    local.release("news", "sid-1", floor=(5, 0))
    now = time.monotonic()
    monkeypatch.setattr(delivery_module.time, "monotonic", lambda: now + delivery_module.FLOOR_SECONDS + 1)
    local.deliver(Message("news", "E", 4, position="4-0@ep"))
    assert rooms.skipped == [set()]


class Ordered(Rooms):
    """Rooms that also log each prepare and send, in order, as (step, room)."""

    def __init__(self, occupied: set[str], log: list[tuple[str, str]]) -> None:
        super().__init__(occupied)
        self.log = log

    def prepare(self, event: str, data: Any, namespace: str, room: Any, skip_sid: Any, stamp: Any = None) -> Any:
        self.log.append(("prepare", room))
        return super().prepare(event, data, namespace, room, skip_sid, stamp)

    def send(self, prepared: Any) -> int:
        self.log.append(("send", prepared[3]))
        return super().send(prepared)


def test_a_batch_is_encoded_before_its_first_write_and_a_control_signal_ends_it() -> None:
    """deliver_all prepares every event of a batch before sending the first (in order), and sends the events before a
    control signal before its handler runs; the deliveries of the batch are counted once, in all."""
    log: list[tuple[str, str]] = []
    metrics = metrics_module.create(CollectorRegistry())
    controls = {"#signals": lambda m: log.append(("control", m.channel))}
    local = LocalDelivery(Ordered({"a", "b", "c"}, log), metrics, controls=controls)
    batch = [Message("a", "E", 1), Message("b", "E", 2), Message("#signals", "S", {}), Message("c", "E", 3)]
    assert local.deliver_all(batch) == 3
    assert log == [("prepare", "a"), ("prepare", "b"), ("send", "a"), ("send", "b"), ("control", "#signals"),
                   ("prepare", "c"), ("send", "c")]
    assert metrics.registry.get_sample_value("realtime_sio_messages_delivered_total") == 3


def test_a_long_batch_is_written_in_parts_of_batch_events() -> None:
    """No event waits for more than BATCH_EVENTS encodings before its write: a longer batch goes out in parts, in order."""
    log: list[tuple[str, str]] = []
    n = delivery_module.BATCH_EVENTS
    local = LocalDelivery(Ordered({"a"}, log), metrics_module.create(CollectorRegistry()))
    assert local.deliver_all([Message("a", "E", i) for i in range(n + 1)]) == n + 1
    assert [step for step, _ in log] == ["prepare"] * n + ["send"] * n + ["prepare", "send"]
