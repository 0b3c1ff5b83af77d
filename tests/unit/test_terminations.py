"""User terminations (publish/terminations.py): the signal's shape, and LocalDelivery handing it to its handler."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry

from realtime_sio import metrics as metrics_module
from realtime_sio.publish import terminations
from realtime_sio.publish.broadcaster import Message
from realtime_sio.publish.delivery import LocalDelivery


class RecordingFanout:
    def __init__(self) -> None:
        self.rooms: list[Any] = []

    def fanout(self, event: str, data: Any, namespace: str, room: Any, skip_sid: Any, stamp: Any = None) -> int:
        self.rooms.append(room)
        return 0

    def prepare(self, event: str, data: Any, namespace: str, room: Any, skip_sid: Any, stamp: Any = None) -> Any:
        return (event, data, namespace, room, skip_sid, stamp)

    def send(self, prepared: Any) -> int:
        return self.fanout(*prepared)

    def has_members(self, namespace: str, room: str) -> bool:
        return False


def test_target_reads_app_and_user() -> None:
    """A termination names an app id and a non-empty user id; anything else is ignored, never raised on."""
    ok = Message(terminations.CHANNEL, terminations.EVENT, {"app_id": "app-1", "user_id": "5"})
    assert terminations.target(ok) == ("app-1", "5")
    for data in (None, [], {"app_id": "a"}, {"app_id": "a", "user_id": ""}, {"app_id": 1, "user_id": "5"}):
        assert terminations.target(Message(terminations.CHANNEL, terminations.EVENT, data)) is None
    assert terminations.target(Message(terminations.CHANNEL, "other", ok.data)) is None


def test_internal_channels_never_reach_fanout() -> None:
    """A "#" channel goes to its control handler (or nowhere), never to a room; other channels fan out as before."""
    fanout = RecordingFanout()
    handled: list[Message] = []
    delivery = LocalDelivery(fanout, metrics_module.create(CollectorRegistry()), controls={terminations.CHANNEL: handled.append})
    signal = Message(terminations.CHANNEL, terminations.EVENT, {"app_id": "a", "user_id": "5"})
    assert delivery.deliver(signal) == 0
    assert delivery.deliver(Message("#unknown", "x", {})) == 0
    delivery.deliver(Message("orders", "Shipped", {}))
    assert handled == [signal]
    assert fanout.rooms == ["orders"]
