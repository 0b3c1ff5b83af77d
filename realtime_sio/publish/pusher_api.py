"""The Pusher Channels HTTP API as Reverb serves it: ``/apps/{app_id}/events``, ``batch_events``, channel queries and
``users/{user_id}/terminate_connections``.

Laravel's ``pusher``/``reverb`` broadcaster (pusher-php-server) and every Pusher server SDK call these routes.
Each request is checked in this order: known app (404) → body size (413) → signature (401,
``auth/pusher_signature.py``) → body (400) → publish (503 when the broadcaster cannot guarantee delivery).
Nothing is emitted unless the whole request is valid. ``data`` arrives as a JSON string and is decoded, so Echo
clients receive the same object as on the Redis path (a string that is not JSON is delivered as the string).
Errors use the sidecar route's JSON shape ``{"error": {code, message, retryable, detail?}}``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from realtime_sio import errors, logs
from realtime_sio.auth import pusher_signature
from realtime_sio.channels import is_valid_name, kind_of
from realtime_sio.errors import RealtimeError
from realtime_sio.event_names import is_reserved
from realtime_sio.metrics import Metrics
from realtime_sio.publish.broadcaster import Broadcaster, Message
from realtime_sio.publish.channel_directory import ChannelDirectory
from realtime_sio.publish.events_api import (
    MAX_CHANNELS,
    MAX_EVENT_NAME,
    error_response,
    read_body,
)
from realtime_sio.publish.terminations import UserTerminations
from realtime_sio.settings import PusherApp

log = logs.get(__name__)

MAX_USER_ID = 128  # as presence user ids (pusher/messages.py)
INFO_ATTRIBUTES = frozenset({"user_count", "subscription_count"})
Handler = Callable[[web.Request, bytes], Awaitable[web.Response]]


@dataclass(frozen=True)
class Trigger:
    """One event to publish on one or more channels."""

    channels: tuple[str, ...]
    event: str
    data: Any
    socket_id: str | None
    info: frozenset[str]


def _invalid(detail: str) -> RealtimeError:
    return RealtimeError(errors.API_BODY_INVALID, detail)


def decode_data(data: Any) -> Any:
    """Pusher sends ``data`` as a JSON string: decode it; a string that is not JSON stays a string."""
    if isinstance(data, str):
        try:
            return json.loads(data)
        except ValueError:
            return data
    return data


def parse_info(raw: object) -> frozenset[str]:
    """``"user_count,subscription_count"`` → the known attribute names (unknown ones are ignored, as Pusher does)."""
    if raw is None:
        return frozenset()
    if not isinstance(raw, str):
        raise _invalid("info must be a comma-separated string")
    return frozenset(a.strip() for a in raw.split(",")) & INFO_ATTRIBUTES


def parse_trigger(doc: Any, max_channel_length: int, *, batch: bool = False) -> Trigger:
    """Validate one event object (``POST /events`` body or one ``batch`` entry); raises ``body_invalid``."""
    if not isinstance(doc, dict):
        raise _invalid("each event must be a JSON object")
    name = doc.get("name")
    if not isinstance(name, str) or not name or len(name) > MAX_EVENT_NAME:
        raise _invalid(f"name must be a non-empty string of at most {MAX_EVENT_NAME} characters")
    if is_reserved(name):
        raise RealtimeError(errors.API_EVENT_RESERVED, f"event {name!r} is reserved")
    if "data" not in doc:
        raise _invalid("data is required")
    if batch:
        raw: Any = [doc.get("channel")]
    elif "channel" in doc and "channels" in doc:
        raise _invalid("give channel or channels, not both")
    else:
        raw = [doc["channel"]] if "channel" in doc else doc.get("channels")
    if not isinstance(raw, list) or not raw:
        raise _invalid("channel (string) or channels (non-empty list) is required")
    if len(raw) > MAX_CHANNELS:
        raise _invalid(f"at most {MAX_CHANNELS} channels per event")
    for channel in raw:
        if not is_valid_name(channel, max_channel_length):
            raise _invalid(f"invalid channel name {str(channel)[:80]!r}")
    socket_id = doc.get("socket_id")
    if socket_id is not None and not isinstance(socket_id, str):
        raise _invalid("socket_id must be a string")
    return Trigger(tuple(dict.fromkeys(raw)), name, decode_data(doc["data"]), socket_id or None, parse_info(doc.get("info")))


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise _invalid("body is not JSON") from None
    if not isinstance(doc, dict):
        raise _invalid("body must be a JSON object")
    return doc


class PusherApi:
    """The routes, bound to the configured apps and their collaborators."""

    def __init__(
        self,
        apps: Iterable[PusherApp],
        broadcaster: Broadcaster,
        directory: ChannelDirectory,
        metrics: Metrics,
        *,
        max_body: int,
        max_channel_length: int,
        timestamp_window: int,
        max_batch: int,
        terminations: UserTerminations | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._apps = {app.id: app for app in apps}
        self._broadcaster = broadcaster
        self._directory = directory
        self._metrics = metrics
        self._max_body = max_body
        self._max_channel_length = max_channel_length
        self._window = timestamp_window
        self._max_batch = max_batch
        self._terminations = terminations or UserTerminations()
        self._clock = clock

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post("/apps/{app_id}/events", self._guarded("pusher_events", self.events)),
            web.post("/apps/{app_id}/batch_events", self._guarded("pusher_batch_events", self.batch_events)),
            web.get("/apps/{app_id}/channels", self._guarded("pusher_channels", self.channels)),
            web.get("/apps/{app_id}/channels/{channel}", self._guarded("pusher_channel", self.channel)),
            web.get("/apps/{app_id}/channels/{channel}/users", self._guarded("pusher_users", self.users)),
            web.post(
                "/apps/{app_id}/users/{user_id}/terminate_connections", self._guarded("pusher_terminate", self.terminate_connections)
            ),
        ]

    # -- the checks every route shares -------------------------------------------------------------------------
    def _guarded(self, route: str, handler: Handler) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def handle(request: web.Request) -> web.Response:
            status = 500
            try:
                app = self._apps.get(request.match_info["app_id"])
                if app is None:
                    raise RealtimeError(errors.API_UNKNOWN_APP)
                body = await read_body(request, self._max_body)
                pusher_signature.verify(
                    key=app.key,
                    secret=app.secret,
                    method=request.method,
                    paths=(request.raw_path.partition("?")[0], request.path),
                    query=request.query.items(),
                    body=body,
                    now=self._clock(),
                    window=self._window,
                )
                response = await handler(request, body)
                status = response.status
                return response
            except RealtimeError as exc:
                status = exc.error.status
                if exc.error is not errors.API_UNAVAILABLE:
                    log.info("api_request_rejected", route=route, code=exc.error.code, detail=exc.detail)
                return error_response(exc.error, exc.detail)
            finally:
                self._metrics.api_requests.labels(route=route, status=str(status)).inc()

        return handle

    async def _publish(self, triggers: list[Trigger], route: str) -> None:
        """Every channel event of the request in one transport call (one Redis round trip in a cluster)."""
        accepted = time.time()
        batch: list[tuple[Message, str | None]] = [
            (Message(channel, trigger.event, trigger.data, trigger.socket_id, None, accepted), None)
            for trigger in triggers
            for channel in trigger.channels
        ]
        try:
            await self._broadcaster.publish_batch(batch, source="pusher")
        except Exception as exc:  # noqa: BLE001 - transport failure: the publisher retries on 503
            log.warning("publish_failed", route=route, error=type(exc).__name__, channels=len(batch))
            raise RealtimeError(errors.API_UNAVAILABLE, f"none of the {len(batch)} channel events confirmed") from None

    async def _attributes(self, channel: str, info: frozenset[str]) -> dict[str, int]:
        attrs: dict[str, int] = {}
        if "subscription_count" in info:
            attrs["subscription_count"] = await self._directory.subscription_count(channel)
        if "user_count" in info and kind_of(channel) == "presence":
            attrs["user_count"] = len(await self._directory.users(channel))
        return attrs

    def _channel_param(self, request: web.Request) -> str:
        channel = request.match_info["channel"]
        if not is_valid_name(channel, self._max_channel_length):
            raise _invalid(f"invalid channel name {channel[:80]!r}")
        return channel

    # -- routes ------------------------------------------------------------------------------------------------
    async def events(self, request: web.Request, body: bytes) -> web.Response:
        """``POST /apps/{id}/events``: ``{}``, or ``{"channels": {name: attrs}}`` when ``info`` was asked for."""
        trigger = parse_trigger(_json_object(body), self._max_channel_length)
        await self._publish([trigger], "pusher_events")
        if not trigger.info:
            return web.json_response({})
        return web.json_response({"channels": {c: await self._attributes(c, trigger.info) for c in trigger.channels}})

    async def batch_events(self, request: web.Request, body: bytes) -> web.Response:
        """``POST /apps/{id}/batch_events``: ``{"batch": [...]}`` of at most ``max_batch`` events."""
        batch = _json_object(body).get("batch")
        if not isinstance(batch, list) or not batch:
            raise _invalid("batch must be a non-empty list of events")
        if len(batch) > self._max_batch:
            raise _invalid(f"at most {self._max_batch} events per batch")
        triggers = [parse_trigger(item, self._max_channel_length, batch=True) for item in batch]
        await self._publish(triggers, "pusher_batch_events")
        if not any(t.info for t in triggers):
            return web.json_response({})
        return web.json_response({"batch": [await self._attributes(t.channels[0], t.info) for t in triggers]})

    async def channels(self, request: web.Request, body: bytes) -> web.Response:
        """``GET /apps/{id}/channels?filter_by_prefix=&info=``: occupied channels; ``user_count`` needs ``presence-``."""
        prefix = request.query.get("filter_by_prefix", "")
        info = parse_info(request.query.get("info"))
        if "user_count" in info and not prefix.startswith("presence-"):
            raise _invalid("info=user_count needs filter_by_prefix=presence-")
        occupied = await self._directory.channels(prefix)
        result: dict[str, dict[str, int]] = {}
        for name, count in sorted(occupied.items()):
            attrs: dict[str, int] = {}
            if "subscription_count" in info:
                attrs["subscription_count"] = count
            if "user_count" in info:
                attrs["user_count"] = len(await self._directory.users(name))
            result[name] = attrs
        return web.json_response({"channels": result})

    async def channel(self, request: web.Request, body: bytes) -> web.Response:
        """``GET /apps/{id}/channels/{channel}?info=``: ``{"occupied", "subscription_count"?, "user_count"?}``."""
        channel = self._channel_param(request)
        info = parse_info(request.query.get("info"))
        if "user_count" in info and kind_of(channel) != "presence":
            raise _invalid("info=user_count is only available for presence channels")
        count = await self._directory.subscription_count(channel)
        return web.json_response({"occupied": count > 0, **await self._attributes(channel, info)})

    async def users(self, request: web.Request, body: bytes) -> web.Response:
        """``GET /apps/{id}/channels/{channel}/users``: ``{"users": [{"id": ...}]}``, presence channels only."""
        channel = self._channel_param(request)
        if kind_of(channel) != "presence":
            raise RealtimeError(errors.API_NOT_PRESENCE)
        return web.json_response({"users": [{"id": m.user_id} for m in await self._directory.users(channel)]})

    async def terminate_connections(self, request: web.Request, body: bytes) -> web.Response:
        """``POST /apps/{id}/users/{user_id}/terminate_connections``: ``{}`` once every node was told to close the
        user's connections, Socket.IO and Pusher (publish/terminations.py); 503 when the cluster cannot be reached."""
        user_id = request.match_info["user_id"]
        if not user_id or len(user_id) > MAX_USER_ID:
            raise _invalid(f"user_id must be 1 to {MAX_USER_ID} characters")
        try:
            await self._terminations.request(self._broadcaster, request.match_info["app_id"], user_id)
        except Exception as exc:  # noqa: BLE001 - transport failure: the caller retries on 503
            log.warning("terminate_failed", error=type(exc).__name__)
            raise RealtimeError(errors.API_UNAVAILABLE, "the termination could not reach every node") from None
        return web.json_response({})
