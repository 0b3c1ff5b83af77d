"""A raw Pusher protocol 7 client over aiohttp's WebSocket client, recording every message, for protocol tests.

It speaks exactly what pusher-js sends (``/app/KEY?protocol=7&client=js&version=8.4.0``, JSON text frames); the
signatures are computed with the app secret the way Laravel's ``/broadcasting/auth`` computes them.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from realtime_sio.auth.pusher_signature import channel_auth, user_auth
from tests.support import eventually

APP_ID, APP_KEY, APP_SECRET = "app-1", "key-1", "secret-one-0123456789"
PUSHER_APPS = f"{APP_ID}:{APP_KEY}:{APP_SECRET}"


@dataclass
class PusherClient:
    """One Pusher connection: ``messages`` holds every decoded message in arrival order."""

    base_url: str
    key: str = APP_KEY
    messages: list[dict[str, Any]] = field(default_factory=list)
    close_code: int | None = None
    socket_id: str | None = None
    answer_pings: bool = False  # answer the server's pusher:ping with pusher:pong, as pusher-js does
    _http: aiohttp.ClientSession | None = None
    _ws: aiohttp.ClientWebSocketResponse | None = None
    _reader: asyncio.Task[None] | None = None

    async def connect(self, wait: bool = True, query: str = "protocol=7&client=js&version=8.4.0&flash=false", **kw: Any) -> None:
        self._http = aiohttp.ClientSession()
        url = self.base_url.replace("http", "ws", 1) + f"/app/{self.key}?{query}"
        self._ws = await self._http.ws_connect(url, autoping=True, max_msg_size=0, **kw)
        self._reader = asyncio.get_running_loop().create_task(self._read())
        if wait:
            (established,) = await self.wait_for("pusher:connection_established")
            self.socket_id = json.loads(established["data"])["socket_id"]

    async def _read(self) -> None:
        assert self._ws is not None
        while True:
            msg = await self._ws.receive()
            if msg.type == aiohttp.WSMsgType.TEXT:
                self.messages.append(json.loads(msg.data))
                if self.answer_pings and self.messages[-1].get("event") == "pusher:ping":
                    await self._ws.send_str(json.dumps({"event": "pusher:pong", "data": {}}))
            elif msg.type == aiohttp.WSMsgType.CLOSE:
                # the code of the server's close frame (aiohttp may then report 1006 when the server's FIN
                # arrived before it could answer the close, which is the client's concern, not the protocol's)
                self.close_code = int(msg.data)
            elif msg.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.ERROR):
                if self.close_code is None:
                    self.close_code = self._ws.close_code
                return

    def named(self, event: str, channel: str | None = None) -> list[dict[str, Any]]:
        return [m for m in self.messages if m.get("event") == event and (channel is None or m.get("channel") == channel)]

    async def wait_for(self, event: str, count: int = 1, channel: str | None = None, timeout: float = 10.0) -> list[dict[str, Any]]:
        await eventually(
            lambda: len(self.named(event, channel)) >= count, timeout, f"{count} x {event!r} (got {self.messages[-5:]})"
        )
        return self.named(event, channel)

    async def wait_closed(self, timeout: float = 10.0) -> int | None:
        assert self._reader is not None
        await asyncio.wait_for(asyncio.shield(self._reader), timeout)
        return self.close_code

    async def send(self, doc: Any) -> None:
        assert self._ws is not None
        await self._ws.send_str(doc if isinstance(doc, str) else json.dumps(doc))

    def auth(self, channel: str, channel_data: str | None = None, secret: str = APP_SECRET) -> str:
        assert self.socket_id is not None
        return channel_auth(self.key, secret, self.socket_id, channel, channel_data)

    async def subscribe(self, channel: str, channel_data: str | None = None, auth: str | None = None) -> None:
        data: dict[str, Any] = {"channel": channel}
        if channel.startswith(("private-", "presence-")):
            data["auth"] = auth if auth is not None else self.auth(channel, channel_data)
        if channel_data is not None:
            data["channel_data"] = channel_data
        await self.send({"event": "pusher:subscribe", "data": data})

    async def joined(self, channel: str, channel_data: str | None = None) -> dict[str, Any]:
        """Subscribe and wait for subscription_succeeded; returns its decoded data."""
        await self.subscribe(channel, channel_data)
        (ok,) = await self.wait_for("pusher_internal:subscription_succeeded", channel=channel)
        data = json.loads(ok["data"])
        assert isinstance(data, dict)
        return data

    async def signin(self, user_data: str, auth: str | None = None) -> None:
        """``pusher:signin`` as pusher-js sends it, signed the way Laravel's ``/broadcasting/user-auth`` signs."""
        assert self.socket_id is not None
        signature = auth if auth is not None else user_auth(self.key, APP_SECRET, self.socket_id, user_data)
        await self.send({"event": "pusher:signin", "data": {"auth": signature, "user_data": user_data}})

    async def ping(self) -> None:
        """A round trip: every message the server sent before the pong has arrived."""
        count = len(self.named("pusher:pong"))
        await self.send({"event": "pusher:ping", "data": {}})
        await self.wait_for("pusher:pong", count + 1)

    async def close(self) -> None:
        if self._ws is not None and not self._ws.closed:
            await self._ws.close()
        if self._reader is not None:
            try:
                await asyncio.wait_for(self._reader, 5)
            except (TimeoutError, aiohttp.ClientError):
                self._reader.cancel()
        if self._http is not None:
            await self._http.close()


def presence_data(user_id: int | str, name: str) -> str:
    """channel_data as Laravel's PusherBroadcaster encodes it."""
    return json.dumps({"user_id": user_id, "user_info": {"id": user_id, "name": name}})
