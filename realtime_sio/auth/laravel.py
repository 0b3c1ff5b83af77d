"""Delegate a channel decision to the Laravel app's ``/broadcasting/auth``, as laravel-echo-server does (§1.4, §3.2).

Request: form POST ``channel_name`` and ``socket_id``, with an allow-list of headers (issue 11, item 4): of the
headers the client put in ``subscribe``'s ``auth.headers`` only ``Cookie``, ``Authorization``, ``X-CSRF-TOKEN``,
``X-XSRF-TOKEN``, ``X-Socket-Id`` and ``Accept`` (names matched exactly, case-insensitively; values of printable
ASCII only, so no CR/LF), the handshake ``Cookie`` unless the client gave its own, and ``X-Requested-With:
XMLHttpRequest`` plus ``Accept: application/json`` so Laravel answers 401/403 instead of redirecting to a login page.
Anything else (``X-Forwarded-For``, ``Host``, ``Forwarded``...) is dropped: Laravel may trust such headers from this
hop. Redirects are not followed (a 302 is a refusal).

Answer → :class:`DelegatedAnswer`:

* 200 with JSON ``true`` or a JSON object → joined. On presence channels ``channel_data`` (an object, as
  RedisBroadcaster sends it, or a JSON string, as PusherBroadcaster does) becomes the :class:`Member`. A presence
  answer without ``channel_data`` (the channel callback returned ``true``) joins the room *without* presence:
  no ``here``/``joining``/``leaving`` for that socket, exactly like laravel-echo-server.
* 200 with anything else (HTML, ``false``, a ``channel_data`` without ``user_id``) → status 502, not joined. This is
  stricter than laravel-echo-server, which admits any 200: an auth URL that hits an SPA catch-all page must not open
  every private channel.
* any other status → that status; timeout or connection failure → status 0.

Positive answers may be cached for ``cache_ttl`` seconds, keyed by the channel and exactly the headers forwarded
(Laravel decided on those and nothing else; the socket id is left out so a reconnect reuses the answer); requests
that forward neither a cookie nor ``Authorization`` are never cached. Cookies, headers and bodies are never logged.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Callable, Mapping
from typing import Any

import aiohttp

from realtime_sio import logs
from realtime_sio.auth.delegation import DelegatedAnswer
from realtime_sio.auth.tokens import Identity
from realtime_sio.channels import kind_of
from realtime_sio.members import Member

log = logs.get(__name__)

# forwarded[lowercase name] = the spelling sent to Laravel; every other client header is dropped.
FORWARDED_HEADERS = {
    "cookie": "Cookie",
    "authorization": "Authorization",
    "x-csrf-token": "X-CSRF-TOKEN",
    "x-xsrf-token": "X-XSRF-TOKEN",
    "x-socket-id": "X-Socket-Id",
    "accept": "Accept",
}
_VALUE = re.compile(r"[\x20-\x7e\t]{0,8192}")  # printable ASCII, space and tab: no CR, LF, NUL or other controls
MAX_RESPONSE_BYTES = 65_536
MAX_CACHE_ENTRIES = 10_000
BAD_RESPONSE = 502


def forwarded_headers(client_headers: Mapping[str, str], cookie: str | None) -> dict[str, str]:
    """The headers sent to Laravel for one subscribe (the allow-list of the module docstring); pure, never raises."""
    headers: dict[str, str] = {}
    for name, value in client_headers.items():
        canonical = FORWARDED_HEADERS.get(name.lower()) if isinstance(name, str) else None
        if canonical is not None and isinstance(value, str) and _VALUE.fullmatch(value):
            headers[canonical] = value.strip(" \t")
    if cookie and "Cookie" not in headers and _VALUE.fullmatch(cookie):
        headers["Cookie"] = cookie
    headers["X-Requested-With"] = "XMLHttpRequest"
    headers.setdefault("Accept", "application/json")
    return headers


def member_from(channel_data: Any) -> Member | None:
    """``channel_data`` (object or JSON string) → :class:`Member`; ``None`` when it has no usable ``user_id``."""
    if isinstance(channel_data, str):
        try:
            channel_data = json.loads(channel_data)
        except ValueError:
            return None
    if not isinstance(channel_data, dict):
        return None
    user_id = channel_data.get("user_id")
    if isinstance(user_id, bool) or not isinstance(user_id, (str, int)) or user_id == "":
        return None
    return Member(user_id=user_id, user_info=channel_data.get("user_info"))


def interpret(channel: str, status: int, body: bytes) -> DelegatedAnswer:
    """Turn Laravel's HTTP answer into a decision (see the module docstring); pure."""
    if status != 200:
        return DelegatedAnswer(status=status)
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return DelegatedAnswer(status=BAD_RESPONSE)
    if doc is True:
        return DelegatedAnswer(status=200)
    if not isinstance(doc, dict):
        return DelegatedAnswer(status=BAD_RESPONSE)
    if kind_of(channel) != "presence" or "channel_data" not in doc:
        return DelegatedAnswer(status=200)
    member = member_from(doc["channel_data"])
    return DelegatedAnswer(status=200, member=member) if member else DelegatedAnswer(status=BAD_RESPONSE)


