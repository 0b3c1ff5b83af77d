"""Every HTTP request body is read in full, under a deadline and a size limit, before any handler runs.

aiohttp hands a handler the request as soon as its head is parsed; a client announcing a body and then sending it
slowly (or never) would hold the connection for as long as the handler waits, and a polling POST announcing more
than ``MAX_MESSAGE_BYTES`` was never answered at all (issue 11 item 8). This middleware answers first:

- a ``Content-Length`` over the route's limit → 413 ``payload_too_large`` at once, before a byte of body is read;
- a body not complete within ``BODY_TIMEOUT`` → 408 ``request_timeout``;
- a body without a length (chunked) that grows past the limit → 413.

Either answer ends the connection (aiohttp reads and drops the rest of the body for at most its lingering time, so
the answer is not lost to a TCP reset). The body read here is cached by aiohttp: handlers get it from
``request.read()`` (and ``post()``/``json()``); Engine.IO gets it through :func:`engineio_input`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from realtime_sio import errors
from realtime_sio.errors import ErrorCode

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def middleware(body_timeout: float, limit_for: Callable[[web.Request], int], refused: Callable[[str, str], None]) -> Any:
    """The aiohttp middleware; ``limit_for(request)`` is the largest body its route accepts, in bytes."""

    @web.middleware
    async def bounded_body(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not request.body_exists:
            return await handler(request)
        limit = limit_for(request)
        declared = request.content_length
        if declared is not None and declared > limit:
            return _refuse(refused, errors.API_PAYLOAD_TOO_LARGE, f"limit is {limit} bytes, Content-Length is {declared}")
        try:
            if request.content.is_eof():  # all of it arrived with the head (most small bodies): no deadline needed
                body = await request.read()
            else:
                async with asyncio.timeout(body_timeout):
                    body = await request.read()  # bounded by the app's client_max_size (the largest limit)
        except TimeoutError:
            return _refuse(refused, errors.REQUEST_TIMEOUT, f"body not complete after {body_timeout:g} s")
        except web.HTTPRequestEntityTooLarge:
            return _refuse(refused, errors.API_PAYLOAD_TOO_LARGE, f"limit is {limit} bytes")
        if len(body) > limit:
            return _refuse(refused, errors.API_PAYLOAD_TOO_LARGE, f"limit is {limit} bytes")
        return await handler(request)

    return bounded_body


def _refuse(refused: Callable[[str, str], None], error: ErrorCode, detail: str) -> web.Response:
    refused(error.code, detail)
    response = web.json_response({"error": error.payload(detail)}, status=error.status)
    response.force_close()  # the connection ends after this answer: the rest of the body is not worth reading
    return response


class _CachedBody:
    """Engine.IO's ``wsgi.input``: ``read(n)`` gives the body this middleware already read (engineio reads once)."""

    __slots__ = ("_request",)

    def __init__(self, request: web.Request) -> None:
        self._request = request

    async def read(self, n: int = -1) -> bytes:
        body = await self._request.read()  # cached: no I/O
        return body if n < 0 else body[:n]


def engineio_input(request: web.Request) -> _CachedBody:
    """What engineio's aiohttp driver should read a polling POST body from (instead of the raw stream)."""
    return _CachedBody(request)
