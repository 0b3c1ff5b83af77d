"""``GET /dashboard/stream``: server-sent events, one ``snapshot`` event per interval, for a bounded number of viewers.

A stream ends when the client goes away (the next write fails), when the server shuts down (:meth:`Streams.close`
runs from the aiohttp app's ``on_shutdown``, before the runner waits for handlers) or when its handler is
cancelled. Past ``max_streams`` concurrent streams the route answers 503 with ``Retry-After``.
"""

from __future__ import annotations

import asyncio
import contextlib

from aiohttp import web

from realtime_sio import logs
from realtime_sio.dashboard.feed import Feed

log = logs.get(__name__)

RETRY_MS = 2000  # EventSource reconnect delay the browser is told to use


class Streams:
    """Serves snapshot streams and tracks how many are open."""

    def __init__(self, feed: Feed, max_streams: int, interval: float = 1.0) -> None:
        self._feed = feed
        self._max = max_streams
        self._interval = interval
        self._closing = asyncio.Event()
        self.open = 0

    async def close(self, _: web.Application | None = None) -> None:
        """End every open stream promptly (aiohttp ``on_shutdown`` signature); new streams are refused."""
        self._closing.set()

    async def serve(self, request: web.Request) -> web.StreamResponse:
        """Stream snapshots to an already-authorised client until it leaves or the server stops."""
        if self._closing.is_set():
            return web.json_response({"error": "shutting_down"}, status=503)
        if self.open >= self._max:
            log.warning("dashboard_stream_refused", open=self.open, limit=self._max)
            return web.json_response({"error": "too_many_streams", "limit": self._max}, status=503, headers={"Retry-After": "5"})
        self.open += 1
        reason = "cancelled"
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream; charset=utf-8",
                "Cache-Control": "no-store",
                "X-Accel-Buffering": "no",  # keep reverse proxies from buffering the stream
            }
        )
        try:
            await response.prepare(request)
            log.info("dashboard_stream_opened", open=self.open)
            await response.write(f"retry: {RETRY_MS}\n\n".encode())
            while not self._closing.is_set():
                if request.transport is None or request.transport.is_closing():
                    reason = "client_gone"
                    break
                body = await self._feed.encoded()
                await response.write(b"event: snapshot\ndata: " + body + b"\n\n")
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._closing.wait(), self._interval)
            else:
                reason = "shutdown"
        except ConnectionResetError:  # aiohttp's ClientConnectionResetError: the viewer closed the tab
            reason = "client_gone"
        finally:
            self.open -= 1
            log.info("dashboard_stream_closed", reason=reason, open=self.open)
        if reason == "shutdown":
            with contextlib.suppress(ConnectionResetError):
                await response.write_eof()
        return response
