"""A small real aiohttp app that answers ``POST /broadcasting/auth`` the way Laravel does, run in its own thread.

Users: ``Authorization: Bearer user-<id>`` (Sanctum-style) or the session cookie ``SESSION_COOKIE`` (user 1).
Answers by channel name suffix: ``.denied`` 403, ``.error`` 500, ``.garbage`` an HTML 200, ``.slow`` held until
:meth:`FakeLaravel.stop`, presence ``.obj`` / ``.str`` channel_data as object / JSON string, anything else ``true``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from dataclasses import dataclass, field

from aiohttp import web

from realtime_sio.auth.pusher_signature import channel_auth
from tests.support import free_port, wait_until

SESSION_COOKIE = "laravel_session=handshake-cookie-value-123"


@dataclass
class SeenRequest:
    """What the fake Laravel received for one auth call."""

    channel: str
    socket_id: str | None
    headers: dict[str, str]


@dataclass
class FakeLaravel:
    """``POST /broadcasting/auth`` answering per channel name, the way Laravel does; runs in its own thread."""

    port: int = field(default_factory=free_port)
    seen: list[SeenRequest] = field(default_factory=list)
    in_flight_slow: int = 0
    concurrent_with_slow: list[str] = field(default_factory=list)
    loop: asyncio.AbstractEventLoop | None = None
    release: asyncio.Event | None = None
    # (key, secret): answer as Laravel's PusherBroadcaster does for the reverb/pusher broadcasters, a signed
    # {"auth": "key:HMAC"} (+ "channel_data" for presence) instead of RedisBroadcaster's `true`
    signing: tuple[str, str] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/broadcasting/auth"

    def for_socket(self, sid: str) -> list[SeenRequest]:
        return [r for r in self.seen if r.socket_id == sid]

    async def handle(self, request: web.Request) -> web.StreamResponse:
        form = await request.post()
        channel = str(form.get("channel_name", ""))
        self.seen.append(SeenRequest(channel, str(form["socket_id"]) if "socket_id" in form else None, dict(request.headers)))
        if self.in_flight_slow:
            self.concurrent_with_slow.append(channel)
        user = _user_of(request)
        if channel.endswith(".slow"):
            self.in_flight_slow += 1
            assert self.release is not None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.release.wait(), 20)
            self.in_flight_slow -= 1
            return web.json_response(True)
        if channel.endswith(".denied") or user is None:
            return web.json_response({"message": "This action is unauthorized."}, status=403)
        if channel.endswith(".error"):
            return web.Response(status=500, text="Server Error")
        if channel.endswith(".garbage"):
            return web.Response(status=200, text="<html><body>Welcome to our SPA</body></html>", content_type="text/html")
        info = {"id": user, "name": f"User {user}"}
        if self.signing is not None and channel.startswith(("private-", "presence-")):
            return web.json_response(_pusher_answer(self.signing, str(form.get("socket_id", "")), channel, user, info))
        if channel.startswith("presence-") and channel.endswith(".obj"):
            return web.json_response({"channel_data": {"user_id": user, "user_info": info}})  # RedisBroadcaster
        if channel.startswith("presence-") and channel.endswith(".str"):
            data = json.dumps({"user_id": user, "user_info": info})
            return web.json_response({"auth": "key:signature", "channel_data": data})  # PusherBroadcaster
        return web.json_response(True)

    def start(self) -> None:
        ready = threading.Event()

        def run() -> None:
            loop = asyncio.new_event_loop()
            self.loop = loop
            asyncio.set_event_loop(loop)
            self.release = asyncio.Event()
            app = web.Application()
            app.router.add_post("/broadcasting/auth", self.handle)
            runner = web.AppRunner(app, access_log=None)
            loop.run_until_complete(runner.setup())
            loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", self.port).start())
            ready.set()
            loop.run_forever()
            loop.run_until_complete(runner.cleanup())
            loop.close()

        self.thread = threading.Thread(target=run, name="fake-laravel", daemon=True)
        self.thread.start()
        assert ready.wait(10)

    def stop(self) -> None:
        assert self.loop is not None and self.release is not None
        self.loop.call_soon_threadsafe(self.release.set)
        wait_until(lambda: self.in_flight_slow == 0, what="slow requests to finish")
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


def _pusher_answer(signing: tuple[str, str], socket_id: str, channel: str, user: int, info: dict[str, object]) -> dict[str, str]:
    """What ``Illuminate\\Broadcasting\\Broadcasters\\PusherBroadcaster::validAuthenticationResponse`` returns."""
    key, secret = signing
    if not channel.startswith("presence-"):
        return {"auth": channel_auth(key, secret, socket_id, channel)}
    data = json.dumps({"user_id": user, "user_info": info})
    return {"auth": channel_auth(key, secret, socket_id, channel, data), "channel_data": data}


def _user_of(request: web.Request) -> int | None:
    """The logged-in user: ``Authorization: Bearer user-<id>`` (Sanctum-style) or the session cookie."""
    auth = request.headers.get("Authorization", "")
    if auth.startswith("Bearer user-"):
        return int(auth.removeprefix("Bearer user-"))
    if request.cookies.get("laravel_session") == "handshake-cookie-value-123":
        return 1
    return None
