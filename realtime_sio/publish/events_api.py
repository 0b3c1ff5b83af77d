"""``POST /api/v1/events``: the sidecar route Laravel (or any backend) calls to emit ``(event, channel, data)``.

Authenticated with ``Authorization: Bearer <REALTIME_SIO_API_KEY>`` (constant-time comparison). Body
``{"channel" | "channels": [...], "event", "data", "socket_id"?, "id"?}``; ``socket_id`` is excluded (Laravel's
toOthers). ``id`` (or an ``Idempotency-Key`` header) makes a retried request deliver each channel at most once
cluster-wide within ``HISTORY_SECONDS``: a publish that timed out after Redis ran it is answered 503, and the
queue's retry must not deliver it twice (issue 11).
Errors are JSON ``{"error": {code, message, retryable, detail?}}`` with the catalogue's status; nothing is emitted
unless the whole request is valid. 503 when delivery cannot be guaranteed (Redis down in a cluster).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from realtime_sio import errors, logs
from realtime_sio.channels import is_valid_name
from realtime_sio.errors import ErrorCode, RealtimeError
from realtime_sio.event_names import is_reserved
from realtime_sio.metrics import Metrics
from realtime_sio.publish.broadcaster import Broadcaster, Message

log = logs.get(__name__)

MAX_CHANNELS = 100
MAX_EVENT_NAME = 200
MAX_IDEMPOTENCY_KEY = 200
IDEMPOTENCY_HEADER = "Idempotency-Key"
# The 503 detail when the transport failed: a pipeline that broke midway may have run some of its scripts.
UNCONFIRMED = "none of the {} channels confirmed (some may have been delivered; an idempotency key makes the retry safe)"


@dataclass(frozen=True)
class EventRequest:
    channels: tuple[str, ...]
    event: str
    data: Any
    socket_id: str | None
    idempotency_key: str | None = None


def _idempotency_key(value: object, where: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not 0 < len(value) <= MAX_IDEMPOTENCY_KEY or not value.isprintable() or not value.isascii():
        raise RealtimeError(errors.API_BODY_INVALID, f"{where} must be 1-{MAX_IDEMPOTENCY_KEY} printable ASCII characters")
    return value


def once_key_maker(prefix: str) -> Callable[[str, str], str]:
    """``(idempotency key, channel) -> once key`` in the cluster's key space: one claim per key and channel, so a
    retry after a partial failure publishes the channels that were missed and only those."""

    def make(key: str, channel: str) -> str:
        digest = hashlib.sha256(key.encode() + b"\0" + channel.encode()).hexdigest()
        return f"{prefix}:idem:{digest}"

    return make


def error_response(error: ErrorCode, detail: str | None = None) -> web.Response:
    """The JSON error body every publish route answers with."""
    return web.json_response({"error": error.payload(detail)}, status=error.status)


async def read_body(request: web.Request, limit: int) -> bytes:
    """The raw body, or ``RealtimeError(payload_too_large)`` past ``limit`` bytes (checked before reading it all).

    The body middleware (request_bodies.py) has already read it under BODY_TIMEOUT; ``read()`` returns that copy.
    """
    if request.content_length is not None and request.content_length > limit:
        raise RealtimeError(errors.API_PAYLOAD_TOO_LARGE, f"limit is {limit} bytes")
    try:
        body = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise RealtimeError(errors.API_PAYLOAD_TOO_LARGE, f"limit is {limit} bytes") from None
    if len(body) > limit:
        raise RealtimeError(errors.API_PAYLOAD_TOO_LARGE, f"limit is {limit} bytes")
    return body


def parse_event_request(body: bytes, max_channel_length: int, header_key: str | None = None) -> EventRequest:
    """Validate the JSON body (and an ``Idempotency-Key`` header); raises ``RealtimeError(body_invalid)`` naming the
    first problem."""
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise RealtimeError(errors.API_BODY_INVALID, "body is not JSON") from None
    if not isinstance(doc, dict):
        raise RealtimeError(errors.API_BODY_INVALID, "body must be a JSON object")
    if "channel" in doc and "channels" in doc:
        raise RealtimeError(errors.API_BODY_INVALID, "give channel or channels, not both")
    raw = [doc["channel"]] if "channel" in doc else doc.get("channels")
    if not isinstance(raw, list) or not raw:
        raise RealtimeError(errors.API_BODY_INVALID, "channel (string) or channels (non-empty list) is required")
    if len(raw) > MAX_CHANNELS:
        raise RealtimeError(errors.API_BODY_INVALID, f"at most {MAX_CHANNELS} channels")
    for channel in raw:
        if not is_valid_name(channel, max_channel_length):
            raise RealtimeError(errors.API_BODY_INVALID, f"invalid channel name {str(channel)[:80]!r}")
    event = doc.get("event")
    if not isinstance(event, str) or not event or len(event) > MAX_EVENT_NAME:
        raise RealtimeError(errors.API_BODY_INVALID, f"event must be a non-empty string of at most {MAX_EVENT_NAME} characters")
    if is_reserved(event):
        raise RealtimeError(errors.API_EVENT_RESERVED, f"event {event!r} is reserved")
    socket_id = doc.get("socket_id")
    if socket_id is not None and not isinstance(socket_id, str):
        raise RealtimeError(errors.API_BODY_INVALID, "socket_id must be a string")
    key = _idempotency_key(doc.get("id"), "id")
    header = _idempotency_key(header_key, IDEMPOTENCY_HEADER)
    if key is not None and header is not None and key != header:
        raise RealtimeError(errors.API_BODY_INVALID, f"id and the {IDEMPOTENCY_HEADER} header differ")
    return EventRequest(tuple(dict.fromkeys(raw)), event, doc.get("data"), socket_id or None, key or header)


def bearer_ok(request: web.Request, api_key: str | None) -> bool:
    """True when the request carries ``Authorization: Bearer <api_key>`` (constant-time)."""
    if not api_key:
        return False
    header = request.headers.get("Authorization", "")
    if header[:7].lower() != "bearer ":
        return False
    # A header that is not UTF-8 arrives with lone surrogates: encode them back rather than raise (a 500).
    return hmac.compare_digest(header[7:].strip().encode("utf-8", "surrogateescape"), api_key.encode())


def routes(
    broadcaster: Broadcaster,
    metrics: Metrics,
    api_key: str | None,
    max_body: int,
    max_channel_length: int,
    once_key: Callable[[str, str], str],
) -> list[web.RouteDef]:
    """The sidecar route bound to its collaborators."""
    counters: dict[str, Any] = {}  # counters[status] = the route's request counter for that status (labels() once)

    async def post_events(request: web.Request) -> web.Response:
        status_label = "200"
        try:
            if not bearer_ok(request, api_key):
                detail = None if api_key else "REALTIME_SIO_API_KEY is not configured on this server"
                raise RealtimeError(errors.API_UNAUTHORIZED, detail)
            header_key = request.headers.get(IDEMPOTENCY_HEADER)
            req = parse_event_request(await read_body(request, max_body), max_channel_length, header_key)
            accepted = time.time()
            batch = [
                (
                    Message(channel, req.event, req.data, req.socket_id, None, accepted, source="http"),
                    None if req.idempotency_key is None else once_key(req.idempotency_key, channel),
                )
                for channel in req.channels
            ]
            try:  # every channel in one transport call: one Redis round trip for the whole request
                results = await broadcaster.publish_batch(batch, source="http")
            except Exception as exc:  # noqa: BLE001 - transport failure: tell the publisher to retry
                log.warning("publish_failed", route="events", error=type(exc).__name__, channels=len(batch))
                raise RealtimeError(errors.API_UNAVAILABLE, UNCONFIRMED.format(len(batch))) from None
            positions: dict[str, str | None] = {}
            duplicates: list[str] = []
            for channel, position in zip(req.channels, results, strict=True):
                if position is False:
                    duplicates.append(channel)  # delivered before under this idempotency key
                else:
                    positions[channel] = position
            answer: dict[str, Any] = {"ok": True, "channels": len(req.channels), "positions": positions}
            if duplicates:
                answer["duplicates"] = duplicates
                log.info("publish_duplicate_ignored", route="events", channels=len(duplicates))
            return web.json_response(answer)
        except RealtimeError as exc:
            status_label = str(exc.error.status)
            if exc.error is not errors.API_UNAVAILABLE:
                log.info("api_request_rejected", route="events", code=exc.error.code)
            return error_response(exc.error, exc.detail)
        finally:
            counter = counters.get(status_label)
            if counter is None:
                counter = counters[status_label] = metrics.api_requests.labels(route="events", status=status_label)
            counter.inc()

    return [web.post("/api/v1/events", post_events)]
