"""Parse what clients send (connect auth, subscribe, client event) into typed values; pure functions.

Anything malformed raises :class:`RealtimeError` with a catalogue code, or returns ``None`` where the protocol
says to drop silently (whispers). Nothing here trusts a type: payloads arrive as arbitrary JSON.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

from realtime_sio import errors
from realtime_sio.auth.tokens import Identity
from realtime_sio.channels import is_valid_name
from realtime_sio.errors import RealtimeError
from realtime_sio.publish.history import Cursor, parse_cursor
from realtime_sio.settings import Settings

MAX_AUTH_HEADERS = 32
MAX_HEADER_BYTES = 8192


@dataclass(frozen=True)
class SubscribeRequest:
    channel: str
    headers: Mapping[str, str]  # Echo's auth.headers, forwarded to /broadcasting/auth
    since: Cursor | None  # recovery position, if the client sent one


@dataclass(frozen=True)
class Whisper:
    channel: str
    event: str
    data: Any


def _bearer(value: object) -> str | None:
    if isinstance(value, str) and value[:7].lower() == "bearer ":
        return value[7:].strip()
    return None


# Every handshake environ entry the connect handler reads (token_from, handshake_cookie, transport_of): python-socketio
# keeps only these for a session's lifetime (sio/server.py sets HookedServer.environ_keys).
CONNECT_ENVIRON_KEYS = frozenset({"HTTP_AUTHORIZATION", "QUERY_STRING", "HTTP_COOKIE", "HTTP_ORIGIN", "HTTP_HOST"})


def token_from(auth: Any, environ: Mapping[str, Any]) -> str | None:
    """The JWT from the handshake: ``auth.token``, Echo's ``auth.headers.Authorization``, the HTTP
    ``Authorization: Bearer`` header, or the ``token`` query parameter, in that order; ``None`` if absent."""
    if isinstance(auth, dict):
        token = auth.get("token")
        if token is not None:
            if not isinstance(token, str):
                raise RealtimeError(errors.TOKEN_MALFORMED, "auth.token must be a string")
            return token
        headers = auth.get("headers")
        if isinstance(headers, dict):
            for key, value in headers.items():
                if isinstance(key, str) and key.lower() == "authorization" and _bearer(value):
                    return _bearer(value)
    header = _bearer(environ.get("HTTP_AUTHORIZATION"))
    if header:
        return header
    query = parse_qs(str(environ.get("QUERY_STRING", "")))
    values = query.get("token")
    return values[0] if values else None


def handshake_cookie(environ: Mapping[str, Any], any_origin: bool) -> str | None:
    """The handshake ``Cookie`` that may be forwarded to Laravel, or ``None``.

    With ``CORS_ORIGINS='*'`` any site may open a socket, and the browser attaches the user's cookies to that
    handshake: a cookie the page never chose is not a credential (issue 11, item 5). So with ``*`` the cookie is
    kept only for same-origin handshakes (``Origin`` names the ``Host`` the request was sent to) and for clients that
    send no ``Origin`` at all (not browsers). With an explicit origin list, those origins are trusted with cookies.
    """
    cookie = environ.get("HTTP_COOKIE")
    if not isinstance(cookie, str) or not cookie:
        return None
    origin = environ.get("HTTP_ORIGIN")
    if not any_origin or origin is None:
        return cookie
    try:
        origin_host = urlsplit(str(origin)).netloc.lower()
    except ValueError:
        return None
    host = str(environ.get("HTTP_HOST", "")).lower()
    return cookie if origin_host and origin_host == host else None


def token_is_echo_header(auth: Any) -> bool:
    """True when :func:`token_from` would take the token from Echo's ``auth.headers`` (no explicit ``auth.token``).

    Echo copies its whole ``auth`` option, subscribe headers included, into the handshake; with delegated auth that
    bearer is usually the app's own credential (a Sanctum or Passport token), not a JWT for this server.
    """
    if not isinstance(auth, dict) or auth.get("token") is not None:
        return False
    headers = auth.get("headers")
    return isinstance(headers, dict) and any(
        isinstance(k, str) and k.lower() == "authorization" and _bearer(v) for k, v in headers.items()
    )


def connect_positions(auth: Any, limit: int) -> dict[str, Cursor]:
    """Recovery positions from ``auth.positions`` = ``{channel: "ms-seq@epoch"}``; raises for a malformed map."""
    if not isinstance(auth, dict) or auth.get("positions") is None:
        return {}
    raw = auth["positions"]
    if not isinstance(raw, dict) or len(raw) > limit:
        raise RealtimeError(errors.POSITIONS_INVALID, f"positions must be an object of at most {limit} channels")
    positions: dict[str, Cursor] = {}
    for channel, value in raw.items():
        parsed = parse_cursor(value)
        if not isinstance(channel, str) or parsed is None:
            raise RealtimeError(errors.POSITIONS_INVALID, "each position must look like \"1700000000000-0@ab12cd34\"")
        positions[channel] = parsed
    return positions


def wants_acks(auth: Any) -> bool:
    """True when the handshake's ``auth.latency`` is ``true``: the client acknowledges sampled deliveries."""
    return isinstance(auth, dict) and auth.get("latency") is True


