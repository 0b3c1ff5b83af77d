"""Pusher HTTP API request signatures (pusher-reverb-soketi.md §4): sign, and verify a request; pure, no I/O.

String to sign: ``METHOD\\npath\\nquery``, where the query is every parameter except ``auth_signature``, keys
lowercased, sorted, joined as ``k=v`` with ``&`` and not URL-escaped. Signature: lowercase hex HMAC-SHA256 with the
app secret. On verification ``body_md5`` is recomputed from the raw body whenever the body is non-empty (as Reverb
does), so the signature covers the body; ``auth_timestamp`` must lie within ``window`` seconds of ``now``, which
Pusher enforces and Reverb/Soketi do not.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable, Mapping

from realtime_sio import errors
from realtime_sio.errors import RealtimeError

AUTH_VERSION = "1.0"
RESERVED = frozenset({"auth_key", "auth_timestamp", "auth_version", "body_md5", "auth_signature"})
_TIMESTAMP = re.compile(r"[0-9]{1,12}")  # ASCII digits: str.isdigit() accepts "²", which int() refuses


def _raw(text: str) -> bytes:
    # Query values may hold lone surrogates (undecodable percent-escapes): compare bytes, never raise.
    return text.encode("utf-8", "surrogateescape")


def body_md5(body: bytes) -> str:
    """Lowercase hex MD5 of the raw body."""
    return hashlib.md5(body, usedforsecurity=False).hexdigest()


def string_to_sign(method: str, path: str, params: Mapping[str, str]) -> str:
    """``METHOD\\npath\\nk=v&...``: keys lowercased and sorted, ``auth_signature`` left out, nothing escaped."""
    lowered = {k.lower(): v for k, v in params.items() if k.lower() != "auth_signature"}
    query = "&".join(f"{k}={lowered[k]}" for k in sorted(lowered))
    return f"{method.upper()}\n{path}\n{query}"


def sign(secret: str, method: str, path: str, params: Mapping[str, str]) -> str:
    """Lowercase hex HMAC-SHA256 of :func:`string_to_sign` with ``secret``."""
    return hmac.new(secret.encode(), _raw(string_to_sign(method, path, params)), hashlib.sha256).hexdigest()


def signed_params(
    key: str, secret: str, method: str, path: str, body: bytes = b"", timestamp: int = 0, params: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The full query (``params`` + ``auth_*`` + ``body_md5`` + ``auth_signature``) a Pusher client would send."""
    query = dict(params or {})
    query.update(auth_key=key, auth_timestamp=str(timestamp), auth_version=AUTH_VERSION)
    if body:
        query["body_md5"] = body_md5(body)
    query["auth_signature"] = sign(secret, method, path, query)
    return query


def _lowered(query: Iterable[tuple[str, str]]) -> dict[str, str]:
    # Repeated keys are joined with commas, as Reverb does for array parameters.
    params: dict[str, str] = {}
    for key, value in query:
        k = key.lower()
        params[k] = f"{params[k]},{value}" if k in params else value
    return params


def verify(
    *,
    key: str,
    secret: str,
    method: str,
    paths: Iterable[str],
    query: Iterable[tuple[str, str]],
    body: bytes,
    now: float,
    window: int,
) -> None:
    """Check a request's ``auth_*`` parameters against one app; returns None or raises :class:`RealtimeError`.

    ``paths`` are the path spellings the signer may have used (raw first, then decoded); one must verify.
    ``window`` 0 turns the timestamp check off. Codes: ``unauthorized`` (missing/wrong ``auth_key``),
    ``timestamp_expired``, ``signature_invalid`` (anything else).
    """
    params = _lowered(query)
    signature = params.pop("auth_signature", None)
    if not signature:
        raise RealtimeError(errors.API_SIGNATURE_INVALID, "auth_signature is missing")
    given_key = params.get("auth_key")
    if given_key is None or not hmac.compare_digest(_raw(given_key), key.encode()):
        raise RealtimeError(errors.API_UNAUTHORIZED, "auth_key is missing or does not belong to this app")
    if params.get("auth_version") != AUTH_VERSION:
        raise RealtimeError(errors.API_SIGNATURE_INVALID, f"auth_version must be {AUTH_VERSION}")
    raw_ts = params.get("auth_timestamp", "")
    if _TIMESTAMP.fullmatch(raw_ts) is None:
        raise RealtimeError(errors.API_SIGNATURE_INVALID, "auth_timestamp must be Unix seconds")
    if window and abs(now - int(raw_ts)) > window:
        raise RealtimeError(errors.API_TIMESTAMP_EXPIRED, f"auth_timestamp is more than {window} s from server time")
    if body:
        computed = body_md5(body)
        given = params.get("body_md5")
        params["body_md5"] = computed
        if given is None or not hmac.compare_digest(_raw(given), computed.encode()):
            raise RealtimeError(errors.API_SIGNATURE_INVALID, "body_md5 is missing or does not match the body")
    for path in dict.fromkeys(paths):
        expected = sign(secret, method, path, params)
        if hmac.compare_digest(expected.encode(), _raw(signature)):
            return
    raise RealtimeError(errors.API_SIGNATURE_INVALID)


# -- channel subscriptions (pusher-reverb-soketi.md §5) ----------------------------------------------------------------


def channel_string(socket_id: str, channel: str, channel_data: str | None = None) -> str:
    """``socket_id:channel`` (private) or ``socket_id:channel:channel_data`` (presence, the exact string sent)."""
    return f"{socket_id}:{channel}" if channel_data is None else f"{socket_id}:{channel}:{channel_data}"


def channel_auth(key: str, secret: str, socket_id: str, channel: str, channel_data: str | None = None) -> str:
    """The ``auth`` value Laravel's ``/broadcasting/auth`` returns: ``key:hex HMAC-SHA256(secret, string)``."""
    digest = hmac.new(secret.encode(), _raw(channel_string(socket_id, channel, channel_data)), hashlib.sha256).hexdigest()
    return f"{key}:{digest}"


def channel_auth_valid(key: str, secret: str, socket_id: str, channel: str, auth: object, channel_data: str | None = None) -> bool:
    """True when ``auth`` is this app's signature of the subscription; the whole ``key:signature`` string is compared
    in constant time (Soketi compares the whole string too; Reverb only the part after ``:``)."""
    if not isinstance(auth, str) or len(auth) > 512:
        return False
    expected = channel_auth(key, secret, socket_id, channel, channel_data)
    return hmac.compare_digest(expected.encode(), _raw(auth))


def user_auth(key: str, secret: str, socket_id: str, user_data: str) -> str:
    """The ``auth`` of a ``pusher:signin`` (user authentication): ``key:hex HMAC-SHA256(secret,
    "<socket_id>::user::<user_data>")``, with ``user_data`` the exact JSON string the client sends."""
    digest = hmac.new(secret.encode(), _raw(f"{socket_id}::user::{user_data}"), hashlib.sha256).hexdigest()
    return f"{key}:{digest}"


def user_auth_valid(key: str, secret: str, socket_id: str, user_data: str, auth: object) -> bool:
    """True when ``auth`` is this app's signature of ``user_data`` for this socket (constant-time compare)."""
    if not isinstance(auth, str) or len(auth) > 512:
        return False
    return hmac.compare_digest(user_auth(key, secret, socket_id, user_data).encode(), _raw(auth))
