"""Parse one message of Laravel's Redis broadcaster (``{"event","data","socket"}`` on ``<prefix><channel>``); pure.

``RedisBroadcaster::broadcast`` publishes ``json_encode(['event' => $event, 'data' => $payload, 'socket' => $socket])``
on every channel name prefixed with ``database.redis.options.prefix`` (laravel-echo-protocol.md §3.1). ``data``
usually still holds a ``socket`` key of its own: it is left as is, Echo clients see what Laravel sent.
Anything else is a :class:`Rejected` with one reason from :data:`REASONS` (the metric label set).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal, get_args

from realtime_sio.channels import is_valid_name
from realtime_sio.event_names import is_reserved

RejectReason = Literal[
    "too_large",
    "not_json",
    "not_object",
    "event_invalid",
    "event_reserved",
    "data_missing",
    "socket_invalid",
    "channel_invalid",
    "publish_failed",
]
# Every value the redis_messages_rejected{reason} label can take (the last one is set by the listener).
REASONS: tuple[RejectReason, ...] = get_args(RejectReason)
MAX_EVENT_NAME = 200
MAX_SOCKET_ID = 256
PREVIEW_BYTES = 48  # how much of a rejected payload a log line may show


@dataclass(frozen=True)
class LaravelMessage:
    """One broadcast to deliver: ``except_sid`` is the ``X-Socket-Id`` of a ``toOthers()`` call, if any."""

    channel: str
    event: str
    data: Any
    except_sid: str | None


class Rejected(Exception):
    """A message that is not a valid Laravel broadcast; ``reason`` is a metric label."""

    def __init__(self, reason: RejectReason, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason: RejectReason = reason
        self.detail = detail


def strip_prefix(raw_channel: bytes | str, prefix: str) -> str:
    """The channel name without Laravel's Redis prefix; raises ``Rejected(channel_invalid)``."""
    try:
        name = raw_channel.decode("utf-8") if isinstance(raw_channel, bytes) else raw_channel
    except UnicodeDecodeError:
        raise Rejected("channel_invalid", "channel name is not UTF-8") from None
    if not name.startswith(prefix):
        raise Rejected("channel_invalid", "channel name lacks the configured prefix")
    return name[len(prefix) :]


def parse(raw_channel: bytes | str, payload: bytes | str, prefix: str, max_bytes: int, max_channel_length: int) -> LaravelMessage:
    """Validate one pub/sub message; returns the broadcast or raises :class:`Rejected`."""
    size = len(payload)
    if size > max_bytes:
        raise Rejected("too_large", f"{size} bytes, limit {max_bytes}")
    channel = strip_prefix(raw_channel, prefix)
    if not is_valid_name(channel, max_channel_length):
        raise Rejected("channel_invalid", f"not a valid channel name (at most {max_channel_length} of A-Z a-z 0-9 _-=@,.;:)")
    try:
        doc = json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        raise Rejected("not_json", "payload is not JSON") from None
    if not isinstance(doc, dict):
        raise Rejected("not_object", f"payload is a JSON {type(doc).__name__}, expected an object")
    event = doc.get("event")
    if not isinstance(event, str) or not event or len(event) > MAX_EVENT_NAME:
        raise Rejected("event_invalid", f"event must be a non-empty string of at most {MAX_EVENT_NAME} characters")
    if is_reserved(event):
        raise Rejected("event_reserved", f"event {event!r} is reserved by Socket.IO clients")
    if "data" not in doc:
        raise Rejected("data_missing", "payload has no data key")
    socket = doc.get("socket")
    if socket is not None and (not isinstance(socket, str) or len(socket) > MAX_SOCKET_ID):
        raise Rejected("socket_invalid", "socket must be a string socket id or null")
    return LaravelMessage(channel=channel, event=event, data=doc["data"], except_sid=socket or None)


def preview(payload: bytes | str) -> str:
    """A short, printable prefix of a payload for a log line (never the whole message)."""
    raw = payload if isinstance(payload, bytes) else payload.encode("utf-8", "replace")
    return raw[:PREVIEW_BYTES].decode("utf-8", "replace")


def pattern_for(prefix: str) -> str:
    """The PSUBSCRIBE pattern matching every channel under ``prefix``, glob characters escaped."""
    escaped = "".join("\\" + ch if ch in "\\*?[]^" else ch for ch in prefix)
    return escaped + "*"
