"""Translation of internal events for Pusher clients (pusher/hub.py)."""

from __future__ import annotations

import json

from realtime_sio.publish.broadcaster import Message
from realtime_sio.pusher.hub import is_cache_channel, translate


def decoded(message: Message) -> dict[str, object] | None:
    text = translate(message)
    return None if text is None else json.loads(text)


def test_presence_signals_become_member_events() -> None:
    """presence:joining/leaving become pusher_internal:member_added/removed; other presence signals are not sent."""
    joining = Message("presence-a", "presence:joining", {"user_id": 1, "user_info": {"n": "A"}})
    assert decoded(joining) == {"event": "pusher_internal:member_added", "channel": "presence-a", "data": '{"user_id":1,"user_info":{"n":"A"}}'}
    leaving = Message("presence-a", "presence:leaving", {"user_id": 1, "user_info": {"n": "A"}})
    assert decoded(leaving) == {"event": "pusher_internal:member_removed", "channel": "presence-a", "data": '{"user_id":1}'}
    assert translate(Message("presence-a", "presence:subscribed", {"user_id": 1})) is None
    assert translate(Message("presence-a", "presence:joining", "garbage")) is None


def test_events_and_whispers() -> None:
    """Server events get JSON-string data and no position; whispers keep their data and carry user_id when known."""
    recorded = Message("c", "E", {"a": 1}, position="1-0@ep")
    assert decoded(recorded) == {"event": "E", "channel": "c", "data": '{"a":1}'}
    whisper = Message("presence-a", "client-typing", {"x": 1}, except_sid="1.2", user_id="7")
    assert decoded(whisper) == {"event": "client-typing", "channel": "presence-a", "data": {"x": 1}, "user_id": "7"}


def test_cache_channels() -> None:
    for name in ("cache-a", "private-cache-a", "presence-cache-a", "private-encrypted-cache-a"):
        assert is_cache_channel(name)
    for name in ("a", "private-a", "presence-a", "cachea"):
        assert not is_cache_channel(name)
