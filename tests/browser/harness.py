"""Browser test harness: the test page's origin server (with control routes), a WebSocket-refusing proxy, and the
runner that feeds a ``tests/browser/<scenario>.mjs`` its parameters and reads back its JSON result."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from tests.support import API_KEY, free_port

HERE = Path(__file__).resolve().parent
NODE_MODULES = HERE / "node_modules"
CHROMIUM = Path(os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium"))
ARTIFACTS = HERE.parent.parent / "test-artifacts"
VENDOR = {
    "socket.io.min.js": NODE_MODULES / "socket.io-client" / "dist" / "socket.io.min.js",
    "echo.iife.js": NODE_MODULES / "laravel-echo" / "dist" / "echo.iife.js",
    "pusher.min.js": NODE_MODULES / "pusher-js" / "dist" / "web" / "pusher.min.js",
}
PAGES = {  # page files served at /<name>: the Socket.IO Echo page and the Reverb (Pusher protocol) Echo page
    name: (HERE / "page" / name, "text/html" if name.endswith(".html") else "text/javascript")
    for name in ("echo.html", "echo-page.js", "reverb.html", "reverb-page.js")
}
SCENARIO_TIMEOUT = 90.0  # seconds for one node scenario, browser start included

Action = Callable[[dict[str, Any]], Awaitable[dict[str, Any] | None]]


def missing_tools() -> str | None:
    """Why browser tests cannot run here (``None`` when Chromium, node and node_modules are all present)."""
    if not CHROMIUM.exists():
        return f"{CHROMIUM} not found (run tests/browser/install.sh)"
    if shutil.which("node") is None:
        return "node not found (run tests/browser/install.sh)"
    absent = [str(p) for p in [*VENDOR.values(), NODE_MODULES / "playwright-core"] if not p.exists()]
    if absent:
        return f"{absent[0]} missing (run tests/browser/install.sh)"
    return None


@dataclass
class PageServer:
    """Serves the Echo test page and the vendored browser bundles on one or more ports (= origins), plus
    ``POST /control/<action>`` routes through which a scenario asks the test to act (publish, restart), and, when
    ``broadcasting_auth`` is set, the Laravel app's ``POST /broadcasting/auth`` on the page's own origin."""

    ports: list[int] = field(default_factory=lambda: [free_port()])
    actions: dict[str, Action] = field(default_factory=dict)
    runner: web.AppRunner | None = None
    broadcasting_auth: Callable[[web.Request], Awaitable[web.StreamResponse]] | None = None

    def origin(self, index: int = 0) -> str:
        return f"http://127.0.0.1:{self.ports[index]}"

    def on(self, name: str, action: Action) -> None:
        self.actions[name] = action

    async def start(self) -> None:
        app = web.Application()
        app.add_routes(
            [
                *(web.get(f"/{name}", self._file(path, content_type)) for name, (path, content_type) in PAGES.items()),
                *(web.get(f"/vendor/{name}", self._file(path, "text/javascript")) for name, path in VENDOR.items()),
                web.post("/control/{action}", self._control),
                web.post("/broadcasting/auth", self._broadcasting_auth),
            ]
        )
        self.runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)  # do not wait out open long-polls
        await self.runner.setup()
        for port in self.ports:
            await web.TCPSite(self.runner, "127.0.0.1", port).start()

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()

    @staticmethod
    def _file(path: Path, content_type: str) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def handler(_: web.Request) -> web.Response:
            return web.Response(body=path.read_bytes(), content_type=content_type, headers={"Cache-Control": "no-store"})

        return handler

    async def _broadcasting_auth(self, request: web.Request) -> web.StreamResponse:
        if self.broadcasting_auth is None:
            return web.json_response({"error": "no /broadcasting/auth in this test"}, status=404)
        return await self.broadcasting_auth(request)

    async def _control(self, request: web.Request) -> web.Response:
        action = self.actions.get(request.match_info["action"])
        if action is None:
            return web.json_response({"error": "unknown action"}, status=404)
        body = await request.json() if request.can_read_body else {}
        return web.json_response(await action(body) or {})


@dataclass
class RefusingProxy:
    """A reverse proxy in front of the server that forwards plain HTTP (long-polling) and refuses every WebSocket
    upgrade with 403, as some corporate proxies do: the browser's WebSocket handshake genuinely fails."""

    upstream: str
    port: int = field(default_factory=free_port)
    refused_upgrades: int = 0
    forwarded: int = 0
    runner: web.AppRunner | None = None
    session: aiohttp.ClientSession | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        # auto_decompress=False: bodies pass through byte for byte with their Content-Encoding.
        self.session = aiohttp.ClientSession(auto_decompress=False, timeout=aiohttp.ClientTimeout(total=None, sock_read=90))
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._forward)
        self.runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)  # do not wait out open long-polls
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
        if self.session is not None:
            await self.session.close()

    async def _forward(self, request: web.Request) -> web.StreamResponse:
        if request.headers.get("Upgrade", "").lower() == "websocket":
            self.refused_upgrades += 1
            return web.Response(status=403, text="WebSocket upgrades are not allowed through this proxy")
        assert self.session is not None
        self.forwarded += 1
        hop = {"host", "connection", "keep-alive", "upgrade", "transfer-encoding", "content-length"}
        headers = {k: v for k, v in request.headers.items() if k.lower() not in hop}
        body = await request.read()
        async with self.session.request(
            request.method, self.upstream + request.rel_url.path_qs, headers=headers, data=body or None, allow_redirects=False
        ) as upstream:
            payload = await upstream.read()
            out = {k: v for k, v in upstream.headers.items() if k.lower() not in hop}
            return web.Response(status=upstream.status, body=payload, headers=out)


async def run_scenario(name: str, params: dict[str, Any], timeout: float = SCENARIO_TIMEOUT) -> dict[str, Any]:
    """Run ``node tests/browser/<name>.mjs`` with ``params`` on stdin; return its JSON result or fail with it."""
    proc = await asyncio.create_subprocess_exec(
        "node",
        str(HERE / f"{name}.mjs"),
        cwd=HERE,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(json.dumps({"chromium": str(CHROMIUM), **params}).encode()), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise AssertionError(f"scenario {name} did not finish within {timeout}s") from None
    lines = out.decode(errors="replace").strip().splitlines()
    try:
        result: dict[str, Any] = json.loads(lines[-1]) if lines else {}
    except ValueError:
        result = {"unparsed": lines[-20:]}
    if proc.returncode != 0:
        detail = json.dumps(result, indent=1)[-6000:]
        raise AssertionError(f"scenario {name} failed (exit {proc.returncode}):\n{detail}\nstderr:\n{err.decode(errors='replace')[-3000:]}")
    return result


async def publish(server_url: str, channel: str, event: str, data: Any) -> None:
    """POST one event to the server's sidecar route; fails unless it is accepted."""
    body = {"channel": channel, "event": event, "data": data}
    headers = {"Authorization": f"Bearer {API_KEY}"}
    async with aiohttp.ClientSession() as session, session.post(f"{server_url}/api/v1/events", json=body, headers=headers) as response:
        text = await response.text()
        assert response.status == 200, f"publish answered {response.status}: {text}"