def channel_hint(data: Any) -> str | None:
    """The channel a payload names, if it names one as a short string (for error replies)."""
    if isinstance(data, dict):
        channel = data.get("channel")
        if isinstance(channel, str):
            return channel[:256]
    return None


def subscribe_request(data: Any, max_length: int) -> SubscribeRequest:
    """Validate ``{channel, auth?: {headers?}, since?}``; raises ``payload_invalid`` / ``channel_invalid``."""
    if not isinstance(data, dict):
        raise RealtimeError(errors.PAYLOAD_INVALID)
    channel = data.get("channel")
    if not is_valid_name(channel, max_length):
        raise RealtimeError(errors.CHANNEL_INVALID, f"at most {max_length} characters of A-Z a-z 0-9 _-=@,.;:")
    assert isinstance(channel, str)
    headers: dict[str, str] = {}
    auth = data.get("auth")
    if isinstance(auth, dict) and isinstance(auth.get("headers"), dict):
        for key, value in list(auth["headers"].items())[:MAX_AUTH_HEADERS]:
            if isinstance(key, str) and isinstance(value, str) and len(key) + len(value) < MAX_HEADER_BYTES:
                headers[key] = value
    since = None
    if data.get("since") is not None:
        since = parse_cursor(data["since"])
        if since is None:
            raise RealtimeError(errors.POSITIONS_INVALID, "since must look like \"1700000000000-0@ab12cd34\"")
    return SubscribeRequest(channel=channel, headers=headers, since=since)


def client_event(data: Any, max_length: int) -> Whisper | None:
    """A whisper ``{channel, event: "client-*", data}`` (object or JSON string); ``None`` if malformed."""
    if isinstance(data, str) and len(data) < 1_000_000:
        try:
            data = json.loads(data)
        except ValueError:
            return None
    if not isinstance(data, dict):
        return None
    channel, event = data.get("channel"), data.get("event")
    if not is_valid_name(channel, max_length) or not isinstance(event, str):
        return None
    if not event.startswith("client-") or len(event) > 200:
        return None
    assert isinstance(channel, str)
    return Whisper(channel=channel, event=event, data=data.get("data"))


def auto_rooms(settings: Settings, identity: Identity) -> Iterator[str]:
    """The user room and one room per role an authenticated socket joins at connect."""
    if identity.user_id is None:
        return
    names = [settings.user_room.replace("{id}", identity.user_id)]
    names += [settings.role_room.replace("{role}", role) for role in sorted(identity.roles)]
    for name in names:
        if is_valid_name(name, settings.max_channel_name_length):
            yield name


def transport_of(environ: Mapping[str, Any]) -> str:
    query = parse_qs(str(environ.get("QUERY_STRING", "")))
    return "websocket" if query.get("transport") == ["websocket"] else "polling"


_REASONS = {"client disconnect", "server disconnect", "ping timeout", "transport close", "transport error"}
DISCONNECT_REASONS = tuple(sorted(r.replace(" ", "_") for r in _REASONS)) + ("other",)  # every disconnect_reason() value


def disconnect_reason(reason: Any) -> str:
    """A closed set of label values for the disconnect metric."""
    text = str(reason).lower().replace("_", " ")
    return text.replace(" ", "_") if text in _REASONS else "other"
