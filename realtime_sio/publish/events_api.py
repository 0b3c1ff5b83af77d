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

import asyncio
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from aiohttp import web

from realtime_sio import errors, logs
from realtime_sio.channels import is_valid_name
from realtime_sio.engine.upgrade_router import Answer, PostHandler, Reply
from realtime_sio.errors import ErrorCode, RealtimeError
from realtime_sio.event_names import is_reserved
from realtime_sio.metrics import Metrics
from realtime_sio.publish.broadcaster import Broadcaster, Message, Results

log = logs.get(__name__)

MAX_CHANNELS = 100
MAX_EVENT_NAME = 200
MAX_IDEMPOTENCY_KEY = 200
IDEMPOTENCY_HEADER = "Idempotency-Key"
EVENTS_PATH = "/api/v1/events"
JSON_HEADERS = [("Content-Type", "application/json; charset=utf-8")]
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


def bearer_ok(authorization: bytes, api_key: str | None) -> bool:
    """True when the ``Authorization`` header's raw bytes are ``Bearer <api_key>`` (constant-time)."""
    if not api_key:
        return False
    if authorization[:7].lower() != b"bearer ":
        return False
    return hmac.compare_digest(authorization[7:].strip(), api_key.encode())


Respond = Callable[[int, dict[str, Any]], None]  # (HTTP status, JSON body): the answer to one request


class EventsEndpoint:
    """The route's work, apart from any HTTP server: check one request, publish it, answer it once.

    Served by aiohttp (:func:`routes`) and, for a plain kept-alive HTTP/1.1 request, by the connection's own router
    (engine/upgrade_router.py), which answers in the loop iteration that learnt the publish's outcome: aiohttp's
    handler task costs a loop iteration to start and one to resume, and on a saturated node an iteration lasts
    hundreds of milliseconds (issue 14)."""

    def __init__(
        self,
        broadcaster: Broadcaster,
        metrics: Metrics,
        api_key: str | None,
        max_body: int,
        max_channel_length: int,
        once_key: Callable[[str, str], str],
    ) -> None:
        self._broadcaster = broadcaster
        self._metrics = metrics
        self._api_key = api_key
        self.max_body = max_body
        self._max_channel_length = max_channel_length
        self._once_key = once_key
        self._counters: dict[str, Any] = {}  # counters[status] = the route's request counter for that status

    def handle(self, authorization: bytes, idempotency_key: str | None, body: bytes, respond: Respond) -> None:
        """Answer a request with these header values and this whole body: ``respond`` is called once, now (a refusal,
        or an in-memory publish) or in the loop iteration that learnt the cluster's answer; it must not raise."""
        try:
            if not bearer_ok(authorization, self._api_key):
                detail = None if self._api_key else "REALTIME_SIO_API_KEY is not configured on this server"
                raise RealtimeError(errors.API_UNAUTHORIZED, detail)
            if len(body) > self.max_body:
                raise RealtimeError(errors.API_PAYLOAD_TOO_LARGE, f"limit is {self.max_body} bytes")
            req = parse_event_request(body, self._max_channel_length, idempotency_key)
        except RealtimeError as exc:
            self.refuse(exc, respond)
            return
        accepted = time.time()
        batch = [
            (
                Message(channel, req.event, req.data, req.socket_id, None, accepted, source="http"),
                None if req.idempotency_key is None else self._once_key(req.idempotency_key, channel),
            )
            for channel in req.channels
        ]

        def answer(outcome: Results | BaseException) -> None:
            if isinstance(outcome, BaseException):  # transport failure: tell the publisher to retry
                log.warning("publish_failed", route="events", error=type(outcome).__name__, channels=len(batch))
                self.refuse(RealtimeError(errors.API_UNAVAILABLE, UNCONFIRMED.format(len(batch))), respond)
                return
            positions: dict[str, str | None] = {}
            duplicates: list[str] = []
            for channel, position in zip(req.channels, outcome, strict=True):
                if position is False:
                    duplicates.append(channel)  # delivered before under this idempotency key
                else:
                    positions[channel] = position
            doc: dict[str, Any] = {"ok": True, "channels": len(req.channels), "positions": positions}
            if duplicates:
                doc["duplicates"] = duplicates
                log.info("publish_duplicate_ignored", route="events", channels=len(duplicates))
            self._count("200")
            respond(200, doc)

        # every channel in one transport call: one Redis round trip for the whole request
        self._broadcaster.start_batch(batch, answer, source="http")

    def refuse(self, exc: RealtimeError, respond: Respond) -> None:
        """Answer with a catalogue error (logged, except unavailability, which the publish path logged)."""
        if exc.error is not errors.API_UNAVAILABLE:
            log.info("api_request_rejected", route="events", code=exc.error.code)
        self._count(str(exc.error.status))
        respond(exc.error.status, {"error": exc.error.payload(exc.detail)})

    def _count(self, status: str) -> None:
        counter = self._counters.get(status)
        if counter is None:
            counter = self._counters[status] = self._metrics.api_requests.labels(route="events", status=status)
        counter.inc()


def routes(endpoint: EventsEndpoint) -> list[web.RouteDef]:
    """The sidecar route on aiohttp (what the connection's router does not serve itself: HTTP/1.0, chunked bodies,
    ``Expect``, oversized requests)."""

    async def post_events(request: web.Request) -> web.Response:
        # A header that is not UTF-8 arrives with lone surrogates: encoded back to its bytes rather than raise (a 500).
        authorization = request.headers.get("Authorization", "").encode("utf-8", "surrogateescape")
        answered: asyncio.Future[tuple[int, dict[str, Any]]] = asyncio.get_running_loop().create_future()

        def respond(status: int, doc: dict[str, Any]) -> None:
            if not answered.done():
                answered.set_result((status, doc))

        try:
            body = await read_body(request, endpoint.max_body)
        except RealtimeError as exc:
            endpoint.refuse(exc, respond)
        else:
            endpoint.handle(authorization, request.headers.get(IDEMPOTENCY_HEADER), body, respond)
        status, doc = await answered
        return web.json_response(doc, status=status)

    return [web.post(EVENTS_PATH, post_events)]


def lean_route(endpoint: EventsEndpoint) -> PostHandler:
    """The route as the connection's router serves it (engine/upgrade_router.py ``Upgrades.posts``): header values as
    the router read them (Latin-1, so their bytes are what was sent)."""

    def serve(environ: dict[str, Any], body: bytes, answer: Answer) -> None:
        def respond(status: int, doc: dict[str, Any]) -> None:
            payload = json.dumps(doc, separators=(",", ":")).encode()
            answer(Reply(f"{status} {HTTPStatus(status).phrase}", JSON_HEADERS, payload))

        authorization = environ.get("HTTP_AUTHORIZATION", "").encode("latin-1")
        endpoint.handle(authorization, environ.get("HTTP_IDEMPOTENCY_KEY"), body, respond)

    return serve
