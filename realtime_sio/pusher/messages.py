"""Pusher Channels protocol 7 messages: parse what a client sends, encode what the server sends; pure, no I/O.

Wire shape (pusher-reverb-soketi.md §7, pusher-js 8): every WebSocket text message is a JSON object
``{"event", "channel"?, "data"?}``. The server sends ``data`` of its own events as a JSON *string* (pusher-js parses
it again), except ``pusher:error`` whose data is an object, as Pusher and Reverb send it. Client events
(``client-*``) are relayed with ``data`` as the client sent it, as Reverb does.

The codes are Pusher's (4000-4099: the client does not reconnect; 4100-4199: it reconnects after a back-off;
4200-4299: it reconnects at once; 4301: client event refused); docs/errors.md lists when each is sent.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from realtime_sio.engine.frames import OP_TEXT, frame

# -- codes ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PusherError:
    """One ``pusher:error`` the server sends: Pusher's code and a human message."""

    code: int
    message: str
    reason: str  # the bad-input metric's label and log reason (a closed set: these constants)


UNKNOWN_APP = PusherError(4001, "Application does not exist", "pusher_unknown_app")
UNSUPPORTED_PROTOCOL = PusherError(4007, "Unsupported protocol version", "pusher_unsupported_protocol")
UNAUTHORIZED = PusherError(4009, "Connection is unauthorized", "pusher_bad_signature")
ORIGIN_NOT_ALLOWED = PusherError(4009, "Origin not allowed", "pusher_origin_not_allowed")
INVALID_CHANNEL = PusherError(4009, "Invalid channel name", "pusher_invalid_channel")
BAD_CHANNEL_DATA = PusherError(4009, "Presence channel_data must be a JSON object with a user_id", "pusher_bad_channel_data")
NOT_A_MEMBER = PusherError(4009, "The client is not a member of the specified channel", "pusher_client_event_not_member")
CLIENT_EVENTS_PRIVATE_ONLY = PusherError(
    4009, "Client events are only allowed on private and presence channels", "pusher_client_event_public_channel"
)
BAD_SIGNIN = PusherError(4009, "Invalid signin: a signed user_data JSON object with a non-empty string id", "pusher_bad_signin")
TERMINATED = PusherError(4009, "User connection terminated", "pusher_user_terminated")
OVER_CAPACITY = PusherError(4100, "Over capacity", "pusher_over_capacity")
UNAVAILABLE = PusherError(4100, "Presence is unavailable right now; retry", "pusher_presence_unavailable")
RECONNECT = PusherError(4200, "Server is shutting down; reconnect", "pusher_draining")
INVALID_MESSAGE = PusherError(4200, "Invalid message format", "pusher_invalid_message")
PONG_TIMEOUT = PusherError(4201, "Pong reply not received in time", "pusher_pong_timeout")
RATE_LIMITED = PusherError(4301, "Rate limit exceeded", "pusher_rate_limited")
TOO_MANY_CHANNELS = PusherError(4301, "Too many channels subscribed on this connection", "pusher_too_many_channels")

ERRORS: tuple[PusherError, ...] = tuple(v for v in globals().values() if isinstance(v, PusherError))

# -- inbound -------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Inbound:
    """One message a client sent: its event name, the channel it names (if any) and its data (any JSON)."""

    event: str
    channel: str | None
    data: Any


@dataclass(frozen=True, slots=True)
class Subscribe:
    """``pusher:subscribe`` data: the channel and, for private/presence channels, the signature and channel_data."""

    channel: str
    auth: str | None
    channel_data: str | None  # presence: the exact JSON string that was signed


def parse(text: str | bytes) -> Inbound | None:
    """A client message, or None when it is not a JSON object with a string ``event`` (answer: INVALID_MESSAGE)."""
    if isinstance(text, bytes):
        return None  # Pusher speaks text frames only
    try:
        doc = json.loads(text)
    except ValueError:
        return None
    if not isinstance(doc, dict):
        return None
    event = doc.get("event")
    if not isinstance(event, str) or not event or len(event) > 200:
        return None
    channel = doc.get("channel")
    return Inbound(event, channel if isinstance(channel, str) else None, doc.get("data"))


def _object(data: Any) -> dict[str, Any] | None:
    """``data`` as an object: pusher-js sends objects; some clients send the object JSON-encoded as a string."""
    if isinstance(data, str) and len(data) < 100_000:
        try:
            data = json.loads(data)
        except ValueError:
            return None
    return data if isinstance(data, dict) else None


def subscribe(data: Any) -> Subscribe | None:
    """``{channel, auth?, channel_data?}`` of a subscribe/unsubscribe, or None when malformed."""
    doc = _object(data)
    if doc is None or not isinstance(doc.get("channel"), str):
        return None
    auth, channel_data = doc.get("auth"), doc.get("channel_data")
    if auth is not None and not isinstance(auth, str):
        return None
    if channel_data is not None and not isinstance(channel_data, str):
        return None
    return Subscribe(doc["channel"], auth, channel_data)


