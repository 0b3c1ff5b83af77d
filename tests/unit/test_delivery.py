"""LocalDelivery (publish/delivery.py): which channels this node serves, so the cluster bus may skip the others."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry

from realtime_sio import metrics as metrics_module
from realtime_sio.publish.broadcaster import Message
from realtime_sio.publish.delivery import LocalDelivery


class Rooms:
    """A fan-out with fixed occupied rooms, recording what it was asked to deliver."""

    def __init__(self, occupied: set[str]) -> None:
        self.occupied = occupied
        self.delivered: list[Any] = []

    def fanout(self, event: str, data: Any, namespace: str, room: Any, skip_sid: Any, stamp: Any = None) -> int:
        self.delivered.append(room)
        return 1 if room in self.occupied else 0

    def has_members(self, namespace: str, room: str) -> bool:
        return room in self.occupied


def delivery(occupied: set[str], pusher: set[str] | None = None) -> LocalDelivery:
    return LocalDelivery(
        Rooms(occupied),
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