def cache_key(channel: str, forwarded: Mapping[str, str]) -> str | None:
    """The cache key of a decision: the channel and every forwarded header; None (not cached) without credentials."""
    if "Cookie" not in forwarded and "Authorization" not in forwarded:
        return None
    lines = [channel, *(f"{name}: {forwarded[name]}" for name in sorted(forwarded))]
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


class LaravelAuthorizer:
    """Implements ``sio.namespace.Authorizer`` over one shared aiohttp session (created by :meth:`start`)."""

    def __init__(
        self,
        url: str,
        *,
        timeout: float,
        cache_ttl: float = 0.0,
        max_connections: int = 100,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._url = url
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._cache_ttl = cache_ttl
        self._max_connections = max_connections
        self._clock = clock
        self._session: aiohttp.ClientSession | None = None
        # cache[cache_key(channel, forwarded headers)] = (expires_at, answer); only positive answers
        self._cache: dict[str, tuple[float, DelegatedAnswer]] = {}

    async def start(self) -> None:
        """Open the shared session; call once the event loop runs."""
        connector = aiohttp.TCPConnector(limit=self._max_connections)
        self._session = aiohttp.ClientSession(connector=connector, timeout=self._timeout)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def authorize(
        self, channel: str, socket_id: str, headers: Mapping[str, str], cookie: str | None, identity: Identity
    ) -> DelegatedAnswer:
        """Ask Laravel (or the cache) whether this socket may join ``channel``; never raises (status 0 on any failure).

        ``identity`` is not sent to Laravel, so it is no part of the decision nor of the cache key.
        """
        try:
            forwarded = forwarded_headers(headers, cookie)
            key = cache_key(channel, forwarded) if self._cache_ttl > 0 else None
            if key is not None:
                cached = self._cache.get(key)
                if cached is not None and cached[0] > self._clock():
                    return cached[1]
            answer = await self._ask(channel, socket_id, forwarded)
            if key is not None and answer.status == 200:
                self._remember(key, answer)
            return answer
        except Exception as exc:  # noqa: BLE001 - whatever aiohttp raises, the client gets subscription_error(status 0)
            log.warning("laravel_auth_failed", channel=channel, error=type(exc).__name__)
            return DelegatedAnswer(status=0)

    async def _ask(self, channel: str, socket_id: str, headers: dict[str, str]) -> DelegatedAnswer:
        if self._session is None:
            log.warning("laravel_auth_not_started", channel=channel)
            return DelegatedAnswer(status=0)
        started = time.monotonic()
        try:
            async with self._session.post(
                self._url, data={"channel_name": channel, "socket_id": socket_id}, headers=headers, allow_redirects=False
            ) as response:
                body = await _read_limited(response.content, MAX_RESPONSE_BYTES)
                status = response.status
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            log.warning("laravel_auth_unreachable", channel=channel, error=type(exc).__name__, seconds=_since(started))
            return DelegatedAnswer(status=0)
        answer = DelegatedAnswer(status=BAD_RESPONSE) if body is None else interpret(channel, status, body)
        if answer.status == BAD_RESPONSE and status == 200:
            log.warning("laravel_auth_bad_response", channel=channel, too_large=body is None, seconds=_since(started))
        elif answer.status != 200:
            log.info("laravel_auth_denied", channel=channel, status=status, seconds=_since(started))
        else:
            log.debug("laravel_auth_allowed", channel=channel, presence=answer.member is not None, seconds=_since(started))
        return answer

    def _remember(self, key: str, answer: DelegatedAnswer) -> None:
        now = self._clock()
        if len(self._cache) >= MAX_CACHE_ENTRIES:
            self._cache = {k: v for k, v in self._cache.items() if v[0] > now}
            while len(self._cache) >= MAX_CACHE_ENTRIES:  # still full of live entries: drop the oldest inserted
                del self._cache[next(iter(self._cache))]
        self._cache[key] = (now + self._cache_ttl, answer)


async def _read_limited(stream: aiohttp.StreamReader, limit: int) -> bytes | None:
    """The whole body, or None past ``limit`` bytes (``read(n)`` alone may return only what is buffered)."""
    body = bytearray()
    while chunk := await stream.read(limit + 1 - len(body)):
        body += chunk
        if len(body) > limit:
            return None
    return bytes(body)


def _since(started: float) -> float:
    return round(time.monotonic() - started, 3)