@dataclass(frozen=True, slots=True)
class Signin:
    """``pusher:signin`` data: the signature and the exact ``user_data`` JSON string it signs, with its user id."""

    auth: str
    user_data: str
    user_id: str


def signin(data: Any) -> Signin | None:
    """``{auth, user_data}`` whose ``user_data`` is a JSON object with a non-empty string ``id`` (at most 128
    characters, as presence user ids), or None (pusher-js itself drops a signin whose id is not a string)."""
    doc = _object(data)
    if doc is None:
        return None
    auth, user_data = doc.get("auth"), doc.get("user_data")
    if not isinstance(auth, str) or not isinstance(user_data, str) or len(user_data) > 10_000:
        return None
    try:
        user = json.loads(user_data)
    except ValueError:
        return None
    user_id = user.get("id") if isinstance(user, dict) else None
    if not isinstance(user_id, str) or not user_id or len(user_id) > 128:
        return None
    return Signin(auth, user_data, user_id)


@dataclass(frozen=True, slots=True)
class PresenceData:
    """A presence subscriber's signed ``channel_data``: ``{"user_id", "user_info"?}``."""

    user_id: str | int
    user_info: Any


def presence_data(channel_data: str | None) -> PresenceData | None:
    """The member in ``channel_data``, or None without a string/integer ``user_id`` of at most 128 characters."""
    if channel_data is None:
        return None
    try:
        doc = json.loads(channel_data)
    except ValueError:
        return None
    if not isinstance(doc, dict):
        return None
    user_id = doc.get("user_id")
    if isinstance(user_id, bool) or not isinstance(user_id, (str, int)) or not str(user_id) or len(str(user_id)) > 128:
        return None
    return PresenceData(user_id, doc.get("user_info"))


# -- outbound ------------------------------------------------------------------------------------------------------


def _dumps(doc: Any) -> str:
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False)


def text_frame(text: str) -> bytes:
    """One unmasked WebSocket text frame holding ``text`` (built once, written to every recipient)."""
    return frame(OP_TEXT, text.encode())


def connection_established(socket_id: str, activity_timeout: float) -> str:
    return _dumps(
        {
            "event": "pusher:connection_established",
            "data": _dumps({"socket_id": socket_id, "activity_timeout": int(activity_timeout)}),
        }
    )


def error(err: PusherError) -> str:
    return _dumps({"event": "pusher:error", "data": {"code": err.code, "message": err.message}})


def subscription_error(channel: str, status: int, message: str) -> str:
    """What pusher-js itself raises on a failed auth call, so Echo's ``.error()`` callbacks fire alike."""
    return _dumps(
        {"event": "pusher:subscription_error", "channel": channel, "data": {"type": "AuthError", "error": message, "status": status}}
    )


def subscription_succeeded(channel: str, members: list[tuple[str | int, Any]] | None = None) -> str:
    """``pusher_internal:subscription_succeeded``; presence channels carry ``{presence: {ids, hash, count}}``."""
    data: dict[str, Any] = {}
    if members is not None:
        data["presence"] = {
            "ids": [user_id for user_id, _ in members],
            "hash": {str(user_id): info for user_id, info in members},
            "count": len(members),
        }
    return _dumps({"event": "pusher_internal:subscription_succeeded", "channel": channel, "data": _dumps(data)})


def member_added(channel: str, user_id: str | int, user_info: Any) -> str:
    data = _dumps({"user_id": user_id, "user_info": user_info})
    return _dumps({"event": "pusher_internal:member_added", "channel": channel, "data": data})


def member_removed(channel: str, user_id: str | int) -> str:
    return _dumps({"event": "pusher_internal:member_removed", "channel": channel, "data": _dumps({"user_id": user_id})})


def event(name: str, channel: str, data: Any) -> str:
    """A server event: ``data`` JSON-encoded into a string, as Pusher sends it."""
    return _dumps({"event": name, "channel": channel, "data": _dumps(data)})


def client_event(name: str, channel: str, data: Any, user_id: str | None = None) -> str:
    """A client event (whisper) relayed with its data as sent; ``user_id`` on presence channels."""
    doc: dict[str, Any] = {"event": name, "channel": channel, "data": data}
    if user_id is not None:
        doc["user_id"] = user_id
    return _dumps(doc)


def signin_success(user_data: str) -> str:
    """``pusher:signin_success`` carrying the signed ``user_data`` string back (pusher-js parses it for the id)."""
    return _dumps({"event": "pusher:signin_success", "data": _dumps({"user_data": user_data})})


def cache_miss(channel: str) -> str:
    return _dumps({"event": "pusher:cache_miss", "channel": channel})


PONG = _dumps({"event": "pusher:pong", "data": "{}"})
PING = _dumps({"event": "pusher:ping", "data": "{}"})
